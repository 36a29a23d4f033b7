/**
 * Where the running Stockhold is, for the examples: STOCKHOLD_URL when set (a service elsewhere,
 * behind a proxy, over https), else the service's own variables, `http://HOST:PORT` (PORT 3000,
 * HOST 127.0.0.1 by default), so a shell that started `npm start` with PORT=3100 reaches it as is.
 */

/** `http://127.0.0.1:3100`, without a trailing slash; throws naming the variable that is wrong. */
export function serviceUrl(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.STOCKHOLD_URL?.trim();
  if (explicit) {
    if (!/^https?:\/\/[^/]/.test(explicit))
      throw new Error(`STOCKHOLD_URL must be an http(s) URL, got ${JSON.stringify(explicit)}`);
    return explicit.replace(/\/+$/, '');
  }
  const port = Number(env.PORT || 3000);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`PORT must be a port number (1..65535), got ${JSON.stringify(env.PORT)}`);
  let host = env.HOST?.trim() || '127.0.0.1';
  // An address to listen on everywhere is not one to call: this machine's is.
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::' || host === '[::]') host = '::1';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${port}`;
}
