/**
 * The append-only ledger of stock movements: every change of `skus.total` is one
 * `stock_movements` row written in the same transaction (initial, restock, adjustment, sale,
 * return). Methods taking a PoolClient run in the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import { randomUUID } from 'node:crypto';
import {
  insufficientStock,
  locationNotFound,
  locationRequired,
  skuNotFound,
  StockholdError,
  transferShort,
} from '../../domain/errors';
import { MAX_STOCK } from '../../domain/limits';
import { DEFAULT_LOCATION, type Movement, type MovementKind } from '../../domain/types';

import type { EventWriter, SkuMovement } from './events';
import { SKU_COLUMNS, skuRowOf, type SkuColumns, type SkuLedger } from './skus';
import type { SkuRow } from '../../domain/types';

/** A ledger row as the reconciler and a repeated request re-apply it. */
export interface LedgerMovement {
  id: string;
  sku: string;
  kind: MovementKind;
  delta: number;
  /** The reservation of a `sale` or `return`. */
  reservationId: string | null;
  /** That reservation's customer, if it names one (whose bought count the movement changes). */
  customerId: string | null;
  at: Date;
  /** Where the units moved. */
  locationId: string;
}

/** The columns of a LedgerMovement (`m`, joined with its reservation `r`), and the row → movement mapping. */
export const MOVEMENT_COLUMNS =
  'm.id::text AS id, m.sku, m.kind, m.delta, m.reservation_id, r.customer_id, m.at, m.location_id';
export const MOVEMENT_FROM = 'stock_movements m LEFT JOIN reservations r ON r.id = m.reservation_id';
export function movementOf(r: {
  id: string;
  sku: string;
  kind: MovementKind;
  delta: string;
  reservation_id: string | null;
  customer_id: string | null;
  at: Date;
  location_id: string;
}): LedgerMovement {
  return {
    id: r.id,
    sku: r.sku,
    kind: r.kind,
    delta: Number(r.delta),
    reservationId: r.reservation_id,
    customerId: r.customer_id,
    at: r.at,
    locationId: r.location_id,
  };
}

/** A `stock_movements` row as MOVEMENT_RETURNING and `list` read it. */
interface MovementRow {
  id: string;
  kind: MovementKind;
  delta: string;
  reservation_id: string | null;
  reason: string | null;
  at: Date;
  location_id?: string;
  transfer_id?: string | null;
}

function movementRowOf(sku: string, r: MovementRow): SkuMovement {
  return {
    sku,
    id: r.id,
    kind: r.kind,
    delta: Number(r.delta),
    ...(r.reservation_id ? { reservationId: r.reservation_id } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    at: r.at.toISOString(),
    // Contract v3, in the events' movement: where, when not `default` (a v2 event is unchanged).
    ...(r.location_id && r.location_id !== DEFAULT_LOCATION ? { locationId: r.location_id } : {}),
    ...(r.transfer_id ? { transferId: r.transfer_id } : {}),
  };
}
const MOVEMENT_RETURNING =
  'RETURNING id::text AS id, kind, delta, reservation_id, reason, at, location_id, transfer_id';

export class MovementLedger {
  constructor(
    readonly db: Pool,
    private readonly skus: SkuLedger,
    private readonly events: EventWriter,
  ) {}

  /**
   * Inserts a new SKU's row and its `initial` movements, one per location it is stocked at (contract
   * v3; `[['default', total]]` for a v1 SKU); SKU_EXISTS when it is there already,
   * LOCATION_NOT_FOUND for a location that does not exist. The movement ids in order.
   */
  async createSku(
    c: PoolClient,
    sku: string,
    name: string,
    levels: readonly (readonly [string, number])[],
  ): Promise<{ movementIds: string[] }> {
    await this.locationsExist(
      c,
      levels.map(([locationId]) => locationId),
    );
    const total = levels.reduce((sum, [, units]) => sum + units, 0);
    const inserted = await c
      .query('INSERT INTO skus (sku, name, total) VALUES ($1, $2, $3) ON CONFLICT (sku) DO NOTHING', [sku, name, total])
      .catch((err: unknown) => {
        // The id is a bundle's (migrations/1765900000000_bundles.sql): taken all the same.
        if ((err as { constraint?: string }).constraint === 'sku_is_bundle') return { rowCount: 0 };
        throw err;
      });
    if (inserted.rowCount === 0) throw new StockholdError('SKU_EXISTS', `SKU ${sku} already exists`, { sku });
    const moved: SkuMovement[] = [];
    for (const [locationId, units] of levels) {
      const initial = await c.query<MovementRow>(
        `INSERT INTO stock_movements (sku, kind, delta, reason, location_id) VALUES ($1, 'initial', $2, 'created', $3)
         ${MOVEMENT_RETURNING}`,
        [sku, units, locationId],
      );
      moved.push(movementRowOf(sku, initial.rows[0]!));
    }
    // The new row is this transaction's until it commits: no other writer of the SKU gets before it.
    // No threshold event: a SKU starts with no threshold, and "from 0" is not a change back.
    await this.events.write(c, { before: new Map(), movements: moved });
    return { movementIds: moved.map((m) => m.id) };
  }

  /** LOCATION_NOT_FOUND unless every one of these locations exists. */
  async locationsExist(c: PoolClient, locationIds: readonly string[]): Promise<void> {
    const found = await c.query<{ location_id: string }>(
      'SELECT location_id FROM locations WHERE location_id = ANY($1::text[])',
      [locationIds],
    );
    const known = new Set(found.rows.map((r) => r.location_id));
    const missing = locationIds.find((id) => !known.has(id));
    if (missing !== undefined) throw locationNotFound(missing);
  }

  /**
   * The level a write of a SKU (its row locked in `c`) goes to (contract v3): the location named
   * (LOCATION_NOT_FOUND when it does not exist; a level there need not exist yet), else the SKU's
   * only location; LOCATION_REQUIRED when it is stocked at several.
   */
  async levelFor(
    c: PoolClient,
    sku: string,
    locationId: string | undefined,
  ): Promise<{ locationId: string; total: number; reserved: number }> {
    const levels = await c.query<{ location_id: string; total: string; reserved: string }>(
      'SELECT location_id, total, reserved FROM stock_levels WHERE sku = $1 ORDER BY location_id',
      [sku],
    );
    if (locationId === undefined) {
      if (levels.rows.length > 1)
        throw locationRequired(
          sku,
          levels.rows.map((r) => r.location_id),
        );
      locationId = levels.rows[0]?.location_id ?? DEFAULT_LOCATION;
    }
    const level = levels.rows.find((r) => r.location_id === locationId);
    if (!level) await this.locationsExist(c, [locationId]);
    return { locationId, total: Number(level?.total ?? 0), reserved: Number(level?.reserved ?? 0) };
  }

  /**
   * A transfer of unreserved units between two locations of a SKU (its row locked in `c`): a
   * `transfer_out` at `from` and a `transfer_in` at `to` sharing a new transferId (the levels
   * follow them; `skus.total` does not change). WOULD_OVERSELL when `from`'s unreserved units, as
   * PostgreSQL counts them, are short (Redis checks its own in the same transaction).
   */
  async transfer(
    c: PoolClient,
    sku: string,
    move: { from: string; to: string; quantity: number; reason?: string },
  ): Promise<{ out: SkuMovement; in: SkuMovement; transferId: string }> {
    const from = await this.levelFor(c, sku, move.from);
    await this.locationsExist(c, [move.to]);
    if (from.total - from.reserved < move.quantity)
      throw transferShort(sku, move.from, move.quantity, from.total - from.reserved);
    const transferId = randomUUID();
    const insert = async (kind: 'transfer_out' | 'transfer_in', delta: number, locationId: string) =>
      movementRowOf(
        sku,
        (
          await c.query<MovementRow>(
            `INSERT INTO stock_movements (sku, kind, delta, reason, location_id, transfer_id)
             VALUES ($1, $2, $3, $4, $5, $6) ${MOVEMENT_RETURNING}`,
            [sku, kind, delta, move.reason ?? null, locationId, transferId],
          )
        ).rows[0]!,
      );
    const out = await insert('transfer_out', -move.quantity, move.from);
    const into = await insert('transfer_in', move.quantity, move.to);
    await c.query('UPDATE skus SET updated_at = now() WHERE sku = $1', [sku]);
    // stock.changed per movement; the SKU's available does not change, so no threshold is crossed.
    await this.events.write(c, { before: new Map(), movements: [out, into] });
    return { out, in: into, transferId };
  }

  /**
   * Changes a SKU's total by `delta` with its ledger row; the row after it. The row lock comes
   * before the movement's id, so movement ids of one SKU follow the order of their commits. Writes
   * the movement's events (stock.changed and any threshold crossing) unless `events` is false
   * (a caller that changes more in the same transaction writes them itself).
   */
  async move(
    c: PoolClient,
    movement: {
      sku: string;
      kind: Exclude<MovementKind, 'initial'>;
      delta: number;
      reservationId?: string;
      reason?: string;
      /** Where (contract v3); absent: `default`. */
      locationId?: string;
    },
    events = true,
  ): Promise<{ movementId: string; movement: SkuMovement } & SkuRow> {
    const updated = await c.query<SkuColumns>(
      `UPDATE skus SET total = total + $2, updated_at = now() WHERE sku = $1 AND total + $2 BETWEEN 0 AND $3 RETURNING ${SKU_COLUMNS}`,
      [movement.sku, movement.delta, MAX_STOCK],
    );
    const row = updated.rows[0];
    if (!row) {
      const current = await this.skus.lockSku(c, movement.sku); // SKU_NOT_FOUND when there is none
      if (current.total + movement.delta < 0) throw insufficientStock(movement.sku, -movement.delta, current.total);
      const field = movement.kind === 'adjustment' ? 'delta' : 'quantity';
      throw new StockholdError('INVALID_REQUEST', `${field}: total would exceed 2^31-1`, { field });
    }
    const inserted = await c.query<MovementRow>(
      `INSERT INTO stock_movements (sku, kind, delta, reservation_id, reason, location_id)
       VALUES ($1, $2, $3, $4, $5, $6) ${MOVEMENT_RETURNING}`,
      [
        movement.sku,
        movement.kind,
        movement.delta,
        movement.reservationId ?? null,
        movement.reason ?? null,
        movement.locationId ?? 'default',
      ],
    );
    const after = skuRowOf(row);
    const moved = movementRowOf(movement.sku, inserted.rows[0]!);
    if (events) {
      // The UPDATE above holds the row lock; only the total changed, by delta.
      const before = new Map([[movement.sku, { ...after, total: after.total - movement.delta }]]);
      await this.events.write(c, { before, movements: [moved] });
    }
    return { movementId: moved.id, movement: moved, ...after };
  }

  /** A SKU's ledger, newest first; SKU_NOT_FOUND when it has none (every SKU has its `initial` row). */
  async list(sku: string, limit: number): Promise<Movement[]> {
    const result = await this.db.query<MovementRow & { location_id: string; spread: boolean }>(
      `SELECT id::text AS id, kind, delta, reservation_id, reason, at, location_id, transfer_id,
              EXISTS (SELECT 1 FROM stock_levels v WHERE v.sku = $1 AND v.location_id <> 'default') AS spread
         FROM stock_movements WHERE sku = $1 ORDER BY id DESC LIMIT $2`,
      [sku, limit],
    );
    if (result.rowCount === 0) throw skuNotFound(sku);
    // The events' movement, without its SKU; contract v3's locationId on every row of a SKU that
    // has a level elsewhere than `default` (v2's rows before).
    return result.rows.map((r) => {
      const { sku: _, ...movement } = movementRowOf(sku, r);
      return r.spread ? { ...movement, locationId: r.location_id } : movement;
    });
  }

  /** The movements with these ids. */
  async movementsById(ids: readonly string[]): Promise<LedgerMovement[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<Parameters<typeof movementOf>[0]>(
      `SELECT ${MOVEMENT_COLUMNS} FROM ${MOVEMENT_FROM} WHERE m.id = ANY($1::bigint[]) ORDER BY m.id`,
      [ids],
    );
    return rows.rows.map(movementOf);
  }
}
