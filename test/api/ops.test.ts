/**
 * The ops page's routes over HTTP to the real app with real Redis and PostgreSQL: GET /ops (the
 * page, no token, and its static files) and GET /v1/skus (every SKU's stock view, a page at a
 * time). The page itself, in a browser, is test/browser/ops-page.browser.ts (`npm run test:browser`).
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import { ReservationService } from '../../src/api/reservations/service';
import { PROJECT_ROOT } from '../../src/paths';
import '../helpers/conformance';
import { uniqueSku } from '../helpers/env';
import { newSku, storeChecks, testStock } from '../helpers/stock';
import { WebhookStore } from '../../src/webhooks/store';

const ADMIN = 'ops-routes-admin-token';
const CLIENT = 'ops-routes-client-token';

const clients = testStock();
const { stock } = clients;
const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
const app = createApp({
  config: {
    adminToken: ADMIN,
    apiToken: CLIENT,
    maxTtlSeconds: 86_400,
    temporalUiUrl: 'http://ui.example:8233',
    temporalNamespace: 'shop',
  },
  stock,
  webhooks: new WebhookStore(clients.db),
  reservations: new ReservationService(new Client({ connection }), stock, {
    taskQueue: 'ops-routes',
    defaultTtlSeconds: 600,
    maxTtlSeconds: 86_400,
  }),
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  checks: storeChecks(clients),
});

afterAll(async () => {
  await connection.close();
  await clients.close();
});

const admin = (path: string) => request(app).get(path).set('authorization', `Bearer ${ADMIN}`);

describe('GET /ops', () => {
  it('serves the page without a token, locked to this origin, with the Web UI it links reservations to', async () => {
    const res = await request(app).get('/ops');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("connect-src 'self'");
    // Its script and style are files of this origin: no inline script or style may run.
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).not.toContain('unsafe');
    expect(res.text).toContain('<title>Stockhold ops</title>');
    expect(
      [...res.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)].map(([, attributes, body]) => [
        attributes!.trim(),
        body,
      ]),
    ).toEqual([['src="/ops/ops.js" defer', '']]);
    expect(res.text).not.toMatch(/ style="/);
    const settings = /<meta name="stockhold-ops-settings" content="([^"]*)" \/>/.exec(res.text)?.[1];
    expect(JSON.parse(settings!.replaceAll('&#34;', '"'))).toEqual({
      temporalUiUrl: 'http://ui.example:8233',
      temporalNamespace: 'shop',
    });
    // The page carries no data and no token: it asks for the admin token in the browser.
    expect(res.text).not.toContain(ADMIN);
  });

  it('serves its script and stylesheet from public/ops/, and nothing else under /ops', async () => {
    // Files, not the API: not in the OpenAPI document, so fetched outside the conformance check.
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const get = (url: string) => fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${url}`);
    try {
      for (const [file, type] of [
        ['ops.js', /javascript/],
        ['ops.css', /^text\/css/],
      ] as const) {
        const answer = await get(`/ops/${file}`);
        expect([answer.status, answer.headers.get('content-type')]).toEqual([200, expect.stringMatching(type)]);
        expect(await answer.text()).toBe(readFileSync(path.join(PROJECT_ROOT, 'public', 'ops', file), 'utf8'));
      }
      for (const url of ['/ops/index.html', '/ops/ops.js.map', '/ops/page.ts']) {
        const answer = await get(url);
        expect([url, answer.status]).toEqual([url, 404]);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('GET /v1/skus', () => {
  it('lists every SKU in SKU order with its stock view, a page at a time', async () => {
    const prefix = `${uniqueSku('LIST')}-`;
    const skus = ['a', 'b', 'c', 'd', 'e'].map((s) => `${prefix}${s}`);
    for (const [i, sku] of skus.entries()) await newSku(clients, sku, i + 1, `item ${i}`);
    await stock.updateSku(skus[1]!, { lowStockThreshold: 3 });

    const first = await admin(`/v1/skus?limit=2&after=${prefix}`);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      skus: [
        {
          sku: skus[0],
          name: 'item 0',
          total: 1,
          reserved: 0,
          available: 1,
          lowStockThreshold: null,
          maxPerCustomer: null,
        },
        {
          sku: skus[1],
          name: 'item 1',
          total: 2,
          reserved: 0,
          available: 2,
          lowStockThreshold: 3,
          maxPerCustomer: null,
        },
      ],
      next: skus[1],
    });
    const second = await admin(`/v1/skus?limit=2&after=${first.body.next}`);
    expect(second.body.skus.map((v: { sku: string }) => v.sku)).toEqual([skus[2], skus[3]]);
    const third = await admin(`/v1/skus?limit=2&after=${second.body.next}`);
    expect(third.body.skus[0].sku).toBe(skus[4]);
  });

  it('answers an empty last page with next null', async () => {
    const res = await admin('/v1/skus?after=zzzzzzzz');
    expect(res.body).toEqual({ skus: [], next: null });
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=two', 'limit'],
    ['after=-bad', 'after'],
  ])('?%s is 400 INVALID_REQUEST naming %s', async (query, field) => {
    const res = await admin(`/v1/skus?${query}`);
    expect({ status: res.status, code: res.body.error?.code, field: res.body.error?.details?.field }).toEqual({
      status: 400,
      code: 'INVALID_REQUEST',
      field,
    });
  });

  it('is for admins: the client token is 403, none is 401', async () => {
    expect((await request(app).get('/v1/skus').set('authorization', `Bearer ${CLIENT}`)).status).toBe(403);
    expect((await request(app).get('/v1/skus')).status).toBe(401);
  });
});
