// Empties build/ before `npm run build:tools` compiles into it, as `npm run build` empties lib/:
// a file left by an older tree (build/src/stock/ledger.js beside today's ledger/ folder) would be
// loaded in place of the new one. Keeps build/bench/rev-*: the benchmarks' builds of other
// revisions (bench/harness/revision.ts), each a commit's own and slow to rebuild.
const { existsSync, readdirSync, rmSync } = require('node:fs');
const path = require('node:path');

const build = path.join(__dirname, '..', 'build');
if (existsSync(build)) {
  for (const entry of readdirSync(build)) {
    if (entry !== 'bench') rmSync(path.join(build, entry), { recursive: true, force: true });
  }
  const bench = path.join(build, 'bench');
  if (existsSync(bench)) {
    for (const entry of readdirSync(bench)) {
      if (!entry.startsWith('rev-')) rmSync(path.join(bench, entry), { recursive: true, force: true });
    }
  }
}
