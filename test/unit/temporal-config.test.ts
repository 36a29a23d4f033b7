/**
 * The Temporal part of the configuration (TLS, API key, Temporal Cloud) and the process counts:
 * each variable, each refusal, and the connection options built from them. No network: the
 * certificates are made here with openssl, and nothing connects.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { startupBanner } from '../../src/banner';
import { ConfigError, loadConfig, loadTemporalConfig } from '../../src/config';
import { remoteTemporalReason, temporalConnectionOptions } from '../../src/temporal/connection';

const dir = mkdtempSync(path.join(tmpdir(), 'stockhold-tls-'));
const file = (name: string) => path.join(dir, name);

/** A self-signed certificate and its key (EC P-256: quick to make). */
function makePair(name: string): { cert: string; key: string } {
  const cert = file(`${name}.crt`);
  const key = file(`${name}.key`);
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
      `/CN=${name}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

let client: { cert: string; key: string };
let other: { cert: string; key: string };
let ca: { cert: string; key: string };

beforeAll(() => {
  client = makePair('client');
  other = makePair('other');
  ca = makePair('ca');
  writeFileSync(file('not-pem.txt'), 'hello\n');
  mkdirSync(file('a-directory'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ConfigError `fn` throws (the test fails if it throws anything else, or nothing). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

describe('Temporal connection settings', () => {
  it('defaults to the local dev server: plaintext, no key, default namespace', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ temporalAddress: '127.0.0.1:7233', temporalNamespace: 'default' });
    expect(config.temporalTls).toBeUndefined();
    expect(config.temporalApiKey).toBeUndefined();
    expect(temporalConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233' });
    expect(remoteTemporalReason(config)).toBeUndefined();
  });

  it('takes TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'shop-prod' });
    expect(config).toMatchObject({ temporalAddress: 'temporal.internal:7233', temporalNamespace: 'shop-prod' });
    expect(temporalConnectionOptions(config)).toEqual({ address: 'temporal.internal:7233' });
  });

  it('TEMPORAL_API_KEY: sent as the API key, with TLS on (as the SDK and Temporal Cloud expect)', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'shop.a1b2c',
      TEMPORAL_API_KEY: ' key-123.abc \n',
    });
    expect(config.temporalApiKey).toBe('key-123.abc'); // pasted with a newline: trimmed
    expect(temporalConnectionOptions(config)).toEqual({
      address: 'us-east-1.aws.api.temporal.io:7233',
      tls: {},
      apiKey: 'key-123.abc',
    });
  });

  it('TEMPORAL_TLS=true: TLS with the system CAs and no client certificate', () => {
    for (const value of ['true', 'TRUE', '1', 'yes']) {
      expect(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS: value }))).toEqual({
        address: '127.0.0.1:7233',
        tls: {},
      });
    }
    for (const value of ['false', '0', 'no', '']) {
      expect(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS: value }))).toEqual({ address: '127.0.0.1:7233' });
    }
  });

  it('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: the files, read at start, as the mTLS client pair', () => {
    const config = loadConfig({ TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: client.key });
    expect(config.temporalTls?.clientCert).toMatchObject({ certPath: client.cert, keyPath: client.key });
    const options = temporalConnectionOptions(config);
    expect(options.tls?.clientCertPair?.crt).toEqual(readFileSync(client.cert));
    expect(options.tls?.clientCertPair?.key).toEqual(readFileSync(client.key));
    expect(options.apiKey).toBeUndefined();
  });

  it('TEMPORAL_TLS_CA and TEMPORAL_TLS_SERVER_NAME: the server CA and the SNI override', () => {
    const config = loadConfig({ TEMPORAL_TLS_CA: ca.cert, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' });
    expect(temporalConnectionOptions(config)).toEqual({
      address: '127.0.0.1:7233',
      tls: { serverRootCACertificate: readFileSync(ca.cert), serverNameOverride: 'temporal.internal' },
    });
  });

  it('accepts an API key together with an mTLS pair: the SDK sends both', () => {
    const options = temporalConnectionOptions(
      loadConfig({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: client.key }),
    );
    expect(options.apiKey).toBe('key-123');
    expect(options.tls?.clientCertPair).toBeDefined();
  });

  it('builds options that both the client Connection and the worker NativeConnection take', () => {
    const options = temporalConnectionOptions(
      loadConfig({
        TEMPORAL_API_KEY: 'key-123',
        TEMPORAL_TLS_CA: ca.cert,
        TEMPORAL_TLS_CERT: client.cert,
        TEMPORAL_TLS_KEY: client.key,
      }),
    );
    // Checked by the type checker (npm run typecheck): the one object fits both option types.
    const forClient: ConnectionOptions = options;
    const forWorker: NativeConnectionOptions = options;
    expect(forClient).toBe(forWorker);
  });

  it('loadTemporalConfig needs no tokens (the payment example and the scripts are not the service)', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(loadTemporalConfig({ NODE_ENV: 'production', TEMPORAL_NAMESPACE: 'shop' })).toMatchObject({
      temporalNamespace: 'shop',
      taskQueue: 'inventory-reservations',
    });
  });

  it.each([
    [
      'a certificate without its key',
      () => ({ TEMPORAL_TLS_CERT: client.cert }),
      /^TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not/,
    ],
    [
      'a key without its certificate',
      () => ({ TEMPORAL_TLS_KEY: client.key }),
      /^TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not/,
    ],
    [
      'a certificate file that does not exist',
      () => ({ TEMPORAL_TLS_CERT: file('missing.crt'), TEMPORAL_TLS_KEY: client.key }),
      /^TEMPORAL_TLS_CERT names a file that cannot be read: .*missing\.crt \(no such file\)/,
    ],
    [
      'a key path that is a directory',
      () => ({ TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: file('a-directory') }),
      /^TEMPORAL_TLS_KEY names a file that cannot be read: .*a-directory \(it is a directory\)/,
    ],
    [
      'a CA file that does not exist',
      () => ({ TEMPORAL_TLS_CA: file('missing-ca.pem') }),
      /^TEMPORAL_TLS_CA names a file that cannot be read/,
    ],
    [
      'a certificate file that holds no certificate',
      () => ({ TEMPORAL_TLS_CERT: file('not-pem.txt'), TEMPORAL_TLS_KEY: client.key }),
      /^TEMPORAL_TLS_CERT \(.*\) holds no PEM certificate/,
    ],
    [
      'certificate and key swapped',
      () => ({ TEMPORAL_TLS_CERT: client.key, TEMPORAL_TLS_KEY: client.cert }),
      /^TEMPORAL_TLS_CERT \(.*\) holds no PEM certificate/,
    ],
    [
      'a key file that holds no key',
      () => ({ TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: file('not-pem.txt') }),
      /^TEMPORAL_TLS_KEY \(.*\) holds no unencrypted PEM private key/,
    ],
    [
      "a key that is not the certificate's",
      () => ({ TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: other.key }),
      /^TEMPORAL_TLS_KEY \(.*other\.key\) is not the private key of the certificate in TEMPORAL_TLS_CERT/,
    ],
    [
      'a CA file that holds no certificate',
      () => ({ TEMPORAL_TLS_CA: file('not-pem.txt') }),
      /^TEMPORAL_TLS_CA \(.*\) holds no PEM certificate/,
    ],
    [
      'TEMPORAL_TLS that is not a boolean',
      () => ({ TEMPORAL_TLS: 'maybe' }),
      /^TEMPORAL_TLS must be true or false, got "maybe"/,
    ],
    [
      'TEMPORAL_TLS=false with an API key',
      () => ({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'key-123' }),
      /^TEMPORAL_TLS=false contradicts TEMPORAL_API_KEY, which needs TLS \(the key would travel in clear text\)/,
    ],
    [
      'TEMPORAL_TLS=false with a client certificate',
      () => ({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: client.key }),
      /^TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CERT/,
    ],
    [
      'TEMPORAL_TLS=false with a server CA',
      () => ({ TEMPORAL_TLS: '0', TEMPORAL_TLS_CA: ca.cert }),
      /^TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CA/,
    ],
    [
      'an API key with a space in it',
      () => ({ TEMPORAL_API_KEY: 'two words' }),
      /^TEMPORAL_API_KEY must be printable ASCII without spaces/,
    ],
    [
      'a server name that is not a host name',
      () => ({ TEMPORAL_TLS_SERVER_NAME: 'https://temporal.internal/' }),
      /^TEMPORAL_TLS_SERVER_NAME must be a host name/,
    ],
  ])('refuses to start with %s, naming the variable', (_, env, message) => {
    expect(refusal(() => loadConfig(env()))).toMatch(message);
    // The payment example and the scripts refuse the same way.
    expect(refusal(() => loadTemporalConfig(env()))).toMatch(message);
  });
});

describe('when npm start may start a local dev server', () => {
  it.each([
    ['the default address', {}],
    ['localhost', { TEMPORAL_ADDRESS: 'localhost:7233' }],
    ['another loopback port', { TEMPORAL_ADDRESS: '127.0.0.1:17233' }],
    ['IPv6 loopback', { TEMPORAL_ADDRESS: '[::1]:7233' }],
  ])('may for %s without TLS or API key', (_, env) => {
    expect(remoteTemporalReason(loadConfig(env))).toBeUndefined();
  });

  it.each([
    ['an API key is set', { TEMPORAL_API_KEY: 'key-123' }, /^TEMPORAL_API_KEY is set/],
    ['TLS is forced', { TEMPORAL_TLS: 'true' }, /^TLS is configured/],
    ['a server CA is set', () => ({ TEMPORAL_TLS_CA: ca.cert }), /^TLS is configured/],
    [
      'the address is another machine',
      { TEMPORAL_ADDRESS: 'temporal.example.com:7233' },
      /^TEMPORAL_ADDRESS names another machine \(temporal\.example\.com\)/,
    ],
  ])('never when %s: a remote cluster was meant', (_, env, reason) => {
    const config = loadConfig(typeof env === 'function' ? env() : env);
    expect(remoteTemporalReason(config)).toMatch(reason);
  });
});

describe('process counts', () => {
  it('runs one API process and one worker by default', () => {
    expect(loadConfig({})).toMatchObject({ apiProcesses: 1, workerProcesses: 1 });
  });

  it('takes API_PROCESSES and WORKER_PROCESSES from 1 to 64', () => {
    expect(loadConfig({ API_PROCESSES: '4', WORKER_PROCESSES: '2' })).toMatchObject({
      apiProcesses: 4,
      workerProcesses: 2,
    });
    expect(loadConfig({ API_PROCESSES: '64', WORKER_PROCESSES: '64' })).toMatchObject({
      apiProcesses: 64,
      workerProcesses: 64,
    });
  });

  it.each([
    ['API_PROCESSES', '0'],
    ['API_PROCESSES', '65'],
    ['API_PROCESSES', 'two'],
    ['WORKER_PROCESSES', '1.5'],
    ['WORKER_PROCESSES', '-1'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(refusal(() => loadConfig({ [name]: value }))).toBe(
      `${name} must be an integer in 1..64, got ${JSON.stringify(value)}`,
    );
  });
});

describe('the banner', () => {
  const where = { apiUrl: 'http://127.0.0.1:3000', devServer: false };

  it('says how many API and worker processes run', () => {
    const text = startupBanner(loadConfig({}), { ...where, processes: { api: 4, workers: 2 } });
    expect(text).toContain('Processes:        4 API processes sharing the port, 2 worker processes');
    expect(startupBanner(loadConfig({}), { ...where, processes: { api: 1, workers: 1 } })).toContain(
      'Processes:        1 API process, 1 worker process',
    );
  });

  it('says how it authenticates to Temporal, never the API key', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'shop.a1b2c.tmprl.cloud:7233',
      TEMPORAL_API_KEY: 'secret-key-123',
      TEMPORAL_TLS_CERT: client.cert,
      TEMPORAL_TLS_KEY: client.key,
    });
    const text = startupBanner(config, where);
    expect(text).toContain('Temporal server:  shop.a1b2c.tmprl.cloud:7233 (mTLS, API key from TEMPORAL_API_KEY)');
    expect(text).not.toContain('secret-key-123');
  });
});
