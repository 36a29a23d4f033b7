/**
 * Counts of what only a store failure explains, kept in PostgreSQL (`reconciler_counts`) so every
 * API process's /metrics shows the deployment's: the reconciler's repairs (`<kind>`), its alerts
 * (`unexplained:<kind>`) and scans (`scan`), holds PostgreSQL refused after Redis applied them
 * (`unexplained:refused_hold`) and sales it refused (`refused_sale`).
 */
import type { Pool } from 'pg';

export class DriftCounts {
  constructor(private readonly db: Pool) {}

  /** Adds `n` to the count of `kind`. */
  async count(kind: string, n = 1): Promise<void> {
    await this.db.query(
      `INSERT INTO reconciler_counts (kind, count, last_at) VALUES ($1, $2, now())
       ON CONFLICT (kind) DO UPDATE SET count = reconciler_counts.count + $2, last_at = now()`,
      [kind, n],
    );
  }

  /** Every count by kind, with when it last moved. */
  async counts(): Promise<{ kind: string; count: number; lastAt: Date }[]> {
    const rows = await this.db.query<{ kind: string; count: string; last_at: Date }>(
      'SELECT kind, count, last_at FROM reconciler_counts',
    );
    return rows.rows.map((r) => ({ kind: r.kind, count: Number(r.count), lastAt: r.last_at }));
  }
}
