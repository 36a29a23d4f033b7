/**
 * The Temporal part of the configuration: address, namespace, task queue, and TLS or an API key,
 * checked by variable name at start (a bad certificate or key stops the service there, not at its
 * first connection).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { DEFAULT_TASK_QUEUE } from '../workflows/definitions';
import type { Config } from './index';
import { booleanOf, ConfigError, fileOf } from './env';

/**
 * TLS to Temporal. The files are read when the configuration is loaded, so a wrong path stops the
 * service at start with the variable's name rather than at its first connection attempt; the
 * paths are kept for the Temporal CLI, which takes paths (src/cli/search-attributes.ts).
 */
export interface TemporalTls {
  /** mTLS client certificate and its private key (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY). */
  clientCert?: { certPath: string; keyPath: string; crt: Buffer; key: Buffer };
  /** The CA that signed the server's certificate (TEMPORAL_TLS_CA), when the system's CAs do not. */
  serverCa?: { path: string; pem: Buffer };
  /** The name checked against the server's certificate, and sent as SNI (TEMPORAL_TLS_SERVER_NAME). */
  serverName?: string;
}

/** The Temporal part of the configuration: all a Temporal client needs (the payment example, the scripts). */
export type TemporalConfig = Pick<
  Config,
  'temporalAddress' | 'temporalNamespace' | 'temporalTls' | 'temporalApiKey' | 'taskQueue'
>;

/**
 * TLS and the API key for Temporal. What the SDK would only report at the first connection, as a
 * bare handshake failure, is refused here by variable name: half an mTLS pair, an unreadable or
 * non-PEM file, a key that does not belong to the certificate, and TEMPORAL_TLS=false next to
 * settings that only make sense with TLS (an API key sent in clear text would be readable by
 * anyone on the path). An API key together with an mTLS pair is accepted: the SDK (1.24, client
 * and worker alike) sends both, the certificate in the handshake and the key as a header, and
 * the server checks whichever its namespace is set up for.
 */
export function temporalSecurityOf(env: NodeJS.ProcessEnv): Pick<Config, 'temporalTls' | 'temporalApiKey'> {
  const forced = booleanOf(env, 'TEMPORAL_TLS');
  const apiKey = env.TEMPORAL_API_KEY?.trim() || undefined;
  if (apiKey !== undefined && !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new ConfigError(
      'TEMPORAL_API_KEY must be printable ASCII without spaces (it travels in an Authorization header)',
    );
  }
  const certPath = env.TEMPORAL_TLS_CERT?.trim() || undefined;
  const keyPath = env.TEMPORAL_TLS_KEY?.trim() || undefined;
  const caPath = env.TEMPORAL_TLS_CA?.trim() || undefined;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME?.trim() || undefined;
  if (certPath && !keyPath)
    throw new ConfigError(
      'TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs the client certificate and its private key',
    );
  if (keyPath && !certPath)
    throw new ConfigError(
      'TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs the client certificate and its private key',
    );
  if (serverName !== undefined && !/^[A-Za-z0-9.-]+$/.test(serverName)) {
    throw new ConfigError(`TEMPORAL_TLS_SERVER_NAME must be a host name, got ${JSON.stringify(serverName)}`);
  }
  if (forced === false) {
    const needsTls = [
      ['TEMPORAL_API_KEY', apiKey, ' (the key would travel in clear text)'],
      ['TEMPORAL_TLS_CERT', certPath, ''],
      ['TEMPORAL_TLS_CA', caPath, ''],
      ['TEMPORAL_TLS_SERVER_NAME', serverName, ''],
    ].find(([, value]) => value !== undefined);
    if (needsTls)
      throw new ConfigError(
        `TEMPORAL_TLS=false contradicts ${needsTls[0]}, which needs TLS${needsTls[2]}: unset one of them`,
      );
  }

  const tls: TemporalTls = {};
  if (certPath && keyPath) {
    const crt = fileOf('TEMPORAL_TLS_CERT', certPath);
    const key = fileOf('TEMPORAL_TLS_KEY', keyPath);
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(crt);
    } catch {
      throw new ConfigError(`TEMPORAL_TLS_CERT (${certPath}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new ConfigError(
        `TEMPORAL_TLS_KEY (${keyPath}) holds no unencrypted PEM private key (-----BEGIN … PRIVATE KEY-----)`,
      );
    }
    if (!certificate.checkPrivateKey(privateKey)) {
      throw new ConfigError(
        `TEMPORAL_TLS_KEY (${keyPath}) is not the private key of the certificate in TEMPORAL_TLS_CERT (${certPath})`,
      );
    }
    tls.clientCert = { certPath, keyPath, crt, key };
  }
  if (caPath) {
    const pem = fileOf('TEMPORAL_TLS_CA', caPath);
    try {
      new X509Certificate(pem);
    } catch {
      throw new ConfigError(`TEMPORAL_TLS_CA (${caPath}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    tls.serverCa = { path: caPath, pem };
  }
  if (serverName) tls.serverName = serverName;
  // TLS is on when asked for, or when anything configured needs it (an API key: as the SDK does).
  const tlsOn = forced ?? (apiKey !== undefined || Object.keys(tls).length > 0);
  return { ...(tlsOn ? { temporalTls: tls } : {}), ...(apiKey !== undefined ? { temporalApiKey: apiKey } : {}) };
}

/** The Temporal settings alone (no tokens, no stores): for clients that are not the service. */
export function loadTemporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  return {
    temporalAddress: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    ...temporalSecurityOf(env),
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
  };
}

/** At least this many characters in a configured token. */
