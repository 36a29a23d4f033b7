/**
 * Connecting to Temporal: the options every connection shares (TLS, API key), the client the API,
 * the reconciler and the tools use, and the checks `npm start` makes before it uses a server
 * (does one answer here; is the configured one a remote cluster it must not replace).
 */
import { networkInterfaces } from 'node:os';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from '../config';

/**
 * What a connection to Temporal needs beyond the address: TLS and the API key. One function for
 * both kinds of connection, the client's `Connection` (API, reconciler, payment example) and the
 * worker's `NativeConnection`, so the two can never be configured differently: the object fits
 * both option types (an API key as a string, TLS as the SDK's TLSConfig).
 */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function temporalConnectionOptions(
  config: Pick<TemporalConfig, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>,
): TemporalConnectionOptions {
  const options: TemporalConnectionOptions = { address: config.temporalAddress };
  const tls = config.temporalTls;
  if (tls) {
    options.tls = {
      ...(tls.clientCert ? { clientCertPair: { crt: tls.clientCert.crt, key: tls.clientCert.key } } : {}),
      ...(tls.serverCa ? { serverRootCACertificate: tls.serverCa.pem } : {}),
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    };
  }
  if (config.temporalApiKey) options.apiKey = config.temporalApiKey;
  return options;
}

/**
 * Why `npm start` must not start a local dev server at the configured address, or undefined when
 * it may: an API key or TLS means a real cluster was meant (a dev server would check neither, and
 * the service would quietly run against the wrong Temporal), and a dev server can only listen on
 * this machine.
 */
export function remoteTemporalReason(
  config: Pick<TemporalConfig, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>,
): string | undefined {
  if (config.temporalApiKey) return 'TEMPORAL_API_KEY is set';
  if (config.temporalTls)
    return 'TLS is configured (TEMPORAL_TLS, TEMPORAL_TLS_CERT, TEMPORAL_TLS_CA or TEMPORAL_TLS_SERVER_NAME)';
  const host = hostOf(config.temporalAddress);
  if (!isThisMachine(host)) return `TEMPORAL_ADDRESS names another machine (${host})`;
  return undefined;
}

/** The host of `host:port` (an IPv6 host in brackets loses them). */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(':');
  return colon > 0 && address.indexOf(':') === colon ? address.slice(0, colon) : address;
}

function isThisMachine(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost' || name === '0.0.0.0' || name === '::' || name === '::1' || /^127\./.test(name)) return true;
  return Object.values(networkInterfaces()).some((addresses) =>
    addresses?.some((a) => a.address.toLowerCase() === name),
  );
}

/** True when a Temporal frontend answers at `address` (plaintext: a local dev server) within `timeoutMs`. */
export async function temporalAnswers(address: string, timeoutMs = 1_500): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects to the configured Temporal (TLS, API key) and asks for the namespace: undefined when
 * that works, else the reason, for a message that says what to check. The namespace is asked for
 * because a wrong key or certificate often gets through the handshake and fails only there.
 */
export async function temporalProblem(config: TemporalConfig, timeoutMs = 5_000): Promise<string | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: timeoutMs });
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection!.workflowService.describeNamespace({ namespace: config.temporalNamespace }),
    );
    return undefined;
  } catch (err) {
    return err instanceof Error
      ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`
      : String(err);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** Connects a client to the configured Temporal (TLS, API key), retrying while the server starts. */
export async function connectClient(
  config: Pick<TemporalConfig, 'temporalAddress' | 'temporalNamespace' | 'temporalTls' | 'temporalApiKey'>,
  waitMs = 60_000,
): Promise<Client> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 2_000 });
      return new Client({ connection, namespace: config.temporalNamespace });
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
