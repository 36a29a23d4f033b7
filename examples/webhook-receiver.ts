/**
 * A webhook receiver to watch Stockhold's events arrive: it checks each delivery's signature over
 * the raw body, drops repeats by event id (delivery is at least once), checks that each SKU's
 * events come in order (`createdAt` never goes back), and prints one line per event with how long
 * after its commit it arrived.
 *
 *   STOCKHOLD_WEBHOOK_SECRET=<the secret POST /v1/webhooks answered> npm run receiver [-- <port>]
 *
 * It listens on http://127.0.0.1:4000/hooks/stock, or on the port given (argument, else
 * RECEIVER_PORT): a port of its own, never the service's PORT, which the service holds. Subscribe
 * that URL. Ctrl-C prints a summary. With RECEIVER_FAIL_FIRST=N it answers 500 to the first N deliveries, to watch
 * Stockhold retry them (in order: the SKU's later events wait).
 */
import { createServer } from 'node:http';
import { verifySignature } from '../src/webhooks/signature';

interface Event {
  id: string;
  type: string;
  createdAt: string;
  data: {
    sku?: string;
    available?: number;
    reservationId?: string;
    status?: string;
    items?: { sku: string }[];
    movement?: { kind: string; delta: number };
  };
}

const secret = process.env.STOCKHOLD_WEBHOOK_SECRET;
if (!secret) {
  console.error('set STOCKHOLD_WEBHOOK_SECRET to the secret POST /v1/webhooks answered');
  process.exit(2);
}
const port = Number(process.argv[2] ?? process.env.RECEIVER_PORT ?? 4000);
let failFirst = Number(process.env.RECEIVER_FAIL_FIRST ?? 0);

const seen = new Set<string>();
const lastAt = new Map<string, string>();
const counts = { received: 0, events: 0, repeats: 0, badSignatures: 0, outOfOrder: 0, failedOnPurpose: 0 };
/** How long after its commit each event arrived (ms). */
const lags: number[] = [];
const percentile = (p: number) =>
  [...lags].sort((a, b) => a - b)[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))] ?? 0;

const skusOf = (e: Event) => (e.data.sku ? [e.data.sku] : (e.data.items ?? []).map((i) => i.sku));

function describe(e: Event): string {
  const d = e.data;
  if (e.type.startsWith('reservation.')) return `${d.reservationId} ${d.status}`;
  const movement = d.movement ? ` (${d.movement.kind} ${d.movement.delta > 0 ? '+' : ''}${d.movement.delta})` : '';
  return `available ${d.available}${movement}`;
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    counts.received += 1;
    const raw = Buffer.concat(chunks).toString('utf8');
    // The signature first, over the bytes as received: never trust a body that fails it.
    if (!verifySignature(secret, raw, req.headers['stockhold-signature'] as string | undefined)) {
      counts.badSignatures += 1;
      console.log(`REFUSED: bad or stale signature (${req.headers['stockhold-event-id'] as string})`);
      res.writeHead(400).end();
      return;
    }
    if (failFirst > 0) {
      failFirst -= 1;
      counts.failedOnPurpose += 1;
      console.log(`answering 500 on purpose (RECEIVER_FAIL_FIRST): ${req.headers['stockhold-event-id'] as string}`);
      res.writeHead(500).end();
      return;
    }
    const event = JSON.parse(raw) as Event;
    res.writeHead(204).end();
    if (seen.has(event.id)) {
      counts.repeats += 1;
      return;
    }
    seen.add(event.id);
    counts.events += 1;
    const order: string[] = [];
    for (const sku of skusOf(event)) {
      const before = lastAt.get(sku);
      if (before && before > event.createdAt) order.push(`OUT OF ORDER for ${sku}`);
      lastAt.set(sku, event.createdAt);
    }
    counts.outOfOrder += order.length;
    const lag = Date.now() - Date.parse(event.createdAt);
    lags.push(lag);
    console.log(
      `${event.createdAt}  +${String(lag).padStart(5)} ms  signed ✓  ${event.type.padEnd(22)} ${skusOf(event).join(',').padEnd(20)} ${describe(event)} ${order.join(' ')}`,
    );
  });
});

server.listen(port, '127.0.0.1', () =>
  console.log(`receiving Stockhold events at http://127.0.0.1:${port}/hooks/stock (Ctrl-C for a summary)`),
);
process.on('SIGINT', () => {
  console.log(
    `\n${JSON.stringify({ ...counts, lagMs: { p50: percentile(50), p99: percentile(99), max: percentile(100) } })}`,
  );
  process.exit(counts.badSignatures + counts.outOfOrder > 0 ? 1 : 0);
});
