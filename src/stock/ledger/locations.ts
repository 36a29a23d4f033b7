/**
 * The registries of contract v3: locations (where units are counted) and channels (how one
 * storefront sees them: an ordered list of locations and a strategy). PostgreSQL keeps both.
 * The channel `default` is not a row until an admin replaces it: until then it is every location
 * in creation order with `priority`, so a new location joins it without anyone asking.
 */
import type { Pool } from 'pg';
import { transaction } from '../database';
import { channelNotFound, locationNotFound, StockholdError } from '../../domain/errors';
import { DEFAULT_CHANNEL, type AllocationStrategy, type Channel, type Location } from '../../domain/types';

type LocationRow = { location_id: string; name: string; created_at: Date };
const locationOf = (r: LocationRow): Location => ({
  locationId: r.location_id,
  name: r.name,
  createdAt: r.created_at.toISOString(),
});
type ChannelRow = { channel: string; locations: string[]; strategy: AllocationStrategy };
const channelOf = (r: ChannelRow): Channel => ({ channel: r.channel, locations: r.locations, strategy: r.strategy });

export class LocationLedger {
  constructor(readonly db: Pool) {}

  /** A new location; LOCATION_EXISTS when the id is taken (whatever its name). */
  async create(locationId: string, name: string): Promise<Location> {
    const inserted = await this.db.query<LocationRow>(
      `INSERT INTO locations (location_id, name) VALUES ($1, $2)
       ON CONFLICT (location_id) DO NOTHING
       RETURNING location_id, name, created_at`,
      [locationId, name],
    );
    if (inserted.rows.length === 0)
      throw new StockholdError('LOCATION_EXISTS', `location ${locationId} exists already`, { locationId });
    return locationOf(inserted.rows[0]!);
  }

  /** Every location in creation order (`default` first: the migration made it). */
  async list(): Promise<Location[]> {
    const rows = await this.db.query<LocationRow>(
      'SELECT location_id, name, created_at FROM locations ORDER BY position',
    );
    return rows.rows.map(locationOf);
  }

  /**
   * Replaces (or creates) a channel. Every location must exist: LOCATION_NOT_FOUND names the first
   * missing one in the channel's order. A location is never deleted, so the check cannot go stale.
   */
  async putChannel(channel: Channel): Promise<Channel> {
    return transaction(this.db, async (c) => {
      const known = await c.query<{ location_id: string }>(
        'SELECT location_id FROM locations WHERE location_id = ANY($1::text[])',
        [channel.locations],
      );
      const found = new Set(known.rows.map((r) => r.location_id));
      const missing = channel.locations.find((id) => !found.has(id));
      if (missing !== undefined) throw locationNotFound(missing);
      const row = await c.query<ChannelRow>(
        `INSERT INTO channels (channel, locations, strategy) VALUES ($1, $2::text[], $3)
         ON CONFLICT (channel) DO UPDATE SET locations = EXCLUDED.locations, strategy = EXCLUDED.strategy,
                                             updated_at = now()
         RETURNING channel, locations, strategy`,
        [channel.channel, channel.locations, channel.strategy],
      );
      return channelOf(row.rows[0]!);
    });
  }

  /** A channel as it stands (`default` as it would be stored, when no admin replaced it); CHANNEL_NOT_FOUND otherwise. */
  async channel(name: string): Promise<Channel> {
    const rows = await this.db.query<ChannelRow>(
      'SELECT channel, locations, strategy FROM channels WHERE channel = $1',
      [name],
    );
    if (rows.rows[0]) return channelOf(rows.rows[0]);
    if (name === DEFAULT_CHANNEL) return this.implicitDefault();
    throw channelNotFound(name);
  }

  /** Every channel: `default` first, then the others in the order they were first put. */
  async channels(): Promise<Channel[]> {
    const rows = await this.db.query<ChannelRow>('SELECT channel, locations, strategy FROM channels ORDER BY position');
    const stored = rows.rows.map(channelOf);
    const byDefault = stored.find((c) => c.channel === DEFAULT_CHANNEL) ?? (await this.implicitDefault());
    return [byDefault, ...stored.filter((c) => c.channel !== DEFAULT_CHANNEL)];
  }

  /** The channel `default` while no admin replaced it: every location in creation order, `priority`. */
  private async implicitDefault(): Promise<Channel> {
    const rows = await this.db.query<{ location_id: string }>('SELECT location_id FROM locations ORDER BY position');
    return { channel: DEFAULT_CHANNEL, locations: rows.rows.map((r) => r.location_id), strategy: 'priority' };
  }
}
