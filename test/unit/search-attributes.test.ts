/**
 * `npm run temporal:search-attributes -- --print`: the commands it prints for a plain cluster, a
 * secured one (mTLS, CA, server name, API key) and Temporal Cloud. No network, no CLI run: the
 * commands are checked as text (test/integration/processes.test.ts runs them against a server).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadTemporalConfig } from '../../src/config';
import {
  existingAttributes,
  isTemporalCloud,
  outcomeOf,
  printedCommands,
  searchAttributeCommands,
  shellQuote,
} from '../../src/cli/search-attributes';

const dir = mkdtempSync(path.join(tmpdir(), 'stockhold-sa-'));
const cert = path.join(dir, 'client.crt');
const key = path.join(dir, 'client key.pem'); // a space: the printed command must quote it
const ca = path.join(dir, 'ca.crt');

beforeAll(() => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=client',
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      ca,
      '-days',
      '2',
      '-subj',
      '/CN=ca',
    ],
    { stdio: 'ignore' },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ATTRIBUTES = [
  ['ReservationStatus', 'Keyword'],
  ['InventorySkus', 'KeywordList'],
  ['ReservationExpiresAt', 'Datetime'],
  ['CustomerId', 'Keyword'],
  ['SalesChannel', 'Keyword'],
];

/** The printed lines that are commands (not comments). */
const commandLines = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));

describe('the search attribute commands', () => {
  it('prints one `temporal operator search-attribute create` per attribute, with the address and namespace', () => {
    const text = printedCommands(
      loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'shop' }),
    );
    expect(commandLines(text)).toEqual(
      ATTRIBUTES.map(
        ([name, type]) =>
          `temporal operator search-attribute create --address temporal.internal:7233 --namespace shop --name ${name} --type ${type}`,
      ),
    );
    expect(text).toMatch(/^# Stockhold's search attributes on namespace shop at temporal\.internal:7233/);
  });

  it('adds the TLS flags of the Temporal CLI for mTLS, a server CA and a server name, quoting paths for the shell', () => {
    const config = loadTemporalConfig({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
    });
    const [first] = commandLines(printedCommands(config));
    expect(first).toBe(
      `temporal operator search-attribute create --address temporal.internal:7233 --namespace default --tls --tls-cert-path ${cert} --tls-key-path '${key}' --tls-ca-path ${ca} --tls-server-name frontend.temporal.internal --name ReservationStatus --type Keyword`,
    );
  });

  it('TEMPORAL_TLS=true: --tls alone', () => {
    const [first] = commandLines(printedCommands(loadTemporalConfig({ TEMPORAL_TLS: 'true' })));
    expect(first).toBe(
      'temporal operator search-attribute create --address 127.0.0.1:7233 --namespace default --tls --name ReservationStatus --type Keyword',
    );
  });

  it('never prints the API key: the command reads it from the shell ("$TEMPORAL_API_KEY")', () => {
    const text = printedCommands(
      loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_API_KEY: 'secret-key-123' }),
    );
    expect(text).not.toContain('secret-key-123');
    expect(commandLines(text)[0]).toBe(
      'temporal operator search-attribute create --address temporal.internal:7233 --namespace default --tls --api-key "$TEMPORAL_API_KEY" --name ReservationStatus --type Keyword',
    );
    expect(text).toContain('# The API key is read from $TEMPORAL_API_KEY in your shell');
  });

  it('on Temporal Cloud prints the tcld command instead, and says why', () => {
    for (const address of ['shop.a1b2c.tmprl.cloud:7233', 'us-east-1.aws.api.temporal.io:7233']) {
      const text = printedCommands(
        loadTemporalConfig({
          TEMPORAL_ADDRESS: address,
          TEMPORAL_NAMESPACE: 'shop.a1b2c',
          TEMPORAL_API_KEY: 'secret-key-123',
        }),
      );
      expect(commandLines(text)).toEqual([
        'tcld namespace search-attributes add --namespace shop.a1b2c --search-attribute ReservationStatus=Keyword --search-attribute InventorySkus=KeywordList --search-attribute ReservationExpiresAt=Datetime --search-attribute CustomerId=Keyword --search-attribute SalesChannel=Keyword',
      ]);
      expect(text).toMatch(/is Temporal Cloud: .* with tcld/);
      expect(text).toMatch(/Cloud UI/);
      expect(text).not.toContain('secret-key-123');
    }
    expect(isTemporalCloud('temporal.internal:7233')).toBe(false);
  });

  it('runs the CLI it is given, with the same arguments it prints', () => {
    const config = loadTemporalConfig({ TEMPORAL_NAMESPACE: 'shop' });
    const commands = searchAttributeCommands(config, '/opt/temporal');
    expect(commands).toHaveLength(ATTRIBUTES.length);
    expect(commands.map((argv) => argv[0])).toEqual(Array(ATTRIBUTES.length).fill('/opt/temporal'));
    expect(commands.map((argv) => argv.slice(1).map(shellQuote).join(' '))).toEqual(
      commandLines(printedCommands(config)).map((line) => line.replace(/^temporal /, '')),
    );
  });

  it('quotes for a POSIX shell', () => {
    expect(shellQuote('plain/path-1.pem')).toBe('plain/path-1.pem');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(shellQuote('$HOME')).toBe(`'$HOME'`);
  });

  it("reads the CLI's answer: created, exists already (same type), or failed (another type, anything else)", () => {
    expect(outcomeOf(0, '')).toBe('created');
    expect(
      outcomeOf(1, 'Error: unable to add search attributes: Search attribute ReservationStatus already exists.'),
    ).toBe('exists');
    expect(outcomeOf(1, 'Search attribute ReservationStatus already exists with a different type')).toBe('failed');
    expect(outcomeOf(1, 'Error: failed reaching server: connection refused')).toBe('failed');
    // The message Temporal CLI 1.9 prints for a name taken by another type.
    expect(outcomeOf(1, 'Error: search attribute Foo already exists and has different type Keyword')).toBe('failed');
  });

  it("reads what the namespace has from the CLI's list: custom attributes only, their types as --type spells them", () => {
    const listed = JSON.stringify({
      customAttributes: {
        ReservationStatus: 'INDEXED_VALUE_TYPE_KEYWORD',
        InventorySkus: 'INDEXED_VALUE_TYPE_KEYWORD_LIST',
        Other: 'INDEXED_VALUE_TYPE_INT',
      },
      systemAttributes: { StartTime: 'INDEXED_VALUE_TYPE_DATETIME' },
    });
    expect(existingAttributes(listed)).toEqual(
      new Map([
        ['ReservationStatus', 'Keyword'],
        ['InventorySkus', 'KeywordList'],
        ['Other', 'Int'],
      ]),
    );
    expect(existingAttributes('{}')).toEqual(new Map());
    expect(existingAttributes('not json')).toBeUndefined();
  });
});
