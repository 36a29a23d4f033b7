/**
 * A client that does what the contract tells it to (docs/API.md, "What a 503 means"), for tests
 * that demand exact figures whatever the machine's load: a 503 to POST /v1/reservations is
 * retried with the same id and body until a definitive answer. And waits with no deadline of
 * their own: the test's jest timeout is the deadline (speed lives in benchmarks, not in tests).
 */
import type { ApiAnswer } from './stack';

/** A definitive answer to POST /v1/reservations, and how many 503s came before it. */
export interface Answered {
  res: ApiAnswer;
  /** The reservation id: the body's, or the one the service made (from its 201, or from a 503's details). */
  reservationId?: string;
  /** The 503s retried on the way (0 when the first answer was definitive). */
  retried: number;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * POST /v1/reservations through `post` until the answer is not 503. A 503 is retried with the same
 * body, carrying the id the 503 names in `details.reservationId` when the body had none: the
 * workflow may have held before the answer was lost, and only that id reaches its hold (then the
 * retry answers 200 HELD). An answer lost on the way (a connection reset on a loaded machine) is
 * retried the same way when the body names its reservation; without an id it cannot be, and fails.
 */
export async function reserveUntilAnswered(
  post: (body: Record<string, unknown>) => Promise<ApiAnswer>,
  body: Record<string, unknown>,
): Promise<Answered> {
  let current = body;
  for (let retried = 0; ; retried++) {
    let res: ApiAnswer;
    try {
      res = await post(current);
    } catch (err) {
      if (current.reservationId === undefined || !(err instanceof TypeError && err.message === 'fetch failed'))
        throw err;
      await pause(100);
      continue;
    }
    const reservationId =
      (current.reservationId as string | undefined) ??
      (res.body?.reservationId as string | undefined) ??
      (res.body?.error?.details?.reservationId as string | undefined);
    if (res.status !== 503) return { res, reservationId, retried };
    if (current.reservationId === undefined && reservationId !== undefined) current = { ...current, reservationId };
    await pause(100);
  }
}

/**
 * A call repeated until its answer is not 503: a read changed nothing; after a 503 to a commit,
 * cancel or extend the workflow may still complete the settlement, and a repeat is idempotent and
 * answers the outcome.
 */
export async function untilAnswered(call: () => Promise<ApiAnswer>): Promise<ApiAnswer> {
  for (;;) {
    const res = await call();
    if (res.status !== 503) return res;
    await pause(100);
  }
}

/**
 * What the buyer was promised: HELD, from a 201, or from the 200 HELD a retry of a 503 gets when
 * the first attempt's hold had landed. Anything else is its status and error code ("409
 * INSUFFICIENT_STOCK"); a 200 HELD nobody retried into (a repeat the test did not send) stays "200 HELD".
 */
export function outcomeOf(a: Answered): string {
  if (a.res.status === 201 && a.res.body?.status === 'HELD') return 'HELD';
  if (a.res.status === 200 && a.res.body?.status === 'HELD' && a.retried > 0) return 'HELD';
  return `${a.res.status} ${a.res.body?.status ?? a.res.body?.error?.code}`;
}

/** How many answers of each outcome (see outcomeOf). */
export function tally<T>(items: readonly T[], outcome: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[outcome(item)] = (counts[outcome(item)] ?? 0) + 1;
  return counts;
}

/**
 * Polls `probe` until `done` holds and returns that value. No deadline of its own: a state that
 * never comes fails the test by its jest timeout, however slow the machine is meanwhile.
 */
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, intervalMs = 100): Promise<T> {
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    await pause(intervalMs);
  }
}

/** A gate a test opens: whoever awaits `passed` waits until `open()`; `entered` settles when the first one arrives. */
export interface Gate {
  /** Resolves when someone first waits at the gate. */
  entered: Promise<void>;
  /** Waits at the gate until it opens. */
  wait(): Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  let enter!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const entered = new Promise<void>((resolve) => (enter = resolve));
  return {
    entered,
    wait: () => {
      enter();
      return opened;
    },
    open,
  };
}
