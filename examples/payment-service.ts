/**
 * What a payment service does: tell a reservation's workflow how the payment went, through the
 * Temporal client (not the HTTP API). Signals are fire-and-forget and safe to repeat: the
 * workflow commits once and ignores duplicates and late arrivals.
 *
 *   npm run pay -- <reservationId> succeeded [paymentId]
 *   npm run pay -- <reservationId> failed ["reason"]
 *
 * (`npm run pay` runs build/examples/payment-service.js, compiled by `npm run build:tools`.)
 *
 * It reaches Temporal as the service does, from the same variables: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE and, for Temporal Cloud or a secured cluster, TEMPORAL_API_KEY or
 * TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY (TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_TLS).
 * It reads only those: a payment service has no business with the inventory's tokens.
 */
import { Client, Connection } from '@temporalio/client';
import { loadTemporalConfig } from '../src/config';
import { temporalConnectionOptions } from '../src/temporal/connection';
import {
  getReservationQuery,
  paymentFailedSignal,
  paymentSucceededSignal,
  workflowIdOf,
} from '../src/workflows/definitions';

async function main(): Promise<void> {
  const [reservationId, outcome, extra] = process.argv.slice(2);
  if (!reservationId || (outcome !== 'succeeded' && outcome !== 'failed')) {
    console.error('usage: npm run pay -- <reservationId> succeeded|failed [paymentId | reason]');
    process.exit(2);
  }
  const config = loadTemporalConfig();
  const connection = await Connection.connect(temporalConnectionOptions(config));
  try {
    const client = new Client({ connection, namespace: config.temporalNamespace });
    const handle = client.workflow.getHandle(workflowIdOf(reservationId));
    if (outcome === 'succeeded') {
      await handle.signal(paymentSucceededSignal, { paymentId: extra ?? `pay-${Date.now()}` });
    } else {
      await handle.signal(paymentFailedSignal, { reason: extra ?? 'payment failed' });
    }
    console.log(`signalled payment${outcome === 'succeeded' ? 'Succeeded' : 'Failed'} to ${handle.workflowId}`);
    // The signal is applied asynchronously; a moment later the query shows its effect.
    await new Promise((r) => setTimeout(r, 500));
    const view = await handle.query(getReservationQuery).catch(() => undefined);
    if (view) console.log(JSON.stringify(view, null, 2));
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
