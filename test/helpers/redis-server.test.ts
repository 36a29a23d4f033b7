/**
 * The private redis-server helper, as fault-injection tests use it: a node on a free port, frozen
 * with SIGSTOP and resumed, crashed with SIGKILL and restarted on the same port, stopped while frozen.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from './redis-server';
import { alive } from './processes';

const nodes: RedisServer[] = [];
const clients: Redis[] = [];

async function node(port?: number): Promise<RedisServer> {
  const started = await startRedisServer({ port });
  nodes.push(started);
  return started;
}

function client(url: string): Redis {
  // Fails fast instead of queueing while the node is frozen or gone. disconnectTimeout: ioredis
  // waits that long for a 'close' its socket to a killed node already emitted (2 s by default).
  const redis = new Redis(url, {
    maxRetriesPerRequest: 0,
    commandTimeout: 300,
    retryStrategy: () => 100,
    disconnectTimeout: 50,
  });
  redis.on('error', () => undefined);
  clients.push(redis);
  return redis;
}

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('startRedisServer', () => {
  it('starts nodes of their own on free ports, each empty', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    expect(a.port).not.toBe(b.port);
    expect(a.url).toBe(`redis://127.0.0.1:${a.port}`);
    await client(a.url).set('k', 'a');
    expect(await client(b.url).get('k')).toBeNull();
  });

  it('freezes with SIGSTOP (commands time out) and resumes with SIGCONT, data intact', async () => {
    const n = await node();
    const redis = client(n.url);
    await redis.set('k', 'v');
    n.kill('SIGSTOP');
    await expect(redis.get('k')).rejects.toThrow(/timed out/i);
    n.kill('SIGCONT');
    expect(await redis.get('k')).toBe('v');
  });

  it('crashes with SIGKILL (data lost) and restarts empty on the same port', async () => {
    const n = await node();
    await client(n.url).set('k', 'v');
    n.kill('SIGKILL');
    expect(await n.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const again = await node(n.port);
    expect(again.url).toBe(n.url);
    expect(await client(again.url).get('k')).toBeNull();
  });

  it('stops a frozen node, and stop() is safe to repeat', async () => {
    const n = await node();
    n.kill('SIGSTOP');
    await n.stop();
    await n.stop();
    expect(alive(n.pid)).toBe(false);
  });

  it('refuses a port that is taken, saying why', async () => {
    const n = await node();
    await expect(startRedisServer({ port: n.port })).rejects.toThrow(/did not start[\s\S]*in use/i);
  });
});
