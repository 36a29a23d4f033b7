/**
 * A Temporal that accepts connections and never answers: the API still answers every reservation
 * call 503 UNAVAILABLE within the contract's deadlines (docs/API.md: a read within 2 s, a write
 * within 30 s), never hangs. Two such Temporals: a listener that accepts and never says a word
 * (the client has never heard it), and a real dev server whose connection goes silent once in
 * use (a TCP proxy this file freezes, as a SIGSTOPped server behaves). Each test's jest timeout is
 * the deadline plus room for a loaded machine: an answer that never comes fails it.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp } from '../../src/api/app';
import { READ_DEADLINE_MS, WRITE_DEADLINE_MS } from '../../src/api/http';
import { createMetrics } from '../../src/api/metrics/registry';
import { ReservationService } from '../../src/api/reservations/service';
import { createLogger } from '../../src/logger';
import { uniqueId, uniqueSku } from '../helpers/env';
import { ADMIN_TOKEN, CLIENT_TOKEN, request, type ApiAnswer } from '../helpers/stack';
import { newSku, testStock } from '../helpers/stock';
import { devServerEnv, taskQueue } from '../helpers/temporal';
import { startSilentListener, startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { WebhookStore } from '../../src/webhooks/store';

/** Room for a loaded machine between the deadline and the test's timeout. */
const SLACK_MS = 3_000;

const clients = testStock();
let sku: string;
let env: TestWorkflowEnvironment | undefined;
let proxy: TcpProxy | undefined;
let silent: Awaited<ReturnType<typeof startSilentListener>> | undefined;
const connections: Connection[] = [];
const servers: Server[] = [];
/** The API over each silent Temporal, by name. */
const apis = new Map<string, string>();

/** The service's API over `client`, listening on a free port of 127.0.0.1; its base URL. */
async function apiOver(client: Client): Promise<string> {
  const app = createApp({
    config: { adminToken: ADMIN_TOKEN, apiToken: CLIENT_TOKEN, maxTtlSeconds: 86_400 },
    stock: clients.stock,
    webhooks: new WebhookStore(clients.db),
    reservations: new ReservationService(client, clients.stock, {
      taskQueue: taskQueue('silent'),
      defaultTtlSeconds: 600,
      maxTtlSeconds: 86_400,
    }),
    metrics: createMetrics({ figures: async () => ({ ...(await clients.stock.figures.read()), outboxLagSeconds: 0 }) }),
    logger: createLogger('silent'),
    checks: {
      redis: () => clients.redis.ping(),
      postgres: () => clients.db.query('SELECT 1'),
      temporal: () => client.workflowService.getSystemInfo({}),
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s)).on('error', reject);
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  sku = uniqueSku('SILENT');
  await newSku(clients, sku, 100);

  // A listener that never answers: the client connects lazily, as it would to a server it has not heard yet.
  silent = await startSilentListener();
  const lazy = Connection.lazy({ address: silent.address });
  connections.push(lazy);
  apis.set('a listener that never answers', await apiOver(new Client({ connection: lazy, namespace: 'default' })));

  // A real server, answering until the proxy freezes.
  env = await devServerEnv();
  proxy = await startTcpProxy(env.address);
  const connection = await Connection.connect({ address: proxy.address });
  connections.push(connection);
  const client = new Client({ connection, namespace: 'default' });
  await client.workflowService.getSystemInfo({});
  apis.set('a server that went silent', await apiOver(client));
  proxy.freeze();
}, 120_000);

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  proxy?.thaw();
  await Promise.allSettled(connections.map((c) => c.close()));
  await proxy?.close();
  await silent?.close();
  await env?.teardown();
  await clients.close();
}, 60_000);

/** The same call on every API, at once; each answer with the name of its Temporal. */
async function onEvery(
  method: string,
  path: () => string,
  body?: unknown,
): Promise<{ temporal: string; status: number; code: unknown }[]> {
  const answers = await Promise.all(
    [...apis].map(async ([name, url]): Promise<[string, ApiAnswer]> => [
      name,
      await request(url, method, path(), body === undefined ? {} : { body }),
    ]),
  );
  return answers.map(([temporal, res]) => ({ temporal, status: res.status, code: res.body?.error?.code }));
}

const unavailable = () => [...apis.keys()].map((temporal) => ({ temporal, status: 503, code: 'UNAVAILABLE' }));

test(
  'GET /v1/reservations/:id answers 503 UNAVAILABLE within the read deadline (2 s)',
  async () => {
    expect(await onEvery('GET', () => `/v1/reservations/${uniqueId('silent')}`)).toEqual(unavailable());
  },
  READ_DEADLINE_MS + SLACK_MS,
);

test(
  'POST /v1/reservations, .../commit and .../cancel answer 503 UNAVAILABLE within the write deadline (30 s)',
  async () => {
    const [created, committed, cancelled] = await Promise.all([
      onEvery('POST', () => '/v1/reservations', { reservationId: uniqueId('silent'), items: [{ sku, quantity: 1 }] }),
      onEvery('POST', () => `/v1/reservations/${uniqueId('silent')}/commit`, {}),
      onEvery('POST', () => `/v1/reservations/${uniqueId('silent')}/cancel`, {}),
    ]);
    expect({ created, committed, cancelled }).toEqual({
      created: unavailable(),
      committed: unavailable(),
      cancelled: unavailable(),
    });
    // Nothing was held meanwhile: the stock is whole (the hold never reached a worker).
    expect((await clients.stock.getStock(sku)).available).toBe(100);
    // The fault was real: the silent listener was reached.
    expect(silent!.connections()).toBeGreaterThan(0);
  },
  WRITE_DEADLINE_MS + SLACK_MS,
);
