/**
 * `npm run lint` (Prettier's check, then ESLint) fails on what the project's habits forbid, shown
 * on fixtures (test/lint/fixtures/, left out of the normal run): a badly formatted file, an
 * import cycle, a route importing a store client, zod or the domain barrel in workflow code; and
 * passes a file that does none of these (the negative control).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name);

/**
 * What the linter of `npm run lint` reports on each fixture with the project's config, in one run
 * (--no-ignore: the fixtures are ignored in the normal run, since they fail on purpose).
 */
let reports: Map<string, { rule: string | null; message: string }[]>;

beforeAll(() => {
  const run = spawnSync(bin('eslint'), ['--no-ignore', '--format', 'json', path.join(FIXTURES, 'src')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const results = JSON.parse(run.stdout) as {
    filePath: string;
    messages: { ruleId: string | null; message: string }[];
  }[];
  reports = new Map(
    results.map((r) => [
      path.relative(FIXTURES, r.filePath),
      r.messages.map((m) => ({ rule: m.ruleId, message: m.message })),
    ]),
  );
});

async function lint(file: string): Promise<{ rule: string | null; message: string }[]> {
  const report = reports.get(file);
  if (!report) throw new Error(`${file} was not linted`);
  return report;
}

/** Whether `npm run lint`'s Prettier check passes the fixture (with the project's config; its ignore file left out). */
async function formatted(file: string): Promise<boolean> {
  const run = spawnSync(bin('prettier'), ['--check', '--ignore-path', '', path.join(FIXTURES, file)], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (run.status !== 0 && run.status !== 1) throw new Error(`prettier failed: ${run.stderr}`);
  return run.status === 0;
}

test("a badly formatted file fails Prettier's check; one as Prettier writes it passes", async () => {
  expect(await formatted('badly-formatted.ts')).toBe(false);
  expect(await formatted('well-formatted.ts')).toBe(true);
});

test('an import cycle fails, on both of its files', async () => {
  for (const file of ['src/stock/cycle-a.ts', 'src/stock/cycle-b.ts']) {
    expect(await lint(file)).toEqual([
      { rule: 'import-x/no-cycle', message: expect.stringMatching(/^Dependency cycle/) },
    ]);
  }
});

test('a route importing pg fails; a route given a service passes', async () => {
  expect(await lint('src/api/route-imports-pg.ts')).toEqual([
    {
      rule: '@typescript-eslint/no-restricted-imports',
      message: expect.stringMatching(/'pg' import is restricted.*Routes get services/),
    },
  ]);
  expect(await lint('src/api/route-uses-a-service.ts')).toEqual([]);
});

test('zod, or the domain barrel that re-exports it, in workflow code fails', async () => {
  expect(await lint('src/workflows/uses-zod.ts')).toEqual([
    {
      rule: '@typescript-eslint/no-restricted-imports',
      message: expect.stringMatching(/'zod' import is restricted.*No zod in workflow code/),
    },
  ]);
  expect(await lint('src/workflows/uses-domain-barrel.ts')).toEqual([
    {
      rule: '@typescript-eslint/no-restricted-imports',
      message: expect.stringMatching(/domain' import is restricted.*Not the domain barrel/),
    },
  ]);
});
