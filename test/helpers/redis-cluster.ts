/**
 * A private Redis Cluster for tests: three masters (no replicas) from the system `redis-server`,
 * on spare ports, joined with `redis-cli --cluster create`; each node cannot outlive the run
 * (see ./redis-server.ts). Losing one node's data: `nodes[i].kill('SIGKILL')` then a restart on
 * its port with its directory's nodes.conf kept is the test's business; this helper only starts
 * and stops the whole cluster.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from './redis-server';

const run = promisify(execFile);

export interface RedisCluster {
  nodes: RedisServer[];
  /** `host:port,host:port,host:port`, as REDIS_CLUSTER_NODES takes it. */
  seeds: string;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedisServer({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
        }),
      );
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    // Every node must agree the cluster is up (all 16384 slots served) before clients use it.
    const until = Date.now() + 30_000;
    for (const node of nodes) {
      const redis = new Redis(node.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        for (;;) {
          const info = String(await redis.cluster('INFO'));
          if (/cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)) break;
          if (Date.now() > until) throw new Error(`Redis Cluster not ok after 30 s:\n${info}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        redis.disconnect();
      }
    }
    return { nodes, seeds: addresses.join(','), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
