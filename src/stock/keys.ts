/** Key layout (docs/DESIGN.md): every key of one SKU shares the `{SKU}` hash tag (one Cluster slot). */
export const keys = {
  /** hash: total, reserved, name, mark, m:<movement id>, maxPerCustomer, bmark, lowStockThreshold */
  stock: (sku: string) => `item:{${sku}}:stock`,
  /** hash: reservationId -> held quantity */
  holds: (sku: string) => `item:{${sku}}:holds`,
  /** zset: finished reservation ids and applied movement ids ("m:<id>") -> ms; the retry guard */
  done: (sku: string) => `item:{${sku}}:done`,
  /** hash: h:<customerId> units held, b:<customerId> units bought (limited SKUs), o:<reservationId> its customer */
  customers: (sku: string) => `item:{${sku}}:customers`,
  /** Present while Redis holds counters loaded from PostgreSQL; gone after a data loss. */
  loaded: 'stockhold:loaded',
};

/** The four keys of each line, in line order: what hold, release and commit take as KEYS. */
export function lineKeys(skus: readonly string[]): string[] {
  return skus.flatMap((sku) => [keys.stock(sku), keys.holds(sku), keys.done(sku), keys.customers(sku)]);
}
