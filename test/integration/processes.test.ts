/**
 * `npm start` as processes, for real: `node lib/main.js` with API_PROCESSES=2 and
 * WORKER_PROCESSES=2 (two API processes sharing one port, two workers, all supervised by the main
 * process), over stores of this file's own (a redis-server and a PostgreSQL database: the test
 * kills processes mid-write, and the service's reconciler works over the whole deployment, so
 * neither may touch the run's shared stores) and a Temporal dev server of this file's own.
 *
 *   - a flash-sale storm of 10,000 buyers on a SKU of 20 units, spread over both API processes
 *     (each answer says which one served it, X-Stockhold-Process), gives exactly 20 × 201 and the
 *     rest 409;
 *   - a second storm, during which one API process and one worker are SIGKILLed: no sale is lost
 *     (every buyer who heard 201, or learns on retrying that it holds, commits exactly once) and
 *     no hold is left behind (once the unclaimed holds expire, Redis reserved = PostgreSQL HELD
 *     sum = 0); the supervisor restarts both and logs why;
 *   - Ctrl-C to the whole process group (as a terminal sends it) stops every process;
 *   - and, first, `npm run temporal:search-attributes` registers the search attributes on that
 *     server through the Temporal CLI.
 *
 * The service runs from a copy of lib/ taken at start, so that someone rebuilding lib/ meanwhile
 * (`npm test` empties it) cannot break a restart in the middle of the test.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { get, request as httpRequest } from 'node:http';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT, SHIPPED_BESIDE_LIB, TEMPORAL_CLI } from '../../src/paths';
import type { StockClients } from '../../src/stock';
import { createStock } from '../../src/stock';
import { waitFor } from '../helpers/client';
import { uniqueSku } from '../helpers/env';
import { killWhenOrphaned, type Guard } from '../helpers/guard';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { alive, buildIfStale } from '../helpers/processes';
import { freePort } from '../helpers/redis-server';
import { expectConsistent, figures } from '../helpers/stock';
import { devServerEnv, taskQueue } from '../helpers/temporal';

const UNITS = 20;
const BUYERS = 10_000;
const ADMIN_TOKEN = 'processes-admin-token-0123456789';
const CLIENT_TOKEN = 'processes-client-token-0123456789';
/**
 * Longer than a commit can stall after the worker holding its workflow dies (a sticky queue's
 * 10 s), plus a buyer's patience (30 s, the contract's write deadline) and its retry: a buyer who
 * holds learns it and commits before its hold expires, however loaded the machine.
 */
const KILL_STORM_TTL_SECONDS = 75;

let stores: PrivateStores | undefined;
let clients: StockClients;
let env: TestWorkflowEnvironment | undefined;
let service: Service | undefined;
let snapshot: string | undefined;

// ---------------------------------------------------------------- the service as processes

/** lib/ compiled from src/ when older (`npm test` builds first), then copied with lua/, migrations/, package.json. */
function snapshotService(): string {
  buildIfStale(path.join(PROJECT_ROOT, 'lib', 'main.js'));
  // Under the project, so that node_modules/ is found above it; src/paths.ts takes it for the root.
  const dir = path.join(PROJECT_ROOT, 'build', 'test-processes', `service-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of ['lib', ...SHIPPED_BESIDE_LIB])
    cpSync(path.join(PROJECT_ROOT, entry), path.join(dir, entry), { recursive: true });
  symlinkSync(path.join(PROJECT_ROOT, '.tools'), path.join(dir, '.tools'));
  return dir;
}

interface LogLine {
  msg?: string;
  process?: string;
  pid?: number;
  exit?: string;
}

/** `node lib/main.js` in a process group of its own (so the test can Ctrl-C the whole group), logging to a file. */
class Service {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly guard?: Guard;

  constructor(
    dir: string,
    readonly port: number,
    readonly logFile: string,
    environment: NodeJS.ProcessEnv,
  ) {
    const fd = openSync(logFile, 'w');
    this.child = spawn(process.execPath, [path.join(dir, 'lib', 'main.js')], {
      cwd: dir,
      env: environment,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    // If the test process dies, the main process dies within a second, and its children with it
    // (a cluster child exits when its channel to the main process closes).
    this.guard = this.child.pid === undefined ? undefined : killWhenOrphaned(this.child.pid);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => this.guard?.cancel());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  lines(): LogLine[] {
    return this.log()
      .split('\n')
      .flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      });
  }

  /** The pid of the latest incarnation of `label` (api-1, worker-2). */
  pidOf(label: string): number {
    const started = this.lines().filter((l) => l.msg === 'process started' && l.process === label);
    if (started.length === 0) throw new Error(`${label} never started:\n${this.log().slice(-3_000)}`);
    return started.at(-1)!.pid!;
  }

  readyCount(label: string): number {
    return this.lines().filter((l) => l.msg === 'process ready' && l.process === label).length;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until `done` (no deadline of its own: the test's timeout is one); fails at once if npm start exits first. */
  async waitFor(what: string, done: () => boolean): Promise<void> {
    while (!done()) {
      if (!this.running())
        throw new Error(
          `npm start exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.log().slice(-4_000)}`,
        );
      await sleep(100);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- HTTP

const auth = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

async function call(
  method: string,
  url: string,
  body?: unknown,
  token = CLIENT_TOKEN,
  timeoutMs = 30_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method,
    headers: auth(token),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Which API process answers a request on a connection of its own. */
function servedBy(port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers['x-stockhold-process'] as string | undefined));
    }).on('error', reject);
  });
}

/** A request on a connection of its own (so the kernel picks the API process): status, body text and which process served it. */
function onItsOwnConnection(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string; servedBy?: string }> {
  const port = Number(new URL(service!.url).port);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, agent: false, headers: auth(CLIENT_TOKEN) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text,
            servedBy: res.headers['x-stockhold-process'] as string | undefined,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

interface Buyer {
  id: string;
  status: number | 'no answer';
  /** Why there was no answer: the error's code (UND_ERR_CONNECT_TIMEOUT, ECONNRESET, TimeoutError...). */
  error?: string;
  /** X-Stockhold-Process: which API process answered. */
  servedBy?: string;
  reservationStatus?: string;
}

/** One buyer: POST /v1/reservations for one unit, with an id of its own (so a retry is recognised). */
async function buy(sku: string, id: string, ttlSeconds: number, timeoutMs: number): Promise<Buyer> {
  try {
    const res = await fetch(`${service!.url}/v1/reservations`, {
      method: 'POST',
      headers: auth(CLIENT_TOKEN),
      body: JSON.stringify({ reservationId: id, items: [{ sku, quantity: 1 }], ttlSeconds }),
      // A shopper's patience; a connection the killed process had accepted is reset at once.
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const reservationStatus = res.headers.get('content-type')?.includes('json')
      ? (JSON.parse(text) as { status?: string }).status
      : undefined;
    return { id, status: res.status, servedBy: res.headers.get('x-stockhold-process') ?? undefined, reservationStatus };
  } catch (err) {
    const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
    return { id, status: 'no answer', error: e.cause?.code ?? e.code ?? e.cause?.name ?? e.name };
  }
}

/** A buyer's first answer, and its definitive one (the same unless it had to retry). */
interface Outcome {
  first: Buyer;
  final: Buyer;
}

/** Whether the buyer holds: told 201, or 200 HELD on retrying into a hold its first attempt made. */
const holds = (b: Buyer) => b.status === 201 || (b.status === 200 && b.reservationStatus === 'HELD');

/**
 * BUYERS buyers at once, as a flash sale sends them. A buyer told 503, or left without an answer
 * (a killed API process, or its patience of `timeoutMs` run out), tries again at once with the
 * same id and body until it has a definitive answer, as the contract tells a client to; `onHeld`
 * hears each buyer that holds as soon as it knows.
 */
function storm(
  sku: string,
  ttlSeconds: number,
  timeoutMs: number,
  onHeld: (id: string) => void = () => undefined,
): Promise<Outcome[]> {
  return Promise.all(
    Array.from({ length: BUYERS }, async (_, i) => {
      const first = await buy(sku, `${sku}-b${i}`, ttlSeconds, timeoutMs);
      let final = first;
      while (final.status === 'no answer' || final.status === 503) {
        await sleep(250);
        final = await buy(sku, first.id, ttlSeconds, timeoutMs);
      }
      if (holds(final)) onHeld(final.id);
      return { first, final };
    }),
  );
}

/**
 * Commits until the answer is final: 200 COMMITTED, or a 4xx; a 503 or a lost connection is
 * retried, as the contract allows (a repeat is idempotent and answers the outcome).
 */
async function commitUntilFinal(
  id: string,
): Promise<{ id: string; status: number; reservationStatus?: unknown; error?: unknown; attempts?: string[] }> {
  const attempts: string[] = [];
  for (;;) {
    try {
      const res = await call('POST', `${service!.url}/v1/reservations/${id}/commit`, {});
      attempts.push(String(res.status));
      if (res.status !== 503)
        return { id, status: res.status, reservationStatus: res.body.status, error: res.body.error, attempts };
    } catch (err) {
      attempts.push(String(err));
    }
    await sleep(250);
  }
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

async function newSku(units: number): Promise<string> {
  const sku = uniqueSku('PROC');
  const created = await call('POST', `${service!.url}/v1/skus`, { sku, total: units, name: 'flash sale' }, ADMIN_TOKEN);
  expect(created.status).toBe(201);
  return sku;
}

/** Each reservation's sales in the ledger: reservation id → number of sale movements. */
async function salesOf(sku: string): Promise<Map<string, number>> {
  const { rows } = await clients.db.query<{ reservation_id: string; n: string }>(
    `SELECT reservation_id, count(*) AS n FROM stock_movements WHERE sku = $1 AND kind = 'sale' GROUP BY reservation_id`,
    [sku],
  );
  return new Map(rows.map((r) => [r.reservation_id, Number(r.n)]));
}

// ---------------------------------------------------------------- setup

beforeAll(async () => {
  snapshot = snapshotService();
  stores = await startPrivateStores('stockhold_processes');
  clients = createStock({ redisUrl: stores.redisUrl, databaseUrl: stores.databaseUrl });
  env = await devServerEnv();
}, 240_000);

afterAll(async () => {
  if (service?.running()) {
    process.kill(-service.child.pid!, 'SIGKILL'); // the whole group: main and its children
    await service.exited;
  }
  await env?.teardown();
  await clients?.close();
  await stores?.stop();
  if (snapshot) rmSync(snapshot, { recursive: true, force: true });
});

describe('npm start with 2 API processes and 2 workers', () => {
  it('npm run temporal:search-attributes registers the search attributes on an existing server, and finds them there the second time', () => {
    const address = env!.address;
    const cli = (...args: string[]) =>
      execFileSync(TEMPORAL_CLI, [...args, '--address', address], { encoding: 'utf8', stdio: 'pipe' });
    // The dev server was started with them: take them away first, so the command has to create them.
    for (const name of ['ReservationStatus', 'InventorySkus', 'ReservationExpiresAt', 'CustomerId', 'SalesChannel']) {
      cli('operator', 'search-attribute', 'remove', '--namespace', 'default', '--name', name, '--yes');
    }
    const run = () =>
      execFileSync(process.execPath, [path.join(snapshot!, 'lib', 'cli', 'search-attributes.js')], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' },
      });
    expect(run().trim().split('\n')).toEqual([
      `ReservationStatus (Keyword): created on namespace default at ${address}`,
      `InventorySkus (KeywordList): created on namespace default at ${address}`,
      `ReservationExpiresAt (Datetime): created on namespace default at ${address}`,
      `CustomerId (Keyword): created on namespace default at ${address}`,
      `SalesChannel (Keyword): created on namespace default at ${address}`,
    ]);
    expect(run()).toMatch(/^ReservationStatus \(Keyword\): exists already/);
    const listed = cli('operator', 'search-attribute', 'list', '--namespace', 'default', '-o', 'json');
    for (const name of ['ReservationStatus', 'InventorySkus', 'ReservationExpiresAt', 'CustomerId', 'SalesChannel'])
      expect(listed).toContain(name);
  });

  it('starts them all, sharing the port, and says so', async () => {
    const port = await freePort();
    const environment: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(environment)) {
      if (/^(TEMPORAL_|REDIS_CLUSTER_NODES|INVENTORY_|API_PROCESSES|WORKER_PROCESSES|NODE_ENV)/.test(name))
        delete environment[name];
    }
    Object.assign(environment, {
      PORT: String(port),
      DATABASE_URL: stores!.databaseUrl,
      REDIS_URL: stores!.redisUrl,
      TEMPORAL_ADDRESS: env!.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue('processes'),
      INVENTORY_ADMIN_TOKEN: ADMIN_TOKEN,
      INVENTORY_API_TOKEN: CLIENT_TOKEN,
      API_PROCESSES: '2',
      WORKER_PROCESSES: '2',
      LOG_LEVEL: 'info',
    });
    service = new Service(snapshot!, port, path.join(snapshot!, 'npm-start.log'), environment);
    await service.waitFor('the banner', () => service!.log().includes('Stockhold is running.'));
    expect(service.log()).toContain('Processes:        2 API processes sharing the port, 2 worker processes');
    expect(service.log()).toContain('using the Temporal server already running');
    for (const label of ['api-1', 'api-2', 'worker-1', 'worker-2']) expect(alive(service.pidOf(label))).toBe(true);

    // Once per deployment, whatever the number of processes: both API processes asked for the
    // reconciler, and one reconciler workflow runs.
    const reconcilers = async () => {
      const runs: string[] = [];
      for await (const wf of env!.client.workflow.list({
        query: `WorkflowType = "reconcilerWorkflow" AND ExecutionStatus = "Running"`,
      }))
        runs.push(wf.workflowId);
      return runs;
    };
    // Visibility is eventually consistent: wait until it lists a running one, then demand exactly that one.
    const running = await waitFor(reconcilers, (runs) => runs.length > 0, 200);
    expect(running).toEqual(['stockhold-reconciler']);
  }, 120_000);

  it(`a storm of ${BUYERS.toLocaleString('en-US')} buyers for ${UNITS} units over both API processes, a 503 retried: exactly ${UNITS} hold (fewer only for holds given back under load), the rest are refused`, async () => {
    const sku = await newSku(UNITS);
    const outcomes = await storm(sku, 600, 60_000);

    // Every buyer is answered, first 201, 409, or 503 when the machine is overloaded (the
    // contract's "try again"). A buyer told 503 tried again with the same id, as a client does:
    // exactly UNITS buyers end up holding (unless a run gave its hold back when it gave up under
    // the load, its buyer then answered 503), and every other one is refused.
    //
    // On 2 busy cores, 10,000 connections at once can overflow the listen backlog: a buyer whose
    // connection was never accepted in the client's connect timeout has no answer and tries again,
    // like one told 503. The service itself never leaves an accepted request unanswered (a 60 s
    // response timeout, TimeoutError, would fail this).
    const statuses = countBy(outcomes, (o) => String(o.first.status));
    expect(Object.keys(statuses).filter((s) => !['201', '409', '503', 'no answer'].includes(s))).toEqual([]);
    const unanswered = outcomes.filter((o) => o.first.status === 'no answer').map((o) => o.first.error);
    expect(unanswered.filter((code) => !['UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET'].includes(code!))).toEqual([]);
    expect(outcomes.filter((o) => ![200, 201, 409].includes(o.final.status as number))).toEqual([]);
    const winners = outcomes.filter((o) => holds(o.final)).map((o) => o.final.id);
    const unsold = UNITS - winners.length;
    const retried = (statuses['503'] ?? 0) + unanswered.length;
    expect({ unsold: unsold > 0 && unsold <= retried ? 'given back under load' : unsold }).toEqual({
      unsold: unsold > 0 ? 'given back under load' : 0,
    });
    if (retried)
      console.log(
        `storm over both API processes: ${JSON.stringify(statuses)} (503s and unanswered retried: ${JSON.stringify(countBy(unanswered, String))}); ${winners.length} hold`,
      );
    // Both API processes took a real share of the buyers (the kernel spreads them over the shared socket).
    const served = countBy(
      outcomes.filter((o) => o.first.status !== 'no answer'),
      (o) => o.first.servedBy ?? 'unknown',
    );
    expect(Object.keys(served).sort()).toEqual(['api-1', 'api-2']);
    expect(Math.min(served['api-1']!, served['api-2']!)).toBeGreaterThan(BUYERS * 0.1);

    const commits = await Promise.all(winners.map(commitUntilFinal));
    expect(commits.filter((c) => c.status !== 200 || c.reservationStatus !== 'COMMITTED')).toEqual([]);
    const sales = await salesOf(sku);
    expect([...sales.keys()].sort()).toEqual([...winners].sort());
    expect([...sales.values()].every((n) => n === 1)).toBe(true);
    const f = await figures(clients, sku);
    expect(f).toMatchObject({ redisTotal: unsold, redisReserved: 0, pgTotal: unsold, pgHeld: 0 });
    await expectConsistent(clients, sku);
  }, 120_000);

  it("GET /metrics answers for the whole machine: every API process's refusals, the same whichever process serves the scrape", async () => {
    const sku = await newSku(1);
    /** Scrapes on a new connection each time (so the kernel picks the process): who served it and the refusals by code. */
    const scrape = async () => {
      const res = await onItsOwnConnection('GET', '/metrics');
      const refusals: Record<string, number> = {};
      for (const m of res.text.matchAll(/^stockhold_reservation_refusals_total\{code="([A-Z_]+)"\} (\d+)$/gm))
        refusals[m[1]!] = Number(m[2]);
      return { servedBy: res.servedBy, refusals };
    };
    const before = await scrape();
    // Waves of refusals until both processes have refused some (else this would prove nothing about
    // combining them; a burst may all be accepted by one process).
    const refused: { code?: string; servedBy?: string }[] = [];
    for (let wave = 0; wave < 10 && new Set(refused.map((a) => a.servedBy)).size < 2; wave++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const res = await onItsOwnConnection('POST', '/v1/reservations', { items: [{ sku, quantity: 1 }] });
          return { code: (JSON.parse(res.text) as { error?: { code: string } }).error?.code, servedBy: res.servedBy };
        }),
      );
      refused.push(...answers.filter((a) => a.code !== undefined));
    }
    expect(new Set(refused.map((a) => a.servedBy))).toEqual(new Set(['api-1', 'api-2']));
    const heard = countBy(refused, (a) => a.code!);
    const scrapes = [];
    for (let i = 0; i < 100 && new Set(scrapes.map((s) => s.servedBy)).size < 2; i++) {
      scrapes.push(await scrape());
      await sleep(10);
    }
    expect(new Set(scrapes.map((s) => s.servedBy))).toEqual(new Set(['api-1', 'api-2']));
    for (const { refusals } of scrapes) {
      const delta = Object.fromEntries(
        Object.entries(refusals)
          .map(([code, n]) => [code, n - (before.refusals[code] ?? 0)])
          .filter(([, n]) => n !== 0),
      );
      expect(delta).toEqual(heard);
    }
  }, 60_000);

  it('a storm during which one API process and one worker are SIGKILLed: no sale lost, no hold left behind, both restarted', async () => {
    const svc = service!;
    const sku = await newSku(UNITS);
    const victims = { api: svc.pidOf('api-1'), worker: svc.pidOf('worker-1') };
    const held = new Set<string>();
    const commits: ReturnType<typeof commitUntilFinal>[] = [];
    let killed = false;
    const onHeld = (id: string) => {
      if (held.has(id)) return;
      held.add(id);
      // A buyer that holds pays and commits at once (its hold must not expire meanwhile).
      commits.push(commitUntilFinal(id));
      // Mid-storm: half the units held, their commits in flight, most buyers still waiting.
      if (held.size === UNITS / 2 && !killed) {
        killed = true;
        process.kill(victims.api, 'SIGKILL');
        process.kill(victims.worker, 'SIGKILL');
      }
    };
    const outcomes = await storm(sku, KILL_STORM_TTL_SECONDS, 30_000, onHeld);
    expect(killed).toBe(true);
    const statuses = countBy(outcomes, (o) => String(o.first.status));
    expect(Object.keys(statuses).filter((s) => !['201', '409', '503', 'no answer'].includes(s))).toEqual([]);
    // Buyers the kill left without an answer (or with 503) tried again with the same id and body,
    // as the contract allows: one whose first attempt did hold learnt it then (200 HELD).
    expect(outcomes.filter((o) => ![200, 201, 409].includes(o.final.status as number))).toEqual([]);

    // No sale lost: every buyer that held committed, exactly once.
    const committed = await Promise.all(commits);
    expect(committed.filter((c) => c.status !== 200 || c.reservationStatus !== 'COMMITTED')).toEqual([]);
    expect(held.size).toBeGreaterThanOrEqual(UNITS / 2);
    expect(held.size).toBeLessThanOrEqual(UNITS);

    // No hold left behind: a hold nobody claimed (its buyer's retry was refused while the first
    // attempt was still deciding) expires; then Redis and PostgreSQL agree there is none.
    const f = await waitFor(
      () => figures(clients, sku),
      (x) => x.redisReserved === 0 && x.pgHeld === 0 && x.holdCount === 0,
      250,
    );
    expect(f).toMatchObject({
      redisReserved: 0,
      sumOfHolds: 0,
      pgHeld: 0,
      redisTotal: UNITS - held.size,
      pgTotal: UNITS - held.size,
    });
    await expectConsistent(clients, sku);
    const sales = await salesOf(sku);
    expect([...sales.keys()].sort()).toEqual([...held].sort());
    expect([...sales.values()].every((n) => n === 1)).toBe(true);

    // The supervisor restarted both, and said why.
    await svc.waitFor(
      'api-1 and worker-1 ready again',
      () => svc.readyCount('api-1') >= 2 && svc.readyCount('worker-1') >= 2,
    );
    for (const [label, pid] of [
      ['api-1', victims.api],
      ['worker-1', victims.worker],
    ] as const) {
      expect(svc.lines()).toContainEqual(expect.objectContaining({ process: label, pid, exit: 'signal SIGKILL' }));
      expect(svc.pidOf(label)).not.toBe(pid);
      expect(alive(svc.pidOf(label))).toBe(true);
    }
    // Both serve again. One at a time: a burst may all be accepted by whichever process wakes first
    // (Node accepts until the queue is empty), which says nothing about the other.
    const servedAfter = new Set<string | undefined>();
    for (let i = 0; i < 100 && servedAfter.size < 2; i++) {
      servedAfter.add(await servedBy(svc.port));
      await sleep(10);
    }
    expect(servedAfter).toEqual(new Set(['api-1', 'api-2']));
    console.log(`kill storm: first answers ${JSON.stringify(statuses)}; ${held.size} held and committed`);
  }, 400_000);

  it('Ctrl-C (SIGINT to the whole process group) stops every process', async () => {
    const svc = service!;
    const pids = ['api-1', 'api-2', 'worker-1', 'worker-2'].map((label) => svc.pidOf(label));
    process.kill(-svc.child.pid!, 'SIGINT');
    const { code } = await svc.exited;
    expect(code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    // Nothing crashed on the way down, and nothing was restarted.
    const crashes = svc.lines().filter((l) => /exited unexpectedly/.test(l.msg ?? ''));
    expect(crashes.map((l) => l.process).sort()).toEqual(['api-1', 'worker-1']); // the two the storm killed
  }, 60_000);
});
