/**
 * Ready means ready: /readyz says what a client will get. While Redis's counters are rebuilt after
 * a loss (every stock read answers 503 then), /readyz is 503 with `"redis": "loading"`; while no
 * worker polls the task queue, Temporal is `no-worker`. A stack of the file's own (private
 * stores: a test here wipes Redis) whose worker runs the reconciler, which does the rebuild.
 */
import { readinessChecks } from '../../src/api/readiness';
import { uniqueSku } from '../helpers/env';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { pollUntil, startStack, type Stack } from '../helpers/stack';

let own: PrivateStores | undefined;
let stack: Stack;

beforeAll(async () => {
  own = await startPrivateStores('stockhold_readiness');
  // A rebuild settle time of 3 s: long enough to be seen loading, short enough for the test.
  stack = await startStack({
    redisUrl: own.redisUrl,
    databaseUrl: own.databaseUrl,
    reconciler: { intervalMs: 300, graceMs: 1_000, rebuildSettleMs: 3_000 },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await own?.stop();
}, 60_000);

const readyz = () => stack.api('GET', '/readyz', { token: null });

test('after Redis loses its data, /readyz is 503 "loading" until the rebuild is done, and never 200 while a stock read would be 503', async () => {
  const sku = uniqueSku('READY');
  expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: 7 } })).status).toBe(201);
  expect((await pollUntil(readyz, (r) => r.status === 200)).status).toBe(200);

  await stack.stock.redis.flushall();
  const seen: { ready: number; redis: string; read: number }[] = [];
  for (;;) {
    // Readiness first, then the read: once /readyz says 200 the counters are back, and stay back.
    const probe = await readyz();
    const read = await stack.api('GET', `/v1/skus/${sku}`);
    seen.push({ ready: probe.status, redis: probe.body.checks.redis, read: read.status });
    if (probe.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(seen[0]).toEqual({ ready: 503, redis: 'loading', read: 503 });
  expect(seen.filter((s) => s.ready === 200 && s.read !== 200)).toEqual([]);
  expect(seen.at(-1)).toEqual({ ready: 200, redis: 'ok', read: 200 });
  expect((await stack.api('GET', `/v1/skus/${sku}`)).body).toMatchObject({ total: 7, available: 7 });
});

test('Temporal is "no-worker" for a task queue no worker polls, "ok" for the one the stack\'s worker polls', async () => {
  const nobody = readinessChecks(stack.stock, stack.env.client, 'default', `nobody-polls-${uniqueSku('Q')}`);
  expect(await nobody.temporal()).toBe('no-worker');
  const polled = readinessChecks(stack.stock, stack.env.client, 'default', stack.taskQueue);
  expect(
    await pollUntil(
      () => polled.temporal(),
      (state) => state === 'ok',
    ),
  ).toBe('ok');
});
