/**
 * A flash sale against a running Stockhold: BUYERS shoppers (2,000) try to reserve 1 unit of a
 * SKU at once, over 200 connections (autocannon), and each shopper who got a hold pays (commit).
 *
 *   npm run flash-sale -- <sku> [buyers]
 *
 * It calls the service where its own variables put it, http://HOST:PORT (127.0.0.1:3000 unless
 * set; STOCKHOLD_URL, when set, wins: examples/service-url.ts), with INVENTORY_API_TOKEN
 * (dev-api-token). Prints where it sends the buyers, the answers by status, then the commits.
 * Watch it on the ops page (/ops) while it runs.
 */
import autocannon from 'autocannon';
import { serviceUrl } from './service-url';

function usage(): never {
  console.error('usage: npm run flash-sale -- <sku> [buyers]');
  process.exit(2);
}
const [skuArg, buyersArg] = process.argv.slice(2);
const sku = skuArg ?? usage();
const buyers = Number(buyersArg ?? 2_000);
if (!Number.isInteger(buyers) || buyers < 1) usage();
const url = ((): string => {
  try {
    return serviceUrl();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
})();
const headers: Record<string, string> = {
  authorization: `Bearer ${process.env.INVENTORY_API_TOKEN ?? 'dev-api-token'}`,
  'content-type': 'application/json',
};

async function main(): Promise<void> {
  console.log(`${buyers} buyers for ${sku} at ${url}${process.env.STOCKHOLD_URL ? ' (STOCKHOLD_URL)' : ''}`);
  // One call first: a wrong address or token is one clear line, not 2,000 connection errors.
  const before = await fetch(`${url}/v1/skus/${encodeURIComponent(sku)}`, { headers }).catch((err: unknown) => {
    throw new Error(
      `no Stockhold answers at ${url} (${String((err as Error).cause ?? err)}): start it (npm start), or set PORT/HOST or STOCKHOLD_URL to where it runs`,
    );
  });
  if (before.status !== 200)
    throw new Error(`GET ${url}/v1/skus/${sku} answered ${before.status}: ${await before.text()}`);
  const held: string[] = [];
  const codes = new Map<string, number>();
  const result = await autocannon({
    url: `${url}/v1/reservations`,
    connections: Math.min(200, buyers),
    amount: buyers,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        headers,
        body: JSON.stringify({ items: [{ sku, quantity: 1 }], ttlSeconds: 120 }),
        onResponse: (status: number, body: string) => {
          const answer = JSON.parse(body) as { reservationId?: string; error?: { code: string } };
          if (status === 201 && answer.reservationId) held.push(answer.reservationId);
          const key = answer.error ? `${status} ${answer.error.code}` : String(status);
          codes.set(key, (codes.get(key) ?? 0) + 1);
        },
      },
    ],
  });
  console.log(
    `${buyers} buyers for ${sku} in ${result.duration.toFixed(1)} s: ${[...codes].map(([k, n]) => `${n} × ${k}`).join(', ')}`,
  );
  console.log(
    `latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; ${result.errors} connection errors, ${result.timeouts} timeouts`,
  );

  // Every shopper who holds a unit pays.
  let committed = 0;
  for (let i = 0; i < held.length; i += 50) {
    const answers = await Promise.all(
      held.slice(i, i + 50).map((id) =>
        fetch(`${url}/v1/reservations/${id}/commit`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ paymentId: `pay-${id}` }),
        }),
      ),
    );
    committed += answers.filter((a) => a.status === 200).length;
  }
  console.log(`${held.length} held, ${committed} committed`);
  const stock = (await (await fetch(`${url}/v1/skus/${encodeURIComponent(sku)}`, { headers })).json()) as unknown;
  console.log(`stock now: ${JSON.stringify(stock)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
