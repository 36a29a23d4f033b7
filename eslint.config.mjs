// @ts-check
import { builtinModules } from 'node:module';
import eslint from '@eslint/js';
import eslintConfigPrettier from 'eslint-config-prettier';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Node's built-in modules, as `fs` and `node:fs`. */
const nodeBuiltins = builtinModules.flatMap((name) => (name.startsWith('node:') ? [name] : [name, `node:${name}`]));

/** An import of any of these folders of src/ (by a relative path, from anywhere). */
const folders = (...names) => names.flatMap((name) => [`**/${name}`, `**/${name}/**`]);

/**
 * The layering of src/ (README "Where things go"): each folder may import the ones below it,
 * never the ones above. `domain` is the vocabulary; `stock` the stores; the features
 * (`reconciler`, `webhooks`), Temporal plumbing and the reservation's activities use them;
 * `api` and the processes' entry points sit on top. Workflow code has rules of its own (below).
 */
const layers = [
  {
    files: ['**/src/domain/**/*.ts'],
    above: ['stock', 'api', 'activities', 'workflows', 'reconciler', 'webhooks', 'temporal', 'processes', 'cli'],
  },
  {
    files: ['**/src/stock/**/*.ts'],
    above: ['api', 'activities', 'workflows', 'reconciler', 'webhooks', 'temporal', 'processes', 'cli'],
  },
  {
    files: ['**/src/reconciler/**/*.ts', '**/src/webhooks/**/*.ts', '**/src/activities/**/*.ts'],
    above: ['api', 'processes', 'cli'],
  },
];

/** What no HTTP route may import: the stores' clients. Routes get services (src/stock, src/webhooks). */
const storeClients = ['pg', 'ioredis'].map((name) => ({
  name,
  message:
    "Routes get services (StockStore, WebhookStore), never a store client: put the query in src/stock or the feature's store.ts.",
}));

/**
 * Workflow code runs in Temporal's deterministic sandbox: no I/O, no Node, no clients; it reaches
 * the outside only through activities, imported as types. And nothing heavy: the sandbox evaluates
 * every module of the bundle once per workflow, so zod (through the schemas or the domain barrel
 * that re-exports them) cost ~2 MB per cached workflow (bench/FINDINGS.md).
 */
const workflowFiles = [
  '**/src/workflows/**/*.ts',
  '**/src/*/workflow.ts',
  '**/src/domain/{errors,failures,limits,types}.ts',
];
const workflowImports = {
  paths: [
    ...nodeBuiltins.map((name) => ({
      name,
      message: 'Workflow code is deterministic: no Node built-ins (do I/O in an activity).',
    })),
    ...['ioredis', 'pg', 'express', 'pino', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map(
      (name) => ({
        name,
        message: 'Workflow code does no I/O: call an activity instead.',
      }),
    ),
    {
      name: 'zod',
      message:
        'No zod in workflow code: each cached workflow would carry it (~2 MB); validate by hand (src/workflows/validators.ts).',
    },
  ],
  patterns: [
    { group: ['zod/*'], message: 'No zod in workflow code (see above).' },
    {
      regex: '(^|/)domain(/(index|schemas|views))?$',
      message:
        'Not the domain barrel, schemas or views (they bring zod): import src/domain/{errors,failures,limits,types} directly.',
    },
    { group: folders('stock', 'api'), message: 'Workflow code does no I/O: call an activity instead.' },
    {
      group: folders('activities'),
      allowTypeImports: true,
      message: 'Import activities as types and call them through proxyActivities.',
    },
    {
      group: ['**/activities', '**/activities/**', './activities'],
      allowTypeImports: true,
      message: 'Import activities as types and call them through proxyActivities.',
    },
  ],
};

export default tseslint.config(
  {
    ignores: [
      'lib/**',
      'build/**',
      'node_modules/**',
      '.tools/**',
      '.data/**',
      'bench/results/**',
      'coverage/**',
      'test/lint/fixtures/**',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules: the type checker knows which calls return promises.
    files: ['**/*.ts'],
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A promise nobody awaits loses its error; mark deliberate fire-and-forget with `void`.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // No import cycles in the service's code (type-only imports are not cycles at run time).
    files: ['**/src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  ...layers.map(({ files, above }) => ({
    files,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: folders(...above),
              message: `This folder sits below ${above.join(', ')}: it may not import them (README "Where things go").`,
            },
          ],
        },
      ],
    },
  })),
  {
    files: ['**/src/api/**/*.ts'],
    ignores: ['**/src/api/server.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths: storeClients }] },
  },
  {
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { globals: globals.node },
  },
  {
    // CommonJS scripts load their modules with require().
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The pages' own scripts (the ops page, /docs) run in the browser.
    files: ['public/**/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'script' },
  },
  {
    files: workflowFiles,
    languageOptions: { globals: { ...globals.es2021, console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', workflowImports],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', '__dirname', '__filename', 'setImmediate'].map((name) => ({
          name,
          message: 'Not available in the workflow sandbox.',
        })),
      ],
    },
  },
  // Formatting is Prettier's (npm run lint checks it first): the rules that would fight it are off.
  eslintConfigPrettier,
);
