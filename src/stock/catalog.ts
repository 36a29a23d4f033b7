import type { Pool } from 'pg';

/**
 * One page of the SKUs PostgreSQL knows, in SKU order, after `after` (keyset pagination: a page
 * costs the same however far into the list it is). `next` is the cursor of the following page,
 * or null on the last one. For the ops page's list of SKUs; their figures come from Redis.
 */
export async function skuPage(db: Pool, after: string | undefined, limit: number): Promise<{ skus: string[]; next: string | null }> {
  const { rows } = await db.query<{ sku: string }>(
    'SELECT sku FROM skus WHERE ($1::text IS NULL OR sku > $1) ORDER BY sku LIMIT $2',
    [after ?? null, limit + 1],
  );
  const skus = rows.slice(0, limit).map((r) => r.sku);
  return { skus, next: rows.length > limit ? skus.at(-1)! : null };
}
