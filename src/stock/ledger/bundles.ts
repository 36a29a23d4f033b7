/**
 * Bundles (contract v3, "Bundles"): a SKU made of other SKUs, with no stock of its own. PostgreSQL
 * keeps the definitions (migrations/1765900000000_bundles.sql); a SKU id is a stocked SKU or a
 * bundle, never both (the migration's trigger, under one advisory lock per id).
 */
import type { Pool } from 'pg';
import { skuNotFound, StockholdError } from '../../domain/errors';
import type { Bundle, BundleComponent } from '../../domain/types';
import { transaction } from '../database';

type BundleRow = { sku: string; name: string; components: BundleComponent[] };

const BUNDLE_SELECT = `SELECT b.sku, b.name,
         (SELECT jsonb_agg(jsonb_build_object('sku', c.sku, 'quantity', c.quantity) ORDER BY c.position)
            FROM bundle_components c WHERE c.bundle = b.sku) AS components
    FROM bundles b`;

export class BundleLedger {
  constructor(readonly db: Pool) {}

  /**
   * Creates or replaces a bundle. Each component must be a stocked SKU: SKU_NOT_FOUND names the
   * first that is not, INVALID_REQUEST the first that is a bundle itself; SKU_EXISTS when the id
   * is a stocked SKU's. A bundle put again without a name keeps the one it had.
   */
  async put(sku: string, name: string | undefined, components: readonly BundleComponent[]): Promise<Bundle> {
    return transaction(this.db, async (c) => {
      const ids = components.map((x) => x.sku);
      // What each component is, in one round trip (in the order given).
      const kinds = await c.query<{ stocked: boolean; bundled: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM skus s WHERE s.sku = x.sku) AS stocked,
                EXISTS (SELECT 1 FROM bundles b WHERE b.sku = x.sku) AS bundled
           FROM unnest($1::text[]) WITH ORDINALITY AS x (sku, n) ORDER BY x.n`,
        [ids],
      );
      for (const [i, id] of ids.entries()) {
        const { stocked, bundled } = kinds.rows[i]!;
        if (bundled || id === sku)
          throw new StockholdError(
            'INVALID_REQUEST',
            `components.${i}.sku: ${id} is a bundle; a component must be a stocked SKU`,
            {
              field: `components.${i}.sku`,
              sku: id,
            },
          );
        if (!stocked) throw skuNotFound(id);
      }
      try {
        await c.query(
          `INSERT INTO bundles (sku, name) VALUES ($1, COALESCE($2, ''))
           ON CONFLICT (sku) DO UPDATE SET name = COALESCE($2, bundles.name), updated_at = now()`,
          [sku, name ?? null],
        );
      } catch (err) {
        if ((err as { constraint?: string }).constraint === 'bundle_is_sku')
          throw new StockholdError('SKU_EXISTS', `SKU ${sku} is a stocked SKU; a bundle needs an id of its own`, {
            sku,
          });
        throw err;
      }
      await c.query('DELETE FROM bundle_components WHERE bundle = $1', [sku]);
      await c.query(
        `INSERT INTO bundle_components (bundle, sku, quantity, position)
         SELECT $1, x.sku, x.quantity, x.position
           FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY AS x(sku, quantity, position)`,
        [sku, ids, components.map((x) => x.quantity)],
      );
      const row = await c.query<BundleRow>(`${BUNDLE_SELECT} WHERE b.sku = $1`, [sku]);
      return row.rows[0]!;
    });
  }

  /** A bundle as PostgreSQL has it; undefined when `sku` is not one. */
  async get(sku: string): Promise<Bundle | undefined> {
    const row = await this.db.query<BundleRow>(`${BUNDLE_SELECT} WHERE b.sku = $1`, [sku]);
    return row.rows[0];
  }

  /** Every bundle, in the order first put (the reconciler's comparison with Redis's copy). */
  async all(): Promise<Bundle[]> {
    const rows = await this.db.query<BundleRow>(`${BUNDLE_SELECT} ORDER BY b.position`);
    return rows.rows;
  }
}
