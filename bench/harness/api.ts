/** The few API calls the benchmark makes itself (setting up SKUs, checking counters). */
import type { StockView } from '../../src/domain';
import type { Target } from './stack';

export type { StockView };

async function call<T>(
  target: Target,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  expect: number[] = [200, 201],
): Promise<T> {
  const res = await fetch(`${target.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export function createSku(target: Target, sku: string, total: number, name: string): Promise<StockView> {
  return call(target, target.adminToken, 'POST', '/v1/skus', { sku, total, name });
}

export function getStock(target: Target, sku: string): Promise<StockView> {
  return call(target, target.clientToken, 'GET', `/v1/skus/${encodeURIComponent(sku)}`);
}

export function cancelReservation(target: Target, id: string): Promise<unknown> {
  return call(target, target.clientToken, 'POST', `/v1/reservations/${encodeURIComponent(id)}/cancel`, {
    reason: 'benchmark cleanup',
  });
}

/** Runs `work` over `items` with at most `concurrency` at once. */
export async function eachLimited<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await work(item).catch(() => (failed += 1));
      }
    }),
  );
  return failed;
}
