/**
 * The rebuild after Redis lost everything (its `stockhold:loaded` marker is gone): fenced, so it
 * runs once at a time across processes, and late, so holds in flight land first.
 */
import { randomUUID } from 'node:crypto';
import type { StockStore } from '../stock/store';
import { ReconcilerStore } from './store';

export interface RebuildOptions {
  /**
   * How long to wait before reading PostgreSQL: longer than a hold attempt (Redis, then its
   * PostgreSQL row), so a hold that reached Redis before the loss has its row by then. Meanwhile
   * every script answers NOT_LOADED (the counters are gone): holds are refused with 503, and
   * releases, commits and restocks retry.
   */
  settleMs: number;
  /** SKUs per PostgreSQL snapshot. */
  pageSize?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Loads every SKU that has no counters from a consistent PostgreSQL snapshot (its total, its
 * HELD reservations' holds, and its mark), then sets the marker. Returns the SKUs loaded, or
 * undefined when Redis was not empty-handed (marker present) or another process holds the fence.
 */
export async function rebuildIfLost(store: StockStore, options: RebuildOptions): Promise<number | undefined> {
  const { counters } = store;
  const scan = new ReconcilerStore(store.db);
  if (await counters.loaded()) return undefined;
  const token = randomUUID();
  if (!(await counters.takeRebuildFence(token, options.settleMs + 120_000))) return undefined;
  try {
    await (options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(options.settleMs);
    let loaded = 0;
    for (let after = ''; ;) {
      const { skus: page } = await store.ledger.skus.page(after, options.pageSize ?? 500);
      if (page.length === 0) break;
      for (const sku of await scan.snapshot(page)) {
        if ((await counters.load(sku.sku, sku, 'missing')).loaded) loaded += 1;
      }
      after = page.at(-1)!;
    }
    await counters.markLoaded(new Date().toISOString());
    return loaded;
  } finally {
    await counters.releaseRebuildFence(token).catch(() => undefined);
  }
}
