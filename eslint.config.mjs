// @ts-check
import { builtinModules } from 'node:module';
import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Node's built-in modules, as `fs` and `node:fs`. */
const nodeBuiltins = builtinModules.flatMap((name) => (name.startsWith('node:') ? [name] : [name, `node:${name}`]));

export default tseslint.config(
  { ignores: ['lib/**', 'build/**', 'node_modules/**', '.tools/**', '.data/**', 'bench/results/**', 'coverage/**'] },
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
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { globals: globals.node },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no Node, no clients. It
    // reaches the outside only through activities, imported as types.
    files: ['src/workflows/**/*.ts'],
    languageOptions: { globals: { ...globals.es2021, console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code is deterministic: no Node built-ins (do I/O in an activity).' })),
            ...['ioredis', 'pg', 'express', 'pino', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map((name) => ({
              name,
              message: 'Workflow code does no I/O: call an activity instead.',
            })),
          ],
          patterns: [
            { group: ['**/stock', '**/stock/**', '**/api', '**/api/**'], message: 'Workflow code does no I/O: call an activity instead.' },
            { group: ['**/activities', '**/activities/**'], allowTypeImports: true, message: 'Import activities as types and call them through proxyActivities.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...['process', 'Buffer', 'require', '__dirname', '__filename', 'setImmediate'].map((name) => ({ name, message: 'Not available in the workflow sandbox.' }))],
    },
  },
);
