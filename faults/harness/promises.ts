/**
 * What clients were told, judged against PostgreSQL at the end of a phase (the source of truth:
 * its final statuses, their reasons and times, and its sales). The stores agreeing with each
 * other is not enough: a service can heal to agreeing stores after telling two buyers the same
 * unit was theirs. Each rule says what the contract (API.md) lets a client rely on, and what it
 * allows; a reservation still HELD or PENDING is left to the wedged check.
 *
 * Broken promises (API.md, "Promises"): a 201 HELD (or 200 HELD on a repeat) promises the units
 * until the deadline it told (or the last extend told), unless the client cancels:
 * - its commit never answers 409 INSUFFICIENT_STOCK;
 * - PostgreSQL never cancels it for want of stock (a paymentSucceeded's commit refused, or an
 *   HTTP commit whose answer was lost);
 * - it never ends EXPIRED before that deadline (PostgreSQL's time of the change; an extend whose
 *   answer was lost may have moved the deadline to its first attempt plus its TTL, so the
 *   promise is then the shorter of the two);
 * - it never ends CANCELLED unless a client asked (a cancel, a paymentFailed);
 * - a paymentSucceeded Temporal accepted at least PAYMENT_RACE_MS before the deadline ends it
 *   COMMITTED (the signal is in the workflow's history before its timer fires; closer to the
 *   deadline the two may be one workflow task, and either outcome is allowed).
 * A commit answered 409 RESERVATION_EXPIRED is judged by when the reservation expired, not by
 * when the client sent it: one that waited inside the service past the deadline (no worker,
 * Temporal down) may find it expired, which the contract allows ("a commit that arrives after").
 *
 * Answers PostgreSQL contradicts:
 * - a 200 CANCELLED (or EXPIRED) from cancel: PostgreSQL has that status, and no sale;
 * - a 409 RESERVATION_<STATUS> from commit, cancel or extend: PostgreSQL ends in that status
 *   (REJECTED: no row, or REJECTED), never with a sale unless it says COMMITTED;
 * - a 404 from commit, cancel or extend of a reservation a client heard HELD: never (PostgreSQL
 *   keeps every reservation that was held; a 404 says there is none);
 * - a paymentFailed Temporal accepted: never COMMITTED; CANCELLED when accepted before the
 *   deadline (less PAYMENT_RACE_MS), CANCELLED or EXPIRED after;
 * - COMMITTED only if a client asked (a commit, a paymentSucceeded);
 * - a create refused with a 4xx: no hold kept (no row, or REJECTED);
 * - reservations no client knows the id of (a create without an id whose answer was lost): no more
 *   of them than such lost answers, none COMMITTED (nobody could have committed it). That none
 *   holds units past its TTL is the wedged check (PostgreSQL) and the drift check (a Redis hold
 *   of a reservation that is not HELD).
 * A 200 COMMITTED is judged in checks.ts (sales: `heardNotCommitted`).
 */
import type { Pool } from 'pg';
import type { ClientStep, Tracker, TrackedReservation } from './workload';

/** A paymentSucceeded/paymentFailed accepted closer than this to the deadline may race its timer (see above). */
export const PAYMENT_RACE_MS = 1_000;

export interface PromiseFindings {
  /** One line per reservation whose promise was broken. */
  broken: string[];
  /** One line per answer PostgreSQL contradicts. */
  contradicted: string[];
  /** How many answers of each kind were judged (a run shows its checks had something to judge). */
  judged: Record<string, number>;
  /** Reservations on the phase's SKUs that no client knows the id of, and the lost answers that may explain them. */
  unknownIds: { found: number; lostAnswers: number; examples: string[] };
}

export interface PgReservation {
  status: string;
  reason: string | null;
  updatedAt: number;
  sales: number;
}

const FINAL = new Set(['COMMITTED', 'CANCELLED', 'EXPIRED', 'REJECTED']);
const iso = (ms: number) => new Date(ms).toISOString().slice(11, 23);

/** Judges every reservation of `phase` the clients know, and those on `skus` they do not. */
export async function promises(db: Pool, tracker: Tracker, phase: string, skus: string[]): Promise<PromiseFindings> {
  const tracked = [...tracker.reservations.values()].filter((r) => r.phase === phase);
  const rows = await db.query<{ id: string; status: string; reason: string | null; updated_at: Date; sales: string }>(
    `SELECT r.id, r.status, r.reason, r.updated_at,
            (SELECT count(*) FROM stock_movements m WHERE m.reservation_id = r.id AND m.kind = 'sale') AS sales
       FROM reservations r WHERE r.id = ANY($1::text[])`,
    [tracked.map((r) => r.id)],
  );
  const pg = new Map<string, PgReservation>(
    rows.rows.map((r) => [
      r.id,
      { status: r.status, reason: r.reason, updatedAt: r.updated_at.getTime(), sales: Number(r.sales) },
    ]),
  );
  const findings: PromiseFindings = {
    broken: [],
    contradicted: [],
    judged: {},
    unknownIds: { found: 0, lostAnswers: tracker.unknownOutcomes.get(phase) ?? 0, examples: [] },
  };
  const judged = (kind: string) => (findings.judged[kind] = (findings.judged[kind] ?? 0) + 1);

  for (const r of tracked) {
    const row = pg.get(r.id);
    if (r.heard.startsWith('refused ')) {
      judged('create refused');
      // A refusal keeps nothing: the hold's transaction rolled back, or the run that gave up is REJECTED.
      if (row && row.status !== 'REJECTED')
        findings.contradicted.push(`${r.id}: create answered ${r.heard}, PostgreSQL has it ${row.status}`);
      continue;
    }
    if (row && !FINAL.has(row.status)) continue; // still HELD/PENDING: the wedged check's
    const asked = (...actions: ClientStep['action'][]) => r.steps.some((s) => actions.includes(s.action));
    if (row?.status === 'COMMITTED' && !asked('commit', 'paymentSucceeded'))
      findings.contradicted.push(`${r.id}: COMMITTED though no client committed it or paid (heard ${r.heard})`);
    if (r.heldAt !== undefined) {
      judged('HELD');
      const broken = brokenPromise(r, row);
      if (broken) findings.broken.push(`${r.id}: ${broken}`);
    }
    for (const step of r.steps) {
      const wrong = contradiction(r, step, row);
      if (wrong) findings.contradicted.push(`${r.id}: ${wrong}`);
      if (step.outcome === 'accepted' || (typeof step.outcome === 'number' && step.outcome < 500)) {
        judged(
          `${step.action} ${step.outcome === 200 ? `200 ${step.status}` : [step.outcome, step.code].filter(Boolean).join(' ')}`,
        );
      }
    }
  }

  // Reservations on the phase's SKUs under ids no client was told: creates without an id whose answer was lost.
  const known = [...tracker.reservations.keys()];
  const unknown = await db.query<{ id: string; status: string }>(
    `SELECT DISTINCT r.id, r.status FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
      WHERE l.sku = ANY($1::text[]) AND r.status <> 'REJECTED' AND NOT (r.id = ANY($2::text[]))`,
    [skus, known],
  );
  findings.unknownIds.found = unknown.rows.length;
  findings.unknownIds.examples = unknown.rows.slice(0, 5).map((u) => `${u.id} ${u.status}`);
  if (unknown.rows.length > findings.unknownIds.lostAnswers) {
    findings.contradicted.push(
      `${unknown.rows.length} reservations under ids no client was told, more than the ${findings.unknownIds.lostAnswers} creates whose answer was lost (e.g. ${findings.unknownIds.examples[0]})`,
    );
  }
  for (const u of unknown.rows)
    if (u.status === 'COMMITTED') findings.contradicted.push(`${u.id}: COMMITTED, though no client knew its id`);
  return findings;
}

/** Why a reservation a client heard HELD lost its promise, or undefined when it kept it. */
export function brokenPromise(r: TrackedReservation, row: PgReservation | undefined): string | undefined {
  const until = r.promisedUntilMs ?? r.expiresAtMs;
  const promise = `heard HELD at ${iso(r.heldAt!)} until ${iso(until)}`;
  const refused = r.steps.find((s) => s.action === 'commit' && s.outcome === 409 && s.code === 'INSUFFICIENT_STOCK');
  if (refused) return `commit answered 409 INSUFFICIENT_STOCK at ${iso(refused.at)} (${promise})`;
  if (!row) return `PostgreSQL has no row (${promise})`;
  if (row.status === 'CANCELLED' && row.reason?.startsWith('INSUFFICIENT_STOCK'))
    return `PostgreSQL cancelled it for want of stock at ${iso(row.updatedAt)}: ${row.reason} (${promise})`;
  if (row.status === 'EXPIRED' && row.updatedAt < until)
    return `EXPIRED at ${iso(row.updatedAt)}, ${((until - row.updatedAt) / 1000).toFixed(1)} s before its deadline (${promise})`;
  if (row.status === 'CANCELLED' && !r.steps.some((s) => s.action === 'cancel' || s.action === 'paymentFailed'))
    return `CANCELLED though no client cancelled it: ${row.reason ?? 'no reason'} (${promise})`;
  const paid = r.steps.find(
    (s) => s.action === 'paymentSucceeded' && s.outcome === 'accepted' && s.at <= until - PAYMENT_RACE_MS,
  );
  if (
    paid &&
    row.status !== 'COMMITTED' &&
    !r.steps.some((s) => s.action === 'cancel' || s.action === 'paymentFailed')
  ) {
    return `paymentSucceeded accepted at ${iso(paid.at)}, ${((until - paid.at) / 1000).toFixed(1)} s before its deadline, and it ended ${row.status} (${promise})`;
  }
  return undefined;
}

/** How PostgreSQL contradicts one answer a client got, or undefined when it agrees. */
export function contradiction(
  r: TrackedReservation,
  step: ClientStep,
  row: PgReservation | undefined,
): string | undefined {
  const status = row?.status ?? 'no row';
  const said = (what: string) =>
    `${step.action} answered ${what} at ${iso(step.at)}, PostgreSQL has it ${status}${row && row.sales > 0 && status !== 'COMMITTED' ? ' with a sale' : ''}`;
  if (step.outcome === 404 && r.heldAt !== undefined) return said('404');
  if (step.action === 'cancel' && step.outcome === 200) {
    if (status !== step.status || (row?.sales ?? 0) > 0) return said(`200 ${step.status}`);
  }
  if (step.outcome === 409 && step.code?.startsWith('RESERVATION_')) {
    const named = step.code.slice('RESERVATION_'.length);
    const agrees = named === 'REJECTED' ? !row || status === 'REJECTED' : status === named;
    if (!agrees || (named !== 'COMMITTED' && (row?.sales ?? 0) > 0)) return said(`409 ${step.code}`);
  }
  if (step.action === 'paymentFailed' && step.outcome === 'accepted' && row) {
    const until = r.promisedUntilMs ?? r.expiresAtMs;
    const allowed = step.at <= until - PAYMENT_RACE_MS ? ['CANCELLED'] : ['CANCELLED', 'EXPIRED'];
    // A reservation also paid for (twice-sent signals of one fate never mix; the workload sends one kind) is left to brokenPromise.
    if (!allowed.includes(status))
      return said(`accepted (${((until - step.at) / 1000).toFixed(1)} s before its deadline)`);
  }
  return undefined;
}
