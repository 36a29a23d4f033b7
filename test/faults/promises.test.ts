/**
 * The fault harness's rules for what clients were told (faults/harness/promises.ts) and its
 * judge (faults/harness/phase.ts), on made-up reservations and phases: no stores. Each rule is
 * shown to flag what the contract forbids and to let through what it allows, so a run that
 * passes is not a run whose checks cannot fail.
 */
import type { PhaseResult } from '../../faults/harness/phase';
import { judge } from '../../faults/harness/phase';
import { brokenPromise, contradiction, PAYMENT_RACE_MS, type PgReservation } from '../../faults/harness/promises';
import type { ClientStep, TrackedReservation } from '../../faults/harness/workload';

const T = Date.parse('2026-01-01T00:00:00Z');

/** A reservation a client heard HELD at T, promised for 10 s, with these steps. */
function held(steps: Partial<ClientStep>[] = [], extra: Partial<TrackedReservation> = {}): TrackedReservation {
  return {
    id: 'r1',
    phase: 'p',
    items: [{ sku: 'S', quantity: 1 }],
    createdAt: T,
    expiresAtMs: T + 10_000,
    heard: 'HELD',
    heldAt: T,
    promisedUntilMs: T + 10_000,
    steps: steps.map((s) => ({
      action: 'commit',
      sentAt: T + 1_000,
      lastSentAt: T + 1_000,
      at: T + 1_200,
      outcome: 200,
      ...s,
    })),
    ...extra,
  };
}

const pg = (status: string, at: number, more: Partial<PgReservation> = {}): PgReservation => ({
  status,
  reason: null,
  updatedAt: at,
  sales: status === 'COMMITTED' ? 1 : 0,
  ...more,
});

describe('a HELD answer is a promise until its deadline', () => {
  test('a commit answered 409 INSUFFICIENT_STOCK breaks it', () => {
    expect(brokenPromise(held([{ outcome: 409, code: 'INSUFFICIENT_STOCK' }]), pg('CANCELLED', T + 1_100))).toMatch(
      /INSUFFICIENT_STOCK/,
    );
  });

  test('a reservation PostgreSQL cancelled for want of stock (a paid one, whose client heard nothing) breaks it', () => {
    const r = held([{ action: 'paymentSucceeded', outcome: 'accepted' }]);
    expect(
      brokenPromise(r, pg('CANCELLED', T + 1_500, { reason: 'INSUFFICIENT_STOCK: only 0 of S available' })),
    ).toMatch(/for want of stock/);
  });

  test('expiring before the deadline breaks it; at or after the deadline keeps it', () => {
    expect(brokenPromise(held(), pg('EXPIRED', T + 9_000))).toMatch(/before its deadline/);
    expect(brokenPromise(held(), pg('EXPIRED', T + 10_000))).toBeUndefined();
  });

  test("an extend's answer moves the deadline (even earlier: the client asked for it)", () => {
    const r = held([{ action: 'extend', outcome: 200, expiresAtMs: T + 5_000 }], { promisedUntilMs: T + 5_000 });
    expect(brokenPromise(r, pg('EXPIRED', T + 5_100))).toBeUndefined();
    const later = held([{ action: 'extend', outcome: 200, expiresAtMs: T + 20_000 }], { promisedUntilMs: T + 20_000 });
    expect(brokenPromise(later, pg('EXPIRED', T + 12_000))).toMatch(/before its deadline/);
  });

  test('cancelled without a client asking breaks it; a client cancel or paymentFailed does not', () => {
    expect(
      brokenPromise(held(), pg('CANCELLED', T + 3_000, { reason: 'released by the reconciler: its workflow is gone' })),
    ).toMatch(/no client cancelled/);
    expect(
      brokenPromise(held([{ action: 'cancel', status: 'CANCELLED' }]), pg('CANCELLED', T + 1_200)),
    ).toBeUndefined();
    expect(
      brokenPromise(held([{ action: 'paymentFailed', outcome: 'accepted' }]), pg('CANCELLED', T + 1_200)),
    ).toBeUndefined();
  });

  test('a paymentSucceeded accepted well before the deadline must commit; one racing the deadline may expire', () => {
    expect(
      brokenPromise(
        held([{ action: 'paymentSucceeded', outcome: 'accepted', at: T + 2_000 }]),
        pg('EXPIRED', T + 10_000),
      ),
    ).toMatch(/paymentSucceeded accepted/);
    expect(
      brokenPromise(
        held([{ action: 'paymentSucceeded', outcome: 'accepted', at: T + 10_000 - PAYMENT_RACE_MS / 2 }]),
        pg('EXPIRED', T + 10_000),
      ),
    ).toBeUndefined();
    expect(
      brokenPromise(
        held([{ action: 'paymentSucceeded', outcome: 'accepted', at: T + 2_000 }]),
        pg('COMMITTED', T + 2_100),
      ),
    ).toBeUndefined();
  });

  test('a commit answered RESERVATION_EXPIRED after the deadline keeps it (judged by when it expired)', () => {
    expect(
      brokenPromise(
        held([{ outcome: 409, code: 'RESERVATION_EXPIRED', lastSentAt: T + 9_500, at: T + 12_000 }]),
        pg('EXPIRED', T + 10_050),
      ),
    ).toBeUndefined();
  });
});

describe('answers PostgreSQL must not contradict', () => {
  const step = (s: Partial<ClientStep>): ClientStep => ({
    action: 'commit',
    sentAt: T,
    lastSentAt: T,
    at: T,
    outcome: 200,
    ...s,
  });

  test('a 200 CANCELLED is CANCELLED in PostgreSQL, with no sale', () => {
    expect(contradiction(held(), step({ action: 'cancel', status: 'CANCELLED' }), pg('CANCELLED', T))).toBeUndefined();
    expect(contradiction(held(), step({ action: 'cancel', status: 'CANCELLED' }), pg('COMMITTED', T))).toMatch(
      /200 CANCELLED/,
    );
    expect(
      contradiction(held(), step({ action: 'cancel', status: 'CANCELLED' }), pg('CANCELLED', T, { sales: 1 })),
    ).toMatch(/with a sale/);
  });

  test('a 409 RESERVATION_<STATUS> names the status PostgreSQL ends in', () => {
    expect(
      contradiction(held(), step({ outcome: 409, code: 'RESERVATION_EXPIRED' }), pg('EXPIRED', T)),
    ).toBeUndefined();
    expect(contradiction(held(), step({ outcome: 409, code: 'RESERVATION_EXPIRED' }), pg('COMMITTED', T))).toMatch(
      /409 RESERVATION_EXPIRED/,
    );
    expect(
      contradiction(
        held(),
        step({ action: 'cancel', outcome: 409, code: 'RESERVATION_COMMITTED' }),
        pg('COMMITTED', T),
      ),
    ).toBeUndefined();
  });

  test('a 404 for a reservation a client heard HELD is always wrong', () => {
    expect(contradiction(held(), step({ outcome: 404, code: 'RESERVATION_NOT_FOUND' }), pg('EXPIRED', T))).toMatch(
      /404/,
    );
  });

  test('an accepted paymentFailed ends CANCELLED (or EXPIRED when it raced the deadline), never COMMITTED', () => {
    expect(
      contradiction(
        held(),
        step({ action: 'paymentFailed', outcome: 'accepted', at: T + 1_000 }),
        pg('EXPIRED', T + 10_000),
      ),
    ).toMatch(/accepted/);
    expect(
      contradiction(
        held(),
        step({ action: 'paymentFailed', outcome: 'accepted', at: T + 9_500 }),
        pg('EXPIRED', T + 10_000),
      ),
    ).toBeUndefined();
    expect(
      contradiction(
        held(),
        step({ action: 'paymentFailed', outcome: 'accepted', at: T + 9_500 }),
        pg('COMMITTED', T + 9_600),
      ),
    ).toMatch(/accepted/);
  });
});

describe('the judge', () => {
  /** A phase where everything held. */
  const passing = (): PhaseResult =>
    ({
      name: 'p',
      faults: ['pg-crash'],
      oversoldUnits: 0,
      oversold: { redisAvailableBelowZero: {}, pgPromisedAboveTotal: {}, pgTotalBelowZero: [] },
      lostSales: [],
      doubledSales: [],
      heardNotCommitted: [],
      temporalNotPg: [],
      brokenPromises: [],
      contradicted: [],
      drift: [],
      driftAfterDeadlines: [],
      wedged: [],
      crashes: [],
      unexplained: {},
      repairs: {},
      unexplainedAllowed: false,
      hits: [{ fault: 'pg-crash', hit: true, what: 'crashed with 1 commit in flight' }],
      healS: 11,
      healTimeoutS: 90,
      http: { badAnswers: 0, overDeadline: 0, examples: [] },
      maxLatencyMs: { read: 10, write: 10 },
      extraFailures: [],
    }) as unknown as PhaseResult;

  test('passes a phase where everything held', () => {
    expect(judge(passing())).toEqual([]);
  });

  test('keeps the failures found before it (a fault that could not be injected) when a phase is judged again', () => {
    const p = passing();
    p.extraFailures.push('pg-crash could not be injected or undone: boom');
    p.failures = judge(p);
    p.wedged.push({ id: 'late', where: 'postgres', status: 'HELD', overdueS: 3 });
    expect(judge(p)).toEqual([
      'pg-crash could not be injected or undone: boom',
      expect.stringMatching(/^wedged reservations: 1/),
    ]);
  });

  test('fails a broken promise, a fault that hit nothing, and unexplained drift where Redis lost nothing', () => {
    const p = passing();
    p.brokenPromises.push('r1: commit answered 409 INSUFFICIENT_STOCK');
    p.hits[0]!.hit = false;
    p.unexplained = { refused_hold: 2 };
    expect(judge(p)).toEqual([
      expect.stringMatching(/^the pg-crash fault hit nothing/),
      expect.stringMatching(/^broken promises: 1/),
      expect.stringMatching(/^the reconciler found drift it could not explain .*refused_hold 2/),
    ]);
  });

  test('lets unexplained drift through where a fault lost Redis data (it is reported, not failed)', () => {
    const p = passing();
    p.unexplained = { lost_hold: 3 };
    p.unexplainedAllowed = true;
    expect(judge(p)).toEqual([]);
  });
});
