/**
 * What the processes of `npm start` tell each other over the cluster channel (see ./supervisor.ts):
 * each child's role and label, a child's "ready", and the exchange that makes /metrics the
 * machine's.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

export type ProcessRole = 'api' | 'worker';

/** Set by the supervisor in each child's environment: its role and slot, e.g. `api-2`. */
export const PROCESS_ENV = 'STOCKHOLD_PROCESS';

/** A child's message to the supervisor when it is ready (a worker polls its task queue). */
export const READY_MESSAGE = { stockhold: 'ready' } as const;

/**
 * The machine's metrics (see the top): an API process asks with METRICS_REQUEST, the supervisor
 * sends METRICS_COLLECT to every API process, each answers METRICS_PART with its registry as JSON,
 * and the supervisor answers the asker with METRICS_ANSWER, the combined text. A process that does
 * not answer within METRICS_WAIT_MS is left out of that scrape.
 */
export const METRICS = {
  request: 'metrics-request',
  collect: 'metrics-collect',
  part: 'metrics-part',
  answer: 'metrics-answer',
} as const;
export const METRICS_WAIT_MS = 1_500;
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
export type MetricsMessage =
  | { stockhold: typeof METRICS.request; id: number }
  | { stockhold: typeof METRICS.collect; id: number }
  | { stockhold: typeof METRICS.part; id: number; metrics: MetricsJson }
  | { stockhold: typeof METRICS.answer; id: number; text?: string };

/** Exit code of a process that refuses its configuration (EX_CONFIG): restarting cannot help. */
export const EXIT_CONFIG = 78;
