/**
 * The webhook dispatcher's activity (see ./workflow.ts and docs/DESIGN.md "Webhooks"). All its
 * state is in PostgreSQL (./store.ts): webhook_deliveries rows, inserted by a trigger in each
 * event's own transaction. For `runMs` it claims due deliveries with a lease (FOR UPDATE SKIP
 * LOCKED, so two dispatchers never send one at once), POSTs each signed event with a timeout, and
 * records the outcome. Sends run concurrently, so a slow receiver holds only its own slots.
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Logger } from '../logger';
import {
  EVENT_ID_HEADER,
  GIVE_UP_AFTER_MS,
  RETRY_DELAYS_MS,
  retryDelayMs,
  SIGNATURE_HEADER,
  signPayload,
} from './signature';
import type { Claimed, DeliveryQueue } from './queue';

export interface WebhookSettings {
  /** How long a receiver has to answer 2xx (ms): 10 s by the contract; WEBHOOK_TIMEOUT_MS shortens it for tests. */
  timeoutMs: number;
  /** Waits after the 1st, 2nd… failure; the last repeats. */
  retryDelaysMs?: readonly number[];
  /** A delivery still failing this long after its first attempt is marked failed. */
  giveUpAfterMs?: number;
  /** How often to look for due deliveries when there were none (ms). */
  idlePollMs?: number;
  /** Sends in flight at once, over all subscriptions. */
  maxInFlight?: number;
  /** Sends in flight at once to one subscription (of events that share no SKU). */
  perSubscription?: number;
}

export type DeliveryResult = 'delivered' | 'retry' | 'failed';

/** What the activity reports in its heartbeat details (visible on the workflow's pending activity in the Web UI). */
export interface DispatcherProgress {
  inFlight: number;
  delivered: number;
  retries: number;
  failed: number;
  lastDeliveredAt?: string;
  lastError?: string;
}

/** A short description of why an attempt failed, for last_error. */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } } | null;
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`.slice(0, 500);
}

/**
 * Sends due deliveries until `until` (or `signal` aborts), calling `heartbeat` with its progress at
 * least every `idlePollMs`. Exported apart from the activity so tests can run it without Temporal.
 */
export async function dispatchWebhooks(
  queue: DeliveryQueue,
  settings: WebhookSettings,
  opts: { until: number; signal: AbortSignal; heartbeat: (progress: DispatcherProgress) => void; logger?: Logger },
): Promise<DispatcherProgress> {
  const delays = settings.retryDelaysMs ?? RETRY_DELAYS_MS;
  const giveUpAfterMs = settings.giveUpAfterMs ?? GIVE_UP_AFTER_MS;
  const idlePollMs = settings.idlePollMs ?? 200;
  const maxInFlight = settings.maxInFlight ?? 64;
  const perSubscription = settings.perSubscription ?? 8;
  // The lease outlives the longest send, so a live dispatcher never has one taken from it.
  const leaseMs = settings.timeoutMs + 5_000;
  const claim = randomUUID();
  const progress: DispatcherProgress = { inFlight: 0, delivered: 0, retries: 0, failed: 0 };
  const bySubscription = new Map<string, number>();
  const sends = new Set<Promise<void>>();
  let wake: (() => void) | undefined;
  const nudge = () => wake?.();
  opts.signal.addEventListener('abort', nudge);

  const send = async (d: Claimed): Promise<void> => {
    const body = JSON.stringify({
      id: d.event_id,
      type: d.event_type,
      createdAt: d.created_at.toISOString(),
      data: d.data,
    });
    const t = Math.floor(Date.now() / 1000);
    let error: string | undefined;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Stockhold-Webhooks/1',
          [EVENT_ID_HEADER]: d.event_id,
          [SIGNATURE_HEADER]: signPayload(d.secret, body, t),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(settings.timeoutMs), opts.signal]),
      });
      // The body is not needed, but reading it lets the connection be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (err) {
      // Stopped by the worker shutting down: leave it pending; its lease runs out and it is sent again.
      if (opts.signal.aborted) return;
      error = describeFailure(err, settings.timeoutMs);
    }
    if (error === undefined) {
      await queue.delivered(d.id);
      progress.delivered++;
      progress.lastDeliveredAt = new Date().toISOString();
    } else {
      const attempts = d.attempts + 1;
      const result = await queue.failedAttempt(d.id, claim, error, giveUpAfterMs, retryDelayMs(attempts, delays));
      if (result === 'failed') progress.failed++;
      else progress.retries++;
      progress.lastError = `${d.url}: ${error}`;
      opts.logger?.info({ delivery: d.id, url: d.url, attempts, error }, 'webhook delivery failed; will retry');
    }
  };

  try {
    while (Date.now() < opts.until && !opts.signal.aborted) {
      opts.heartbeat({ ...progress, inFlight: sends.size });
      let claimed: Claimed[] = [];
      const room = maxInFlight - sends.size;
      if (room > 0) {
        try {
          const busy = [...bySubscription].filter(([, n]) => n >= perSubscription).map(([id]) => id);
          claimed = await queue.claim(leaseMs, claim, perSubscription, busy, room);
        } catch (err) {
          opts.logger?.warn({ err: String(err) }, 'webhooks: PostgreSQL is not reachable; trying again');
        }
      }
      for (const d of claimed) {
        bySubscription.set(d.subscription_id, (bySubscription.get(d.subscription_id) ?? 0) + 1);
        const p: Promise<void> = send(d)
          .catch((err: unknown) =>
            opts.logger?.warn(
              { err: String(err), delivery: d.id },
              'webhooks: could not record an outcome; the lease will run out and it is sent again',
            ),
          )
          .finally(() => {
            sends.delete(p);
            const n = (bySubscription.get(d.subscription_id) ?? 1) - 1;
            if (n <= 0) bySubscription.delete(d.subscription_id);
            else bySubscription.set(d.subscription_id, n);
            nudge(); // a finished send may make the next event of its SKUs eligible
          });
        sends.add(p);
      }
      if (claimed.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, idlePollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    opts.signal.removeEventListener('abort', nudge);
    await Promise.allSettled([...sends]);
  }
  return { ...progress, inFlight: 0 };
}

/** The activity the dispatcher workflow runs: `dispatchWebhooks` for `runMs`, heartbeating its progress. */
export function createWebhookActivities(deps: { queue: DeliveryQueue; logger: Logger; settings: WebhookSettings }) {
  return {
    async dispatchWebhooks(input: { runMs: number }): Promise<DispatcherProgress> {
      const context = Context.current();
      return dispatchWebhooks(deps.queue, deps.settings, {
        until: Date.now() + input.runMs,
        signal: context.cancellationSignal,
        heartbeat: (progress) => context.heartbeat(progress),
        logger: deps.logger,
      });
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
