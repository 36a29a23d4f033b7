/**
 * What a process does as a child of `npm start` (see ./supervisor.ts): says when it is ready,
 * takes its shutdown signal from the supervisor, and shares its metrics registry for the
 * machine's /metrics. Run on its own (`node lib/api/server.js`, a container) each is a no-op.
 */
import cluster from 'node:cluster';
import {
  METRICS,
  METRICS_WAIT_MS,
  PROCESS_ENV,
  READY_MESSAGE,
  type MetricsJson,
  type MetricsMessage,
} from './messages';

/**
 * In an API process under `npm start`: answers the supervisor's METRICS_COLLECT with `registry`,
 * and returns how to read the machine's metrics (undefined when the process runs on its own).
 */
export function shareMetrics(registry: {
  getMetricsAsJSON(): Promise<MetricsJson>;
}): (() => Promise<string | undefined>) | undefined {
  if (!supervisedAs() || !process.send) return undefined;
  const waiting = new Map<number, (text: string | undefined) => void>();
  let next = 0;
  process.on('message', (message: MetricsMessage) => {
    if (message?.stockhold === METRICS.collect) {
      void registry
        .getMetricsAsJSON()
        .then((metrics) => process.send?.({ stockhold: METRICS.part, id: message.id, metrics }));
    } else if (message?.stockhold === METRICS.answer) {
      waiting.get(message.id)?.(message.text);
      waiting.delete(message.id);
    }
  });
  return () =>
    new Promise<string | undefined>((resolve) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(undefined);
      }, METRICS_WAIT_MS + 1_000).unref();
      waiting.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      process.send!({ stockhold: METRICS.request, id });
    });
}

/** This process's label (`api-1`, `worker-2`) when it is a child of `npm start`, else undefined. */
export function supervisedAs(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return cluster.isWorker ? env[PROCESS_ENV] || undefined : undefined;
}

/**
 * The signals this process stops on, with SIGINT ignored when it is a child of `npm start`.
 *
 * Ctrl-C in a terminal sends SIGINT to every process of the foreground group at once, children
 * included (and npm forwards it once more). If each child stopped on it by itself, the workers
 * could be gone while the API processes still finish requests that wait on them; so a supervised
 * child ignores SIGINT and stops on the SIGTERM the supervisor sends, API processes first. Run on
 * its own (`node lib/api/server.js`, a container), a process stops on either signal.
 */
export function takeShutdownSignals(): NodeJS.Signals[] {
  if (!supervisedAs()) return ['SIGINT', 'SIGTERM'];
  process.on('SIGINT', () => undefined); // a listener, so SIGINT's default action (exit) does not apply
  return ['SIGTERM'];
}

/** Tells the supervisor this process is ready; a no-op when it runs on its own. */
export function reportReady(): void {
  if (supervisedAs() && process.send) process.send(READY_MESSAGE);
}
