/**
 * What the stock module answers without changing anything: a SKU's figures and a cart's
 * pre-check from Redis only (the page-load and flash-sale paths), who holds a SKU's stock, the
 * ledger and the outbox from PostgreSQL. StockStore (./store.ts) adds the writes; this base holds
 * the parts both use: the ledger (PostgreSQL), the counters (Redis), and how a missing SKU is told
 * from a lost one.
 */
import type { Pool } from 'pg';
import { skuNotFound, unavailable, type StockholdError } from '../domain/errors';
import type { StockholdEvent } from '../domain/events';
import { DEFAULT_MOVEMENTS } from '../domain/limits';
import {
  DEFAULT_LOCATION,
  stockView,
  type CartLine,
  type Channel,
  type Location,
  type LocationLevel,
  type Movement,
  type ReservationView,
  type SkuSettings,
  type StockHold,
  type StockView,
} from '../domain/types';
import { DriftCounts } from './drift';
import { Figures } from './figures';
import { Ledger } from './ledger';
import { readEvents } from './outbox';
import { Counters, type ChannelSpec } from './redis/counters';
import { parseLevels, type LevelFigures } from './redis/keys';
import { CountersMissing, type StockRedis } from './redis/scripts';

export interface StockStoreOptions {
  /** How long Redis remembers finished reservations (the retry window of a late hold). */
  doneRetentionMs?: number;
  now?: () => number;
  /** Where the store reports what it cannot say through its answers (Redis left behind). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /** Where the store reports drift only a store failure explains (an error log: an alert). */
  alert?: (message: string, fields: Record<string, unknown>) => void;
  /** false writes no events to the outbox: only bench:outbox's baseline, to measure their cost. */
  outbox?: boolean;
}

const DAY_MS = 86_400_000;
/** How long a repeat of a request let into Temporal is joined to it (a request takes at most 30 s). */
const ADMITTED_NOTE_MS = 120_000;
/** How long a process keeps a channel it read (channelSpec). */
const CHANNEL_CACHE_MS = 1_000;

export class StockReads {
  readonly ledger: Ledger;
  /** Drift only a store failure explains, counted for /metrics. */
  readonly drift: DriftCounts;
  /** The deployment's figures for /metrics, and the SKUs watched there. */
  readonly figures: Figures;
  /** Redis: the one door to the counters and the scripts. */
  readonly counters: Counters;
  protected readonly now: () => number;
  protected readonly warn: NonNullable<StockStoreOptions['warn']>;
  protected readonly alert: NonNullable<StockStoreOptions['alert']>;

  constructor(
    readonly redis: StockRedis,
    readonly db: Pool,
    options: StockStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.warn = options.warn ?? (() => undefined);
    this.alert = options.alert ?? this.warn;
    this.ledger = new Ledger(db, options.outbox ?? true);
    this.drift = new DriftCounts(db);
    this.figures = new Figures(db);
    this.counters = new Counters(redis, options.doneRetentionMs ?? 7 * DAY_MS, this.now);
  }

  // ---------------------------------------------------------------- reads (Redis only)

  /**
   * One SKU's figures, from Redis only (the page-load path); through `channel`, only its
   * locations' (contract v3), listed in the view.
   */
  async getStock(sku: string, channel?: string): Promise<StockView> {
    const [row] = await this.viewRows([sku], channel);
    if (row!.fields[0] === null) throw await this.explainMissing(new CountersMissing(sku));
    return viewOf(sku, row!);
  }

  /** Figures of several SKUs in one round trip (through `channel`, as getStock); unknown ones are listed in `missing`. */
  async getAvailability(skus: readonly string[], channel?: string): Promise<{ items: StockView[]; missing: string[] }> {
    const unique = [...new Set(skus)];
    const [rows, loaded] = await Promise.all([this.viewRows(unique, channel), this.counters.loaded()]);
    const items: StockView[] = [];
    const missing: string[] = [];
    unique.forEach((sku, i) => {
      const row = rows[i]!;
      if (row.fields[0] === null || row.fields[0] === undefined) missing.push(sku);
      else items.push(viewOf(sku, row));
    });
    // A SKU without counters is missing only if Redis is loaded and PostgreSQL does not know it
    // either; otherwise its counters were lost and are being restored.
    if (missing.length > 0 && (!loaded || (await this.ledger.skus.existing(missing)).size > 0)) throw notLoaded();
    return { items, missing };
  }

  /**
   * A channel as the reads and holds use it: Redis's copy (stockhold:channels); when Redis has
   * none (a new deployment, a loss), PostgreSQL's, put back into Redis. CHANNEL_NOT_FOUND when
   * neither has it.
   */
  async channelOf(name: string): Promise<Channel> {
    const mirrored = await this.counters.channel(name);
    if (mirrored) return { channel: name, ...mirrored };
    const channel = await this.ledger.locations.channel(name);
    await this.counters
      .putChannels([channel])
      .catch((err: unknown) =>
        this.warn('could not put a channel back into Redis', { channel: name, err: String(err) }),
      );
    return channel;
  }

  /**
   * A channel as a hold takes it (its locations and strategy), through a cache of
   * CHANNEL_CACHE_MS: a cart names its channel on every request, and the channel changes rarely.
   * A channel put meanwhile reaches the holds within that time (docs/API.md); whether a line can
   * be held is decided by the script either way, so a stale channel never oversells.
   */
  async channelSpec(name: string, fresh = false): Promise<ChannelSpec> {
    const now = this.now();
    const cached = this.channelCache.get(name);
    if (cached && cached.until > now && !fresh) return cached.spec;
    // One read per channel at a time: a storm's requests all miss at once when the entry expires
    // (and, with no copy in Redis yet, each would go to PostgreSQL).
    let reading = this.channelReads.get(name);
    if (!reading) {
      reading = this.channelOf(name)
        .then(({ locations, strategy }) => {
          const spec = { locations, strategy };
          this.channelCache.set(name, { spec, until: this.now() + CHANNEL_CACHE_MS });
          return spec;
        })
        .finally(() => this.channelReads.delete(name));
      this.channelReads.set(name, reading);
    }
    return reading;
  }

  private readonly channelReads = new Map<string, Promise<ChannelSpec>>();

  /** Channels this process read lately; its own channel and location writes clear it (admin.ts). */
  protected readonly channelCache = new Map<string, { spec: ChannelSpec; until: number }>();

  /**
   * The view's fields of these SKUs; through a channel, with their levels at its locations. The
   * channel comes from this process's cache (channelSpec), and each SKU's levels from its `lv`
   * field (every level's figures in one string, which the scripts keep: lua/includes/levels.lua)
   * in the same HMGET: one round trip per SKU, as a read without a channel. A SKU without `locs`
   * has its one level at `default`, whose figures are the SKU's `total` and `reserved`; one with
   * `locs` but no `lv` (written by a version before it) has its levels read in a second round trip.
   */
  private async viewRows(skus: readonly string[], channel: string | undefined): Promise<ViewRow[]> {
    if (channel === undefined)
      return (await this.counters.stockFields(skus, VIEW_FIELDS)).map((fields) => ({ fields }));
    const wanted = wantedOf(await this.channelSpec(channel));
    const rows = await this.counters.stockFields(skus, [...VIEW_FIELDS, 'locs', 'lv']);
    const older: Promise<void>[] = [];
    const views = rows.map((row, i): ViewRow => {
      const fields = row.slice(0, VIEW_FIELDS.length);
      const locs = row[VIEW_FIELDS.length];
      const lv = row[VIEW_FIELDS.length + 1];
      if (fields[0] === null) return { fields };
      if (locs == null) {
        const total = Number(fields[0]);
        const reserved = Number(fields[1] ?? 0);
        return {
          fields,
          levels: wanted.has(DEFAULT_LOCATION) ? [{ locationId: DEFAULT_LOCATION, total, reserved }] : [],
        };
      }
      const view: ViewRow = { fields, levels: [] };
      if (lv != null) view.levels = parseLevels(lv).filter((l) => wanted.has(l.locationId));
      else
        older.push(
          this.counters.levels(skus[i]!, locs.split(',')).then((all) => {
            view.levels = all.filter((l) => wanted.has(l.locationId));
          }),
        );
      return view;
    });
    await Promise.all(older);
    return views;
  }

  /**
   * The flash-sale pre-check of a cart, from Redis (precheck.lua: hold.lua's own rule, changing
   * nothing): the refusal the cart would get now, if any, unless it is a repeat of a reservation
   * that holds or finished (its workflow answers that); each line's available units, and on
   * limited SKUs the units the customer may still take. The Lua hold still decides; this only
   * spares Temporal and PostgreSQL the carts that cannot be held.
   */
  async precheck(
    items: readonly CartLine[],
    customerId?: string,
    reservationId?: string,
    channel?: string,
  ): Promise<{ refusal?: StockholdError; repeat: boolean; available: number[]; allowance: (number | undefined)[] }> {
    const spec = channel === undefined ? undefined : await this.channelSpec(channel);
    const verdict = await this.counters.precheck(reservationId ?? '', items, customerId ?? '', spec);
    // A repeat whose first request is still on its way in Temporal (no hold in Redis yet) joins it.
    if (verdict.refusal && reservationId && (await this.counters.isPending(items[0]!.sku, reservationId, this.now()))) {
      return { ...verdict, refusal: undefined, repeat: true };
    }
    return { ...verdict, refusal: verdict.refusal && ((await this.explainMissing(verdict.refusal)) as StockholdError) };
  }

  /**
   * Notes that a reservation's request goes into Temporal now, so that a repeat is joined to it
   * while its hold has not landed (for as long as a request may take, and some).
   */
  noteAdmitted(reservationId: string, items: readonly CartLine[]): Promise<void> {
    const now = this.now();
    return this.counters.notePending(items[0]!.sku, reservationId, now, now + ADMITTED_NOTE_MS);
  }

  /** Resolves when PostgreSQL answers a query. */
  async databaseAnswers(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  /** Whether the counters are loaded from PostgreSQL (false while they are rebuilt after a loss). */
  countersLoaded(): Promise<boolean> {
    return this.counters.loaded();
  }

  /** Who holds a SKU's stock now: Redis's holds, with each reservation's deadline from PostgreSQL. */
  async getHolds(sku: string): Promise<{ sku: string; holds: StockHold[] }> {
    const held = await this.counters.holds(sku);
    if (!held) throw await this.explainMissing(new CountersMissing(sku));
    const [expiries, allocations] = await Promise.all([
      this.ledger.reservations.expiresAtOf(Object.keys(held)),
      this.counters.allocations(sku, held),
    ]);
    const holds = Object.entries(held)
      .map(([reservationId, quantity]) => ({
        reservationId,
        quantity,
        expiresAt: expiries.get(reservationId) ?? null,
        // v3's allocations only on a SKU with levels (contract v3: a deployment that never names a
        // location sees v2's holds).
        ...(allocations.has(reservationId) ? { allocations: allocations.get(reservationId) } : {}),
      }))
      .sort(
        (a, b) =>
          (a.expiresAt ?? '').localeCompare(b.expiresAt ?? '') || a.reservationId.localeCompare(b.reservationId),
      );
    return { sku, holds };
  }

  /** One page of the SKUs, in SKU order after `after`, with the cursor of the next page (null on the last). */
  listSkus(after: string | undefined, limit: number): Promise<{ skus: string[]; next: string | null }> {
    return this.ledger.skus.page(after, limit);
  }

  /** Every location, in creation order (`default` first). */
  listLocations(): Promise<{ locations: Location[] }> {
    return this.ledger.locations.list().then((locations) => ({ locations }));
  }

  /** A channel (`default` even when no admin replaced it); CHANNEL_NOT_FOUND otherwise. */
  getChannel(channel: string): Promise<Channel> {
    return this.ledger.locations.channel(channel);
  }

  /** Every channel, `default` first. */
  listChannels(): Promise<{ channels: Channel[] }> {
    return this.ledger.locations.channels().then((channels) => ({ channels }));
  }

  /** The ledger of a SKU, newest first. */
  async getMovements(sku: string, limit = DEFAULT_MOVEMENTS): Promise<{ movements: Movement[] }> {
    return { movements: await this.ledger.movements.list(sku, limit) };
  }

  /**
   * Committed events in outbox order (`seq`), optionally only a SKU's and after a `seq` (for tests
   * and operators; webhook delivery reads the table itself). A `seq` order across SKUs is not a
   * commit order: per SKU it is (see docs/DESIGN.md "Events (outbox)").
   */
  events(query: { sku?: string; afterSeq?: string; limit: number }): Promise<StockholdEvent[]> {
    return readEvents(this.db, query);
  }

  /** A reservation as PostgreSQL records it; undefined when it never got past the hold. */
  getReservation(reservationId: string): Promise<ReservationView | undefined> {
    return this.ledger.reservations.reservation(reservationId);
  }

  // ---------------------------------------------------------------- helpers

  /**
   * A SKU without counters is unknown (404) only if Redis is loaded and PostgreSQL does not know
   * it either; otherwise Redis lost its counters (503 until they are rebuilt). Other errors pass.
   */
  async explainMissing(err: unknown): Promise<unknown> {
    if (!(err instanceof CountersMissing)) return err;
    if (!(await this.counters.loaded()) || (await this.ledger.skus.skuExists(err.sku))) return notLoaded();
    return skuNotFound(err.sku);
  }

  protected reservedOf(sku: string): Promise<number> {
    return this.counters.reserved(sku);
  }
}

/** The stock hash's fields of a stock view, in viewOf's order. */
const VIEW_FIELDS = ['total', 'reserved', 'name', 'lowStockThreshold', 'maxPerCustomer'] as const;

/** A SKU's stock hash fields (VIEW_FIELDS), and its levels at the channel's locations when read through one. */
interface ViewRow {
  fields: (string | null)[];
  levels?: LevelFigures[];
}

/** A channel's locations as a set, made once per spec the cache holds. */
const wantedSets = new WeakMap<ChannelSpec, ReadonlySet<string>>();
function wantedOf(spec: ChannelSpec): ReadonlySet<string> {
  let set = wantedSets.get(spec);
  if (!set) wantedSets.set(spec, (set = new Set(spec.locations)));
  return set;
}

function viewOf(sku: string, { fields, levels }: ViewRow): StockView {
  const [total, reserved, name, lowStockThreshold, maxPerCustomer] = fields;
  const settings: SkuSettings = {
    lowStockThreshold: lowStockThreshold == null ? null : Number(lowStockThreshold),
    maxPerCustomer: maxPerCustomer == null ? null : Number(maxPerCustomer),
  };
  if (!levels) return stockView(sku, name ?? '', Number(total), Number(reserved ?? 0), settings);
  // Through a channel: its locations where the SKU has a level, by id; the figures are theirs
  // summed, and what a buyer can hold there is what each location has free (never below 0).
  const locations: LocationLevel[] = levels
    .map((l) => ({
      locationId: l.locationId,
      total: l.total,
      reserved: l.reserved,
      available: Math.max(0, l.total - l.reserved),
    }))
    .sort((a, b) => (a.locationId < b.locationId ? -1 : a.locationId > b.locationId ? 1 : 0));
  const sum = (f: (l: LocationLevel) => number) => locations.reduce((n, l) => n + f(l), 0);
  return {
    ...stockView(
      sku,
      name ?? '',
      sum((l) => l.total),
      sum((l) => l.reserved),
      settings,
    ),
    available: sum((l) => l.available),
    locations,
  };
}

function notLoaded(): StockholdError {
  return unavailable('stock counters are not loaded in Redis yet (rebuilding from PostgreSQL); retry shortly');
}
