/**
 * `npm run temporal:search-attributes [-- --print]`: registers the contract's search attributes
 * (ReservationStatus, InventorySkus, ReservationExpiresAt, CustomerId, SalesChannel) on an existing Temporal
 * cluster, the one TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and the TLS / API key variables name.
 *
 * The dev server `npm start` launches registers them itself, and the API tries to at start; on a
 * real cluster that attempt usually lacks the permission (adding search attributes is an
 * operator's act), and the workflows cannot start without them. So this runs the Temporal CLI's
 * `temporal operator search-attribute create`, once per attribute, with the service's own
 * connection settings; `--print` only prints the commands, for an operator to review or run
 * elsewhere. It is idempotent: an attribute that exists already is reported, not changed.
 *
 * On Temporal Cloud search attributes are added with `tcld` or in the Cloud UI, not with the
 * Temporal CLI's operator command: there it prints the `tcld` command and runs nothing.
 *
 * The API key never appears in a command: a printed command reads it from $TEMPORAL_API_KEY in
 * the shell, and a command run here gets it in its environment, where `ps` does not show it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ConfigError, loadTemporalConfig, type TemporalConfig } from '../config';
import { SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { TEMPORAL_CLI } from '../paths';

/** Stands for the API key in a command: the shell expands it when the printed command runs. */
export const API_KEY_REFERENCE = '$TEMPORAL_API_KEY';

/** Temporal Cloud's endpoints: `<namespace>.<account>.tmprl.cloud` (mTLS) and `<region>.<cloud>.api.temporal.io` (API keys). */
export function isTemporalCloud(address: string): boolean {
  const host = address.replace(/:\d+$/, '').toLowerCase();
  return host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io');
}

/** The connection flags of the Temporal CLI for the configured cluster (`temporal options` lists them). */
export function connectionFlags(config: TemporalConfig): string[] {
  const tls = config.temporalTls;
  return [
    '--address',
    config.temporalAddress,
    '--namespace',
    config.temporalNamespace,
    ...(tls ? ['--tls'] : []),
    ...(tls?.clientCert ? ['--tls-cert-path', tls.clientCert.certPath, '--tls-key-path', tls.clientCert.keyPath] : []),
    ...(tls?.serverCa ? ['--tls-ca-path', tls.serverCa.path] : []),
    ...(tls?.serverName ? ['--tls-server-name', tls.serverName] : []),
    ...(config.temporalApiKey ? ['--api-key', API_KEY_REFERENCE] : []),
  ];
}

/** One `temporal operator search-attribute create` per attribute (argv, `cli` first), so one that exists already does not stop the others. */
export function searchAttributeCommands(config: TemporalConfig, cli = 'temporal'): string[][] {
  return SEARCH_ATTRIBUTES.map(({ name, type }) => [
    cli,
    'operator',
    'search-attribute',
    'create',
    ...connectionFlags(config),
    '--name',
    name,
    '--type',
    type,
  ]);
}

/** The `tcld` command that adds them on Temporal Cloud (its namespace id is `<namespace>.<account>`). */
export function tcldCommand(config: TemporalConfig): string[] {
  return [
    'tcld',
    'namespace',
    'search-attributes',
    'add',
    '--namespace',
    config.temporalNamespace,
    ...SEARCH_ATTRIBUTES.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]),
  ];
}

/** `arg` as a POSIX shell reads it back; the API key reference stays expandable ("$TEMPORAL_API_KEY"). */
export function shellQuote(arg: string): string {
  if (arg === API_KEY_REFERENCE) return `"${API_KEY_REFERENCE}"`;
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** What `--print` prints: the commands, one per line, with comments saying what they are for. */
export function printedCommands(config: TemporalConfig): string {
  const target = `namespace ${config.temporalNamespace} at ${config.temporalAddress}`;
  if (isTemporalCloud(config.temporalAddress)) {
    return [
      `# ${config.temporalAddress} is Temporal Cloud: add Stockhold's search attributes to ${config.temporalNamespace} with tcld`,
      "# (or in the Cloud UI: Namespaces > your namespace > Search Attributes); the Temporal CLI's",
      '# `operator search-attribute create` is for self-hosted clusters.',
      tcldCommand(config).map(shellQuote).join(' '),
      '',
    ].join('\n');
  }
  return [
    `# Stockhold's search attributes on ${target} (an attribute that exists already is reported, not changed).`,
    ...(config.temporalApiKey
      ? ['# The API key is read from $TEMPORAL_API_KEY in your shell: it never appears in the command.']
      : []),
    ...searchAttributeCommands(config).map((argv) => argv.map(shellQuote).join(' ')),
    '',
  ].join('\n');
}

type Outcome = 'created' | 'exists' | 'failed';

const INDEXED_TYPES: Record<string, string> = {
  INDEXED_VALUE_TYPE_KEYWORD: 'Keyword',
  INDEXED_VALUE_TYPE_KEYWORD_LIST: 'KeywordList',
  INDEXED_VALUE_TYPE_DATETIME: 'Datetime',
  INDEXED_VALUE_TYPE_TEXT: 'Text',
  INDEXED_VALUE_TYPE_INT: 'Int',
  INDEXED_VALUE_TYPE_DOUBLE: 'Double',
  INDEXED_VALUE_TYPE_BOOL: 'Bool',
};

/** The custom attributes of `temporal operator search-attribute list --output json`: name → type as `--type` spells it. */
export function existingAttributes(json: string): Map<string, string> | undefined {
  try {
    const custom = (JSON.parse(json) as { customAttributes?: Record<string, string> }).customAttributes ?? {};
    return new Map(Object.entries(custom).map(([name, type]) => [name, INDEXED_TYPES[type] ?? type]));
  } catch {
    return undefined;
  }
}

/** What the CLI's answer means: an attribute of that name and another type is a real conflict, never "exists". */
export function outcomeOf(exitCode: number | null, output: string): Outcome {
  if (exitCode === 0) return /already exists/i.test(output) ? 'exists' : 'created';
  if (/already exists/i.test(output) && !/different type|another type|type mismatch/i.test(output)) return 'exists';
  return 'failed';
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (err) => resolve({ code: null, output: String(err) }));
    child.once('close', (code) => resolve({ code, output }));
  });
}

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--print');
  if (unknown.length > 0) {
    console.error(`unknown argument ${unknown[0]}: usage: npm run temporal:search-attributes [-- --print]`);
    return 2;
  }
  const config = loadTemporalConfig();
  if (args.includes('--print') || isTemporalCloud(config.temporalAddress)) {
    process.stdout.write(printedCommands(config));
    return isTemporalCloud(config.temporalAddress) && !args.includes('--print') ? 2 : 0;
  }
  const cli = existsSync(TEMPORAL_CLI) ? TEMPORAL_CLI : 'temporal';
  // The key through the environment, where the CLI reads it; any other TEMPORAL_* variable of
  // this shell is left out, so only the flags (the service's settings) decide where it connects.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TEMPORAL_')));
  if (config.temporalApiKey) env.TEMPORAL_API_KEY = config.temporalApiKey;
  // What the namespace has already: the CLI's create answers the same for a new attribute and an
  // existing one of the same type, so the list is what tells "created" from "exists already".
  const listArgv = [cli, 'operator', 'search-attribute', 'list', ...connectionFlags(config), '--output', 'json'].filter(
    (arg, i, argv) => arg !== API_KEY_REFERENCE && argv[i + 1] !== API_KEY_REFERENCE,
  );
  const listed = await run(listArgv, env);
  const existing = listed.code === 0 ? existingAttributes(listed.output) : undefined;
  let failed = 0;
  for (const argv of searchAttributeCommands(config, cli)) {
    const withoutKey = argv.filter((arg, i) => arg !== API_KEY_REFERENCE && argv[i + 1] !== API_KEY_REFERENCE);
    const name = argv[argv.indexOf('--name') + 1]!;
    const type = argv[argv.indexOf('--type') + 1]!;
    const has = existing?.get(name);
    let outcome: Outcome;
    let output = '';
    if (has !== undefined) {
      outcome = has === type ? 'exists' : 'failed';
      if (outcome === 'failed') output = `exists with type ${has}, not ${type}: remove it or use another namespace`;
    } else {
      const result = await run(withoutKey, env);
      outcome = outcomeOf(result.code, result.output);
      output = result.output.trim() || `exit ${result.code}`;
      if (result.code === null && cli === 'temporal')
        output +=
          '\n  the Temporal CLI was not found: run `npm run setup`, or use --print and run the commands where it is installed';
    }
    if (outcome === 'failed') {
      failed += 1;
      console.error(`${name} (${type}): failed: ${output}`);
    } else {
      console.log(
        `${name} (${type}): ${outcome === 'created' ? 'created' : 'exists already'} on namespace ${config.temporalNamespace} at ${config.temporalAddress}`,
      );
    }
  }
  return failed === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof ConfigError ? `cannot register the search attributes: ${err.message}` : err);
      process.exit(err instanceof ConfigError ? 78 : 1);
    },
  );
}
