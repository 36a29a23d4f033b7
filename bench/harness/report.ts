/** bench/results/REPORT.md and its SVG charts, written from the results (so a partial run re-renders all). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { availabilityRows } from '../scenarios/availability';
import { flashSaleRows } from '../scenarios/flash-sale';
import { holdsRows } from '../scenarios/holds';
import { memoryRows } from '../scenarios/memory';
import { reservationRows } from '../scenarios/reservations';
import { strategyRows } from '../scenarios/strategies';
import { fmt, type Row } from '../scenarios/types';
import type { LatencySummary } from './stats';
import type { Results } from './results';
import { barChart, percentileChart } from './svg';
import { markdownTable } from './table';

export function allRows(results: Results): Row[] {
  const s = results.scenarios;
  return [
    ...(s.availability ? availabilityRows(s.availability) : []),
    ...(s.flashSale ? flashSaleRows(s.flashSale) : []),
    ...(s.reservations ? reservationRows(s.reservations) : []),
    ...(s.strategies ? strategyRows(s.strategies) : []),
    ...(s.holds ? holdsRows(s.holds) : []),
    ...(s.memory ? memoryRows(s.memory) : []),
  ];
}

const curve = (l: LatencySummary | { curve: [number, number][] }) => l.curve;

function latencyTable(entries: [string, LatencySummary][]): string {
  const out = [
    '| series | count | p50 | p90 | p99 | p99.9 | max |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [label, l] of entries)
    out.push(
      `| ${label} | ${fmt.int(l.count)} | ${fmt.ms(l.p50)} | ${fmt.ms(l.p90)} | ${fmt.ms(l.p99)} | ${fmt.ms(l.p999)} | ${fmt.ms(l.max)} |`,
    );
  return out.join('\n');
}

function stamp(s: {
  measuredAt: string;
  stack: { own: boolean; url: string; logLevel?: string; profiled?: boolean };
  failure?: string;
}): string {
  const where = s.stack.own
    ? `the benchmark's own stack (API LOG_LEVEL=${s.stack.logLevel ?? 'info'}${s.stack.profiled ? ', CPU-profiled' : ''})`
    : `the running stack at ${s.stack.url}`;
  return `_Measured ${s.measuredAt} on ${where}._${s.failure ? `\n\n**FAILED: ${s.failure}**` : ''}`;
}

export function writeReport(results: Results, dir: string, findingsFile: string): void {
  const s = results.scenarios;
  const md: string[] = [];
  const m = results.machine;
  md.push('# Stockhold benchmark report', '');
  md.push(`Generated ${results.generatedAt} by \`${results.command}\`.`, '');
  md.push(
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB, Node ${m.node} on ${m.platform}; load average at start ${m.loadAverageAtStart.map((v) => v.toFixed(2)).join(' / ')}.`,
  );
  md.push(
    'Every figure and its reference come from the same run, on the same machine; load comes from separate processes on loopback.',
    '',
  );
  md.push('## Results', '', markdownTable(allRows(results)), '');

  if (s.availability) {
    const a = s.availability;
    writeFileSync(
      path.join(dir, 'availability.svg'),
      percentileChart('GET /v1/skus/:sku latency', [
        { label: `service at ${fmt.int(2000)} req/s`, points: curve(a.at2000.service) },
        { label: `bare Express at ${fmt.int(2000)} req/s`, points: curve(a.at2000.reference) },
        {
          label: `service, ${a.connections} connections (saturated)`,
          points: curve(a.throughputLatency.service),
          dashed: true,
        },
        {
          label: `bare Express, ${a.connections} connections`,
          points: curve(a.throughputLatency.reference),
          dashed: true,
        },
      ]),
    );
    md.push('## 1. Availability: `GET /v1/skus/:sku`', '', stamp(a), '');
    md.push(
      'The real middleware chain (metrics, request logging, bearer auth, body parsing, zod validation, Redis HMGET) against a bare Express route returning constant JSON (same app settings: no ETag, no X-Powered-By).',
    );
    md.push(
      `(a) Throughput: autocannon, ${a.connections} connections, alternating rounds of 8 s (after a 2 s warm-up of each):`,
      '',
    );
    md.push('| round | service req/s | reference req/s | ratio |', '| --- | ---: | ---: | ---: |');
    a.rounds.forEach((r, i) =>
      md.push(`| ${i + 1} | ${fmt.int(r.rps)} | ${fmt.int(r.referenceRps)} | ${r.ratio.toFixed(3)} |`),
    );
    md.push(
      '',
      `(b) Open-loop fixed rate of 2,000 req/s over 64 keep-alive connections (achieved ${fmt.int(a.at2000.achievedRate)} req/s), latency from the request's hand-off to its last byte; "from schedule" adds the generator's own lateness (1 ms timer):`,
      '',
    );
    if (a.at2000.rounds) {
      md.push(
        'In rounds back to back (the service, the bare route and the bare read, the order rotated each round, 8 s each after a 2 s warm-up); the goal compares p99 within each round and takes the median of the rounds:',
        '',
      );
      md.push(
        '| round | service p50 | p99 | p99.9 | reference p50 | p99 | p99.9 | p99 ratio | bare read p99 | ratio to it |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      a.at2000.rounds.forEach((r, i) =>
        md.push(
          `| ${i + 1} | ${fmt.ms(r.p50)} | ${fmt.ms(r.p99)} | ${fmt.ms(r.p999)} | ${fmt.ms(r.referenceP50)} | ${fmt.ms(r.referenceP99)} | ${fmt.ms(r.referenceP999)} | ${fmt.ratio(r.p99Ratio)} | ${r.readP99 === undefined ? '–' : fmt.ms(r.readP99)} | ${r.p99RatioToRead === undefined ? '–' : fmt.ratio(r.p99RatioToRead)} |`,
        ),
      );
      md.push('', 'The service run with the lower p99 and the last reference run in full:', '');
    }
    md.push(
      latencyTable([
        ['service at 2,000 req/s', a.at2000.service],
        ['service, from schedule', a.at2000.serviceFromSchedule],
        ['bare Express at 2,000 req/s', a.at2000.reference],
      ]),
      '',
    );
    const n = a.at2000.node;
    if (a.at2000.apiCpuPerRequestUs !== undefined || n) {
      md.push(
        `At 2,000 req/s the API used ${a.at2000.apiCpuPerRequestUs ?? 'n/a'} µs of CPU per request` +
          (a.at2000.referenceCpuPerRequestUs !== undefined
            ? ` (the bare reference ${a.at2000.referenceCpuPerRequestUs} µs` +
              (a.at2000.readCpuPerRequestUs !== undefined ? `, the bare read ${a.at2000.readCpuPerRequestUs} µs)` : ')')
            : '') +
          (n
            ? `; its own metrics (prom-client) showed ${n.gcPauses} GC pauses (${n.gcPauseMsPerSecond} ms of pause per second, ${n.gcPausesOver10ms} of them ≥ 10 ms) and an event-loop delay of p99 ${n.eventLoopLagP99Ms} ms, max ${n.eventLoopLagMaxMs} ms.`
            : '.'),
        '',
      );
    }
    md.push('![availability latency](availability.svg)', '');
  }

  if (s.flashSale) {
    const f = s.flashSale;
    const series = [
      { label: 'stock 1: losers (409)', points: curve(f.stock1.losers) },
      { label: 'stock 100: losers (409)', points: curve(f.stock100.losers) },
      ...(f.cluster
        ? [
            {
              label: `Redis Cluster, ${f.cluster.apiProcesses} APIs, stock 100: losers (409)`,
              points: curve(f.cluster.stock100.losers),
            },
          ]
        : []),
      { label: 'bare Express 409 (reference)', points: curve(f.referenceLosers), dashed: true },
    ];
    writeFileSync(
      path.join(dir, 'flash-sale.svg'),
      percentileChart(`Flash sale: ${fmt.int(f.buyers)} buyers at once, loser latency`, series),
    );
    md.push('## 2. Flash sale', '', stamp(f), '');
    md.push(
      `${fmt.int(f.buyers)} buyers POST /v1/reservations for one unit at the same moment, each on a fresh connection (Node's fetch from one separate process); wall time is from the first request to the last answer. The reference is the same storm against a bare Express route answering 409 from memory, run before and after the service's storms (wall ${f.referenceRuns.map((r) => fmt.s(r.wallS)).join(' and ')}).` +
        (f.cluster
          ? ` The Redis Cluster storms go through the service's other shape, between the same reference storms: ${f.cluster.apiProcesses} API processes (\`node lib/api/server.js\`, each on its own port; buyer i goes to process i mod ${f.cluster.apiProcesses}, as a round-robin balancer would send them) and their own worker, with REDIS_CLUSTER_NODES pointing at a private ${f.cluster.masters}-master Redis Cluster and their own database.`
          : f.clusterError
            ? ` The Redis Cluster storms did not run: ${f.clusterError}.`
            : ''),
      '',
    );
    md.push(
      '| storm | winners | Redis reserved after | wall | vs reference | answers | loser p50 | loser p99 |',
      '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    );
    const storms: [string, typeof f.stock1][] = [
      ['stock 1', f.stock1],
      ['stock 100', f.stock100],
    ];
    if (f.cluster)
      storms.push(
        [`Redis Cluster, ${f.cluster.apiProcesses} API processes, stock 1`, f.cluster.stock1],
        [`Redis Cluster, ${f.cluster.apiProcesses} API processes, stock 100`, f.cluster.stock100],
      );
    for (const [label, v] of storms) {
      md.push(
        `| ${label} | ${v.winners} | ${v.reservedAfter} | ${fmt.s(v.wallS)} | ${fmt.ratio(v.ratio)} | ${Object.entries(
          v.statuses,
        )
          .map(([c, n]) => `${fmt.int(n)}× ${c}`)
          .join(', ')}${v.errors ? `, ${v.errors} errors` : ''} | ${fmt.ms(v.loserP50Ms)} | ${fmt.ms(v.loserP99Ms)} |`,
      );
    }
    const withCpu = storms.filter(([, v]) => v.cpuSeconds);
    if (withCpu.length > 0) {
      md.push('', 'CPU seconds each process used during each storm (from /proc):', '');
      f.referenceRuns.forEach((r, i) => {
        if (r.cpuSeconds !== undefined)
          md.push(`- bare-409 reference storm ${i + 1}: reference server ${r.cpuSeconds.toFixed(2)} s`);
      });
      for (const [label, v] of withCpu)
        md.push(
          `- ${label}: ${Object.entries(v.cpuSeconds!)
            .map(([name, sec]) => `${name} ${sec.toFixed(2)} s`)
            .join(', ')}`,
        );
    }
    if (f.refusalsPerSecond) {
      md.push(
        '',
        `Logging cost of a refusal: 409s for a sold-out SKU over 100 keep-alive connections (no storm, no Temporal): ${fmt.int(f.refusalsPerSecond.info)}/s at the default LOG_LEVEL=info (each 409 is a log line) against ${fmt.int(f.refusalsPerSecond.warn)}/s at LOG_LEVEL=warn.`,
      );
    }
    md.push('', '![flash sale loser latency](flash-sale.svg)', '');
  }

  if (s.reservations) {
    const r = s.reservations;
    writeFileSync(
      path.join(dir, 'reservations.svg'),
      percentileChart(`Reservations at saturation (${r.users} users) and at low load`, [
        { label: 'POST /v1/reservations', points: curve(r.latency.reserve) },
        { label: 'POST /v1/reservations/:id/commit', points: curve(r.latency.commit) },
        { label: 'reference: update-with-start', points: curve(r.latency.referenceReserve), dashed: true },
        { label: 'reference: update', points: curve(r.latency.referenceCommit), dashed: true },
        { label: 'POST /v1/reservations, 1 user', points: curve(r.latency.lowLoadReserve) },
        {
          label: 'reference update-with-start, 1 user',
          points: curve(r.latency.referenceLowLoadReserve),
          dashed: true,
        },
      ]),
    );
    md.push('## 3. Reservations: reserve → commit', '', stamp(r), '');
    md.push(
      `A closed loop of ${r.users} users, each POST /v1/reservations (one unit of one of 100 SKUs) then POST …/commit, over keep-alive HTTP, in alternating 10 s rounds with the reference: a bare workflow on the same Temporal server (update-with-start into one no-op local activity, then one update), driven by a Temporal client and served by its own worker with the service worker's settings.`,
      '',
    );
    md.push('| round | service lifecycles/s | reference lifecycles/s | ratio |', '| --- | ---: | ---: | ---: |');
    r.rounds.forEach((x, i) =>
      md.push(`| ${i + 1} | ${x.rps.toFixed(1)} | ${x.referenceRps.toFixed(1)} | ${x.ratio.toFixed(3)} |`),
    );
    md.push(
      '',
      latencyTable([
        [`POST /v1/reservations (${r.users} users)`, r.latency.reserve],
        [`POST …/commit (${r.users} users)`, r.latency.commit],
        [`reference update-with-start (${r.users} users)`, r.latency.referenceReserve],
        [`reference update (${r.users} users)`, r.latency.referenceCommit],
        ['POST /v1/reservations (1 user)', r.latency.lowLoadReserve],
        ['POST …/commit (1 user)', r.latency.lowLoadCommit],
        ['reference update-with-start (1 user)', r.latency.referenceLowLoadReserve],
      ]),
      '',
    );
    if (r.lowLoadRounds) {
      md.push(
        'Low load (one user), in rounds with both references (the order rotated each round, 6 s each); the goal takes the median of the per-round ratios to the bare update-with-start (the 1-user rows above are the last round):',
        '',
      );
      md.push(
        '| round | POST /v1/reservations p50 | bare update-with-start p50 | ratio | same-shape update-with-start p50 |',
        '| --- | ---: | ---: | ---: | ---: |',
      );
      r.lowLoadRounds.forEach((x, i) =>
        md.push(
          `| ${i + 1} | ${fmt.ms(x.reserveP50Ms)} | ${fmt.ms(x.referenceReserveP50Ms)} | ${fmt.ratio(x.ratio)} | ${x.sameShapeReserveP50Ms === undefined ? '–' : fmt.ms(x.sameShapeReserveP50Ms)} |`,
        ),
      );
      md.push('');
    }
    if (r.cpuMsPerLifecycle) {
      const c = r.cpuMsPerLifecycle;
      const sides = (['service', 'sameShape', 'reference'] as const).filter((w) => c[w]);
      const names = [...new Set(sides.flatMap((w) => Object.keys(c[w]!)))].filter(
        (k) => sides.reduce((a, w) => a + (c[w]![k] ?? 0), 0) > 0.05,
      );
      const label = { service: 'service', sameShape: 'same-shape floor', reference: 'bare reference' };
      md.push('CPU milliseconds per lifecycle, by process (median over the rounds, warm-up included):', '');
      md.push(`| process | ${names.join(' | ')} | total |`, `| --- | ${names.map(() => '---:').join(' | ')} | ---: |`);
      for (const who of sides) {
        const row = c[who]!;
        const total = names.reduce((a, k) => a + (row[k] ?? 0), 0);
        md.push(`| ${label[who]} | ${names.map((k) => (row[k] ?? 0).toFixed(1)).join(' | ')} | ${total.toFixed(1)} |`);
      }
      md.push(
        '',
        "A reference's `client` is its load generator's Temporal client (over the measured seconds), which the " +
          'service runs inside its API process: the API beyond it is the HTTP hop and what the API checks. ' +
          "`httpClient` is the service's load generator (the HTTP buyers), on the same cores: a cost of the HTTP hop " +
          'that the references do not have.',
      );
      md.push('');
    }
    md.push('![reservations latency](reservations.svg)', '');
  }

  if (s.strategies) {
    const st = s.strategies;
    const b = st.byStrategy;
    writeFileSync(
      path.join(dir, 'strategies.svg'),
      barChart(
        `One hot SKU, ${st.concurrency} concurrent buyers: sales per second`,
        [
          { label: 'naive read-then-write SQL', value: b.naive.opsPerSec, note: `(${st.naiveOversold} oversold)` },
          { label: 'conditional UPDATE', value: b.conditional.opsPerSec },
          { label: 'SELECT … FOR UPDATE', value: b.forUpdate.opsPerSec },
          { label: 'Redis Lua hold', value: b.lua.opsPerSec },
        ],
        'sales per second',
      ),
    );
    md.push('## 4. Strategies on one hot SKU', '', stamp(st), '');
    md.push(
      `${st.concurrency} concurrent buyers take one unit at a time. Timed: 5 s with plenty of stock (a lost update is a unit sold that the counter does not show). Sell-out: ${fmt.int(st.selloutStock)} units, every buyer buys until refused. PostgreSQL strategies use a pool of ${st.concurrency} connections; the Lua one is the service's lua/hold.lua over one ioredis connection (EVALSHA, not auto-pipelined, like the service).`,
      '',
    );
    md.push(
      '| strategy | sales/s | vs conditional UPDATE | lost updates (timed) | sold in sell-out | oversold |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const [label, v] of [
      ['naive read-then-write', b.naive],
      ['conditional UPDATE … WHERE available >= n', b.conditional],
      ['SELECT … FOR UPDATE', b.forUpdate],
      ['Redis Lua hold', b.lua],
    ] as const) {
      md.push(
        `| ${label} | ${fmt.int(v.opsPerSec)} | ${fmt.ratio(v.opsPerSec / b.conditional.opsPerSec)} | ${fmt.int(v.lostUpdates)} | ${fmt.int(v.selloutSold)} / ${fmt.int(st.selloutStock)} | ${fmt.int(v.selloutOversold)} |`,
      );
    }
    md.push('', '![strategies](strategies.svg)', '');
  }

  if (s.holds) {
    const h = s.holds;
    md.push('## 5. Holds per second: single Redis and Redis Cluster', '', stamp(h), '');
    md.push(
      `\`npm run bench:holds\`'s program (bench/stock-holds.ts) in its own process: ${h.concurrency} concurrent callers, ${h.rounds} alternating rounds of ${fmt.int(h.roundMs)} ms per mode (the order rotates each round), on private Redis servers started for it from the system redis-server: one node, and a 3-master Redis Cluster that the service's cluster client (REDIS_CLUSTER_NODES) reaches; one SKU per mode (one SKU lives on one master). Ratios are medians of the per-round ratios.`,
      '',
    );
    md.push(
      '| mode | median holds/s | min | max | vs (b) | cluster / single Redis |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const m of h.modes)
      md.push(
        `| ${m.label} | ${fmt.int(m.median)} | ${fmt.int(m.min)} | ${fmt.int(m.max)} | ${m.vsB.toFixed(2)} | ${m.vsSingle === undefined ? '' : fmt.ratio(m.vsSingle)} |`,
      );
    md.push('');
  }

  if (s.memory) {
    const mm = s.memory;
    const mb = (v: number | null) => (v === null ? 'n/a' : fmt.mb(v));
    md.push('## 6. Memory with 10,000 live holds', '', stamp(mm), '');
    md.push(
      `${fmt.int(mm.liveHolds)} HELD reservations made through the API (64 at a time, ${mm.holdsPerSecond.toFixed(0)} per second), each a running workflow waiting on its TTL timer (the worker caches up to 10,000). RSS from /proc; Redis \`used_memory\` is the whole instance's, so the delta is what the holds added.`,
      '',
    );
    md.push('| process | before | with the holds |', '| --- | ---: | ---: |');
    md.push(
      `| API RSS | ${mb(mm.before.apiRssMb)} | ${mb(mm.apiRssMb)} |`,
      `| worker RSS | ${mb(mm.before.workerRssMb)} | ${mb(mm.workerRssMb)} |`,
      `| Redis used_memory | ${fmt.mb(mm.before.redisUsedMb)} | ${fmt.mb(mm.redisUsedMb)} (+${fmt.mb(mm.redisDeltaMb)}) |`,
      '',
    );
  }

  if (results.experiments && Object.keys(results.experiments).length > 0) {
    md.push('## Experiments: proposed changes, before and after', '');
    md.push(
      'Each before/after pair was measured in one run (the run and time are in the last column): the change ran in its own API process beside the service, so both sides saw the same machine, stores and Temporal server.',
      '',
    );
    md.push('| change | measure | before | after | change | measured |', '| --- | --- | ---: | ---: | ---: | --- |');
    for (const list of Object.values(results.experiments)) {
      for (const e of list) {
        const delta =
          e.before === 0
            ? ''
            : `${e.after >= e.before ? '+' : ''}${(((e.after - e.before) / e.before) * 100).toFixed(0)}%`;
        md.push(
          `| ${e.change} | ${e.measure} | ${e.before.toLocaleString('en-US')} ${e.unit} | ${e.after.toLocaleString('en-US')} ${e.unit} | ${delta} | ${e.measuredAt.slice(0, 16).replace('T', ' ')}${e.notes ? ` (${e.notes})` : ''} |`,
        );
      }
    }
    md.push('');
  }

  if (existsSync(findingsFile)) md.push(readFileSync(findingsFile, 'utf8').trim(), '');

  md.push('## Running it', '');
  md.push('```sh');
  md.push('npm run bench                        # everything, on its own stack (about 10 minutes)');
  md.push(
    'npm run bench -- availability        # one scenario: availability | flash-sale | reservations | strategies | holds | memory',
  );
  md.push('npm run bench -- --profile flash-sale  # CPU-profile the API and the worker (bench/results/*.cpuprofile)');
  md.push('npm run bench -- --url http://127.0.0.1:3000 --admin-token dev-admin-token --client-token dev-api-token');
  md.push('```', '');
  writeFileSync(path.join(dir, 'REPORT.md'), md.join('\n'));
}
