/**
 * What a payment service does: tell a reservation's workflow how the payment went, through the
 * Temporal client (not the HTTP API). Signals are fire-and-forget and safe to repeat: the
 * workflow commits once and ignores duplicates and late arrivals.
 *
 *   npm run pay -- <reservationId> succeeded [paymentId]
 *   npm run pay -- <reservationId> failed ["reason"]
 *
 * (`npm run pay` runs build/examples/payment-service.js, compiled by `npm run build:tools`.)
 */
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { getReservationQuery, paymentFailedSignal, paymentSucceededSignal, workflowIdOf } from '../src/workflows/definitions';

async function main(): Promise<void> {
  const [reservationId, outcome, extra] = process.argv.slice(2);
  if (!reservationId || (outcome !== 'succeeded' && outcome !== 'failed')) {
    console.error('usage: npm run pay -- <reservationId> succeeded|failed [paymentId | reason]');
    process.exit(2);
  }
  const config = loadConfig();
  const connection = await Connection.connect({ address: config.temporalAddress });
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
