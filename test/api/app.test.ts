import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics';
import type { ReservationService } from '../../src/api/reservations';
import { createStock, type StockClients } from '../../src/stock';
import { TEST_DATABASE_URL, TEST_REDIS_URL, uniqueSku } from '../helpers/env';

const ADMIN = 'admin-secret-token-123';
const CLIENT = 'client-secret-token-456';

/** The API layer alone: real stock store, reservations never reached by these requests. */
function appWith(stock: StockClients, lines: string[], checks?: Parameters<typeof createApp>[0]['checks']) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return createApp({
    config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: 86_400 },
    stock: stock.stock,
    reservations: {} as ReservationService,
    metrics: createMetrics(),
    logger: pino({ level: 'debug' }, sink),
    checks: checks ?? { redis: () => stock.redis.ping(), postgres: () => stock.db.query('SELECT 1'), temporal: async () => undefined },
  });
}

describe('API layer', () => {
  const stock = createStock({ redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL });
  afterAll(() => stock.close());

  it('never writes a bearer token to the logs, whatever the request', async () => {
    const lines: string[] = [];
    const app = appWith(stock, lines);
    const sku = uniqueSku();
    await request(app).post('/v1/skus').set('Authorization', `Bearer ${ADMIN}`).send({ sku, total: 1 }).expect(201);
    await request(app).get(`/v1/skus/${sku}`).set('Authorization', `Bearer ${CLIENT}`).expect(200);
    await request(app).post('/v1/skus').set('Authorization', `Bearer ${CLIENT}`).send({ sku, total: 1 }).expect(403);
    await request(app).get(`/v1/skus/${sku}`).set('Authorization', `Bearer ${ADMIN}x`).expect(401);
    await request(app).post('/v1/skus').set('Authorization', `Bearer ${ADMIN}`).set('Content-Type', 'application/json').send('{bad json').expect(400);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) {
      expect(line).not.toContain(ADMIN);
      expect(line).not.toContain(CLIENT);
      expect(line.toLowerCase()).not.toContain('authorization');
    }
  });

  it('answers 503 with the failing check marked down on /readyz', async () => {
    const app = appWith(stock, [], {
      redis: async () => 'PONG',
      postgres: async () => undefined,
      temporal: async () => {
        throw new Error('no server');
      },
    });
    const res = await request(app).get('/readyz').expect(503);
    expect(res.body).toEqual({ status: 'down', checks: { redis: 'ok', postgres: 'ok', temporal: 'down' } });
  });

  it('answers 503 UNAVAILABLE, not 500, when Redis is unreachable', async () => {
    const dead = createStock({ redisUrl: 'redis://127.0.0.1:1', databaseUrl: TEST_DATABASE_URL });
    try {
      const app = appWith(dead, []);
      const res = await request(app).get('/v1/skus/ANY').set('Authorization', `Bearer ${CLIENT}`);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
    } finally {
      dead.redis.disconnect();
      await dead.db.end();
    }
  });

  it('answers 503 UNAVAILABLE, not 500, when PostgreSQL is unreachable', async () => {
    const dead = createStock({ redisUrl: TEST_REDIS_URL, databaseUrl: 'postgres://postgres@127.0.0.1:1/stockhold' });
    try {
      const app = appWith(dead, []);
      const res = await request(app).post('/v1/skus').set('Authorization', `Bearer ${ADMIN}`).send({ sku: uniqueSku(), total: 1 });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
    } finally {
      await dead.close();
    }
  });

  it('answers 413 PAYLOAD_TOO_LARGE in the contract shape for a body over 64 KiB, creating nothing', async () => {
    const app = appWith(stock, []);
    const sku = uniqueSku();
    const res = await request(app)
      .post('/v1/skus')
      .set('Authorization', `Bearer ${ADMIN}`)
      .send({ sku, total: 1, name: 'x'.repeat(70 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    await request(app).get(`/v1/skus/${sku}`).set('Authorization', `Bearer ${CLIENT}`).expect(404);
  });
});
