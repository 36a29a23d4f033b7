/**
 * What the stock module answers without changing anything: a SKU's figures and a cart's
 * pre-check from Redis only (the page-load and flash-sale paths), who holds a SKU's stock, the
 * ledger and the outbox from PostgreSQL. StockStore (./store.ts) adds the writes; this base holds
 * the parts both use: the ledger (PostgreSQL), the counters (Redis), and how a missing SKU is told
 * from a lost one.
 */
import type { Pool } from 'pg';
import { bundleHasNoStock, skuNotFound, unavailable, type StockholdError } from '../domain/errors';
import type { StockholdEvent } from '../domain/events';
import { DEFAULT_MOVEMENTS } from '../domain/limits';
import {
  DEFAULT_LOCATION,
  stockView,
  type Bundle,
  type BundleView,
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
import { CachedLookup } from './cached';
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
/** How long a process keeps a bundle it read (bundleSpec). */
const BUNDLE_CACHE_MS = 1_000;

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

  /** `GET /v1/skus/:sku`: a stocked SKU's view (getStock), or a bundle's (contract v3). */
  async readSku(sku: string, channel?: string): Promise<StockView | BundleView> {
    const [row] = await this.viewRows([sku], channel);
    if (row!.fields[0] !== null) return viewOf(sku, row!);
    // No counters: a bundle, or unknown, or counters Redis lost.
    const bundle = await this.bundleSpec(sku);
    if (bundle) return this.bundleView(bundle, channel);
    throw await this.explainMissing(new CountersMissing(sku), { notBundle: true });
  }

  /** `GET /v1/availability`: getAvailability, with the bundles among the SKUs asked for read as bundles (in the order asked). */
  async readAvailability(
    skus: readonly string[],
    channel?: string,
  ): Promise<{ items: (StockView | BundleView)[]; missing: string[] }> {
    const found = await this.getAvailability(skus, channel);
    if (found.missing.length === 0) return found;
    const bundles = (await Promise.all(found.missing.map((sku) => this.bundleSpec(sku)))).filter(
      (b): b is Bundle => b !== undefined,
    );
    if (bundles.length === 0) return found;
    const views = new Map<string, StockView | BundleView>(found.items.map((v) => [v.sku, v]));
    for (const view of await Promise.all(bundles.map((b) => this.bundleView(b, channel)))) views.set(view.sku, view);
    return {
      items: [...new Set(skus)].flatMap((sku) => views.get(sku) ?? []),
      missing: found.missing.filter((sku) => !views.has(sku)),
    };
  }

  /**
   * A bundle's view: each component's available read as its own view's (through `channel`), and
   * the bundle's the least of `floor(available / quantity)` (never below 0). A component whose
   * counters Redis lost answers 503, as a read of it would.
   */
  private async bundleView(bundle: Bundle, channel: string | undefined): Promise<BundleView> {
    const rows = await this.viewRows(
      bundle.components.map((c) => c.sku),
      channel,
    );
    const lost = bundle.components.find((_, i) => rows[i]!.fields[0] === null);
    if (lost) throw await this.explainMissing(new CountersMissing(lost.sku));
    const components = bundle.components.map((c, i) => ({
      sku: c.sku,
      quantity: c.quantity,
      available: viewOf(c.sku, rows[i]!).available,
    }));
    const available = Math.max(0, Math.min(...components.map((c) => Math.floor(c.available / c.quantity))));
    return { sku: bundle.sku, name: bundle.name, bundle: true, available, components };
  }

  /**
   * A bundle as the reads use it: Redis's copy (stockhold:bundles); when Redis has none, PostgreSQL's,
   * put back into Redis. Undefined when `sku` is no bundle.
   */
  async bundleOf(sku: string): Promise<Bundle | undefined> {
    const mirrored = await this.counters.bundle(sku);
    if (mirrored) return mirrored;
    const bundle = await this.ledger.bundles.get(sku);
    if (bundle)
      await this.counters
        .putBundles([bundle])
        .catch((err: unknown) => this.warn('could not put a bundle back into Redis', { sku, err: String(err) }));
    return bundle;
  }

  /** A bundle through this process's cache of BUNDLE_CACHE_MS (a bundle's page reads it on every load). */
  bundleSpec(sku: string): Promise<Bundle | undefined> {
    return this.bundleCache.get(sku);
  }

  /** Bundles this process read lately (only bundles: an unknown SKU is not kept); its own bundle writes clear it. */
  protected readonly bundleCache = new CachedLookup<Bundle | undefined>(
    (sku) => this.bundleOf(sku),
    BUNDLE_CACHE_MS,
    () => this.now(),
    (bundle) => bundle !== undefined,
  );

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
  channelSpec(name: string, fresh = false): Promise<ChannelSpec> {
    return this.channelCache.get(name, fresh);
  }

  /** Channels this process read lately; its own channel and location writes clear it (admin.ts). */
  protected readonly channelCache = new CachedLookup<ChannelSpec>(
    (name) => this.channelOf(name).then(({ locations, strategy }) => ({ locations, strategy })),
    CHANNEL_CACHE_MS,
    () => this.now(),
  );

  /**
   * The view's fields of these SKUs, with their levels: through a channel, those at its
   * locations; without one, every level of a SKU stocked elsewhere than `default` (a SKU only ever
   * at `default` is read as v2 read it: docs/API.md, Choices). The levels come from the SKU's `lv`
   * field (every level's figures in one string, kept by the scripts: lua/includes/levels.lua) in
   * the same HMGET, so a read is one round trip per SKU either way; the channel comes from this
   * process's cache (channelSpec). A SKU without `locs` has its one level at `default`, whose
   * figures are its `total` and `reserved`; one with `locs` but no `lv` (written by a version
   * before it) has its levels read in a second round trip.
   */
  private async viewRows(skus: readonly string[], channel: string | undefined): Promise<ViewRow[]> {
    const wanted = channel === undefined ? undefined : wantedOf(await this.channelSpec(channel));
    const keep = (all: LevelFigures[]) => (wanted ? all.filter((l) => wanted.has(l.locationId)) : all);
    const rows = await this.counters.stockFields(skus, [...VIEW_FIELDS, 'locs', 'lv']);
    const older: Promise<void>[] = [];
    const views = rows.map((row, i): ViewRow => {
      const fields = row.slice(0, VIEW_FIELDS.length);
      const locs = row[VIEW_FIELDS.length];
      const lv = row[VIEW_FIELDS.length + 1];
      if (fields[0] === null) return { fields };
      if (locs == null) {
        if (!wanted) return { fields };
        const total = Number(fields[0]);
        const reserved = Number(fields[1] ?? 0);
        return {
          fields,
          levels: wanted.has(DEFAULT_LOCATION) ? [{ locationId: DEFAULT_LOCATION, total, reserved }] : [],
        };
      }
      const view: ViewRow = { fields, levels: [] };
      if (lv != null) view.levels = keep(parseLevels(lv));
      else
        older.push(
          this.counters.levels(skus[i]!, locs.split(',')).then((all) => {
            view.levels = keep(all);
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
   * it either; otherwise Redis lost its counters (503 until they are rebuilt). A bundle has no
   * counters of its own: a write or a hold that names one is 400 (docs/API.md, Known
   * differences: bundle lines are not held yet). Other errors pass.
   */
  async explainMissing(err: unknown, known: { notBundle?: boolean } = {}): Promise<unknown> {
    if (!(err instanceof CountersMissing)) return err;
    if (!(await this.counters.loaded()) || (await this.ledger.skus.skuExists(err.sku))) return notLoaded();
    // `notBundle`: the caller looked already (readSku), so a 404 does not ask Redis and PostgreSQL twice.
    if (!known.notBundle && (await this.bundleSpec(err.sku))) return bundleHasNoStock(err.sku);
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
  // Its levels (through a channel, those at the channel's locations), by id; the figures are
  // theirs summed, and what a buyer can hold is what each location has free (never below 0).
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
