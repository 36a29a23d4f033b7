/**
 * The Redis key layout, written down once (every script header points here). Every key of one SKU
 * shares the `{SKU}` hash tag, so a script over a SKU's keys runs on one slot of a Redis Cluster.
 *
 *   item:{SKU}:stock      hash: the SKU's counters and settings
 *                           total            units not yet sold (PostgreSQL's `skus.total`)
 *                           reserved         units held by live holds (the sum of :holds)
 *                           name             the SKU's name
 *                           mark             the last ledger movement id the counters were loaded up to
 *                           m:<movement id>  a movement applied since `mark` (each applies once)
 *                           maxPerCustomer   the SKU's per-customer limit (absent: none)
 *                           bmark            the ledger position the customers' bought counts are loaded up to
 *                           lowStockThreshold  the low-stock threshold (absent: none)
 *                           locs             the SKU's locations, comma-separated, once it has a level
 *                                            elsewhere than `default`; absent: its one level is
 *                                            `default`, whose figures are `total` and `reserved`
 *                           t:<location>     units not yet sold at a location (with `locs`)
 *                           r:<location>     units held at a location (with `locs`)
 *                           lv               every level's figures in one field, `loc=t/r,…` in `locs`
 *                                            order (with `locs`): what `t:`/`r:` say, rewritten by
 *                                            every script that changes them, so a read through a
 *                                            channel takes one field instead of two per location
 *                           a:<reservationId>  where a hold is, `loc=units,…` in the order its
 *                                            units were taken (with `locs`; absent: `default` whole)
 *   item:{SKU}:holds      hash: reservationId -> units it holds of the SKU
 *   item:{SKU}:done       zset: finished reservation ids (and id@run of a run that gave up) -> ms;
 *                         the guard that keeps a late, retried hold from holding again
 *   item:{SKU}:customers  hash: per-customer counts of a SKU (lua/includes/customers.lua keeps them)
 *                           h:<customerId>     units held by the customer's live holds
 *                           o:<reservationId>  the customer of a live hold (so whoever removes it lowers h:)
 *                           b:<customerId>     units bought minus returned, only while the SKU has
 *                                              maxPerCustomer: loaded from PostgreSQL up to `bmark`,
 *                                              then moved by each sale or return after it, once
 *   item:{SKU}:pending    zset: reservation ids whose first request was let into Temporal, by the first
 *                         SKU of their cart -> ms until which a repeat of that request is taken to
 *                         its workflow even when the SKU looks short (its hold may not have landed)
 *   stockhold:loaded      string: present while the counters are loaded from PostgreSQL; gone after
 *                         a loss (then every script answers NotLoaded until the rebuild sets it)
 *   stockhold:rebuild     string: the rebuild's fence (a token, with an expiry)
 *   stockhold:channels    hash: channel -> its JSON {"locations", "strategy"}, PostgreSQL's as of its
 *                         last write (`default` as computed while no admin put it), read by the
 *                         reads through a channel; put back from PostgreSQL by a read that misses
 *                         it and by the reconciler when it differs
 *   stockhold:bundles     hash: bundle -> its JSON {"name", "components"}, PostgreSQL's as of its last
 *                         write, kept as stockhold:channels is (read by the bundle reads)
 */
import type { Allocation } from '../../domain/types';

export const keys = {
  stock: (sku: string) => `item:{${sku}}:stock`,
  holds: (sku: string) => `item:{${sku}}:holds`,
  done: (sku: string) => `item:{${sku}}:done`,
  customers: (sku: string) => `item:{${sku}}:customers`,
  pending: (sku: string) => `item:{${sku}}:pending`,
  loaded: 'stockhold:loaded',
  rebuildFence: 'stockhold:rebuild',
  channels: 'stockhold:channels',
  bundles: 'stockhold:bundles',
};

/** The four keys of each line, in line order: what hold, precheck, release and commit take as KEYS. */
export function lineKeys(skus: readonly string[]): string[] {
  return skus.flatMap((sku) => [keys.stock(sku), keys.holds(sku), keys.done(sku), keys.customers(sku)]);
}

/** `loc=units,…`: an allocation as the scripts keep it (lua/includes/levels.lua). */
export const allocationText = (allocation: readonly Allocation[]): string =>
  allocation.map((a) => `${a.locationId}=${a.quantity}`).join(',');

/** The inverse of allocationText. */
export function parseAllocation(text: string): Allocation[] {
  return text
    .split(',')
    .filter((part) => part !== '')
    .map((part) => {
      const at = part.lastIndexOf('=');
      return { locationId: part.slice(0, at), quantity: Number(part.slice(at + 1)) };
    });
}

/** A level as a read takes it: its units not yet sold and held. */
export interface LevelFigures {
  locationId: string;
  total: number;
  reserved: number;
}

/** The inverse of levels.lua's `lv` field: `loc=total/reserved,…`. */
export function parseLevels(text: string): LevelFigures[] {
  return text
    .split(',')
    .filter((part) => part !== '')
    .map((part) => {
      const at = part.lastIndexOf('=');
      const slash = part.indexOf('/', at);
      return {
        locationId: part.slice(0, at),
        total: Number(part.slice(at + 1, slash)),
        reserved: Number(part.slice(slash + 1)),
      };
    });
}
