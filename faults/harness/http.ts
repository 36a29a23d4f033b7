/**
 * The harness's HTTP client and the record of every answer. Each request is timed from send to
 * the last byte of the body and counted under the phase it started in: by status, and against the
 * contract's deadlines (a read answers within 2 s, a write within 30 s, whatever a store does).
 * A request still unanswered past its deadline (plus a margin) is given up and counted as
 * `timeout`; a connection refused or reset is `conn-error` (an HTTP answer that never came), which
 * counts against the service unless the API process itself is down on purpose at that moment.
 */
import { performance } from 'node:perf_hooks';

export type OpClass = 'read' | 'write';
/** An HTTP status, or why there was none. `client-abort`: the client gave up early on purpose (resend tests). */
export type Outcome = number | 'timeout' | 'conn-error' | 'client-abort';

export const DEADLINE_MS: Record<OpClass, number> = { read: 2_000, write: 30_000 };
/** How long past its deadline a request is still awaited before it is counted as `timeout`. */
const GIVE_UP_MARGIN_MS = 3_000;

export interface PhaseHttp {
  operations: number;
  byStatus: Record<string, number>;
  byOp: Record<string, number>;
  maxMs: Record<OpClass, number>;
  /** Answers other than 2xx, 4xx, 503 (5xx, no answer, given up): each breaks the contract. */
  badAnswers: number;
  /** Answers (or give-ups) slower than the deadline of their class. */
  overDeadline: number;
  /** Connection errors while the API was down on purpose (an api-kill fault): expected, not counted as bad. */
  expectedConnErrors: number;
  /** A few examples of bad or slow answers, for the report. */
  examples: string[];
}

function emptyStats(): PhaseHttp {
  return {
    operations: 0,
    byStatus: {},
    byOp: {},
    maxMs: { read: 0, write: 0 },
    badAnswers: 0,
    overDeadline: 0,
    expectedConnErrors: 0,
    examples: [],
  };
}

/** The requests started while a watch was open, and how they were answered: what a fault met (faults.ts). */
export interface Watch {
  started: number;
  answers: Record<string, number>;
  /** Stops counting new requests (those under way still report their answers). */
  close(): void;
}

export class Recorder {
  /** The phase new requests are counted under. */
  phase = 'setup';
  /** Set while an api-kill fault has the API down: connection errors then are the fault's, not the service's. */
  apiDown = false;
  readonly phases = new Map<string, PhaseHttp>();
  private readonly watches = new Set<Watch>();

  /** Counts every request started from now until `close()`, and their answers. */
  watch(): Watch {
    const w: Watch = { started: 0, answers: {}, close: () => this.watches.delete(w) };
    this.watches.add(w);
    return w;
  }

  /** The watches open now (a request reports its answer to those open when it started). */
  watching(): Watch[] {
    return [...this.watches];
  }

  stats(phase: string): PhaseHttp {
    let s = this.phases.get(phase);
    if (!s) this.phases.set(phase, (s = emptyStats()));
    return s;
  }

  record(phase: string, op: string, cls: OpClass, outcome: Outcome, ms: number, apiWasDown: boolean): void {
    const s = this.stats(phase);
    s.operations += 1;
    s.byOp[op] = (s.byOp[op] ?? 0) + 1;
    const key = String(outcome);
    s.byStatus[key] = (s.byStatus[key] ?? 0) + 1;
    if (outcome !== 'client-abort') s.maxMs[cls] = Math.max(s.maxMs[cls], Math.round(ms));
    const example = (why: string) => {
      if (s.examples.length < 12) s.examples.push(`${op}: ${why} after ${Math.round(ms)} ms`);
    };
    if (outcome === 'conn-error' && apiWasDown) {
      s.expectedConnErrors += 1;
    } else if (
      outcome === 'conn-error' ||
      outcome === 'timeout' ||
      (typeof outcome === 'number' && outcome >= 500 && outcome !== 503) ||
      (typeof outcome === 'number' && outcome < 200)
    ) {
      s.badAnswers += 1;
      example(String(outcome));
    }
    if (outcome !== 'client-abort' && (outcome === 'timeout' || ms > DEADLINE_MS[cls])) {
      s.overDeadline += 1;
      if (outcome !== 'timeout') example(`${outcome} over the ${DEADLINE_MS[cls]} ms deadline`);
    }
  }
}

export interface CallOptions {
  op: string;
  cls: OpClass;
  body?: unknown;
  admin?: boolean;
  idempotencyKey?: string;
  /** Give up after this many ms (a client that resends after its own timeout); counted as `client-abort`. */
  clientTimeoutMs?: number;
}

export interface Answer {
  outcome: Outcome;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  ms: number;
}

export class Http {
  constructor(
    private readonly baseUrl: () => string,
    private readonly tokens: { admin: string; client: string },
    readonly recorder: Recorder,
  ) {}

  async call(method: string, path: string, options: CallOptions): Promise<Answer> {
    const phase = this.recorder.phase;
    const apiDownAtStart = this.recorder.apiDown;
    const watching = this.recorder.watching();
    for (const w of watching) w.started += 1;
    const headers: Record<string, string> = {
      authorization: `Bearer ${options.admin ? this.tokens.admin : this.tokens.client}`,
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const controller = new AbortController();
    const giveUpMs = DEADLINE_MS[options.cls] + GIVE_UP_MARGIN_MS;
    let clientAbort = false;
    const giveUp = setTimeout(() => controller.abort(), giveUpMs);
    const early = options.clientTimeoutMs
      ? setTimeout(() => {
          clientAbort = true;
          controller.abort();
        }, options.clientTimeoutMs)
      : undefined;
    const start = performance.now();
    let outcome: Outcome;
    let body: unknown;
    try {
      const res = await fetch(`${this.baseUrl()}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
      });
      const text = await res.text();
      outcome = res.status;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    } catch {
      outcome = controller.signal.aborted ? (clientAbort ? 'client-abort' : 'timeout') : 'conn-error';
    } finally {
      clearTimeout(giveUp);
      clearTimeout(early);
    }
    const ms = performance.now() - start;
    this.recorder.record(phase, options.op, options.cls, outcome, ms, apiDownAtStart || this.recorder.apiDown);
    for (const w of watching) w.answers[String(outcome)] = (w.answers[String(outcome)] ?? 0) + 1;
    return { outcome, body, ms };
  }
}
