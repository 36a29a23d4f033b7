import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevServer } from '../../src/temporal/dev-server';

/** A port nobody listens on now (the OS picks it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('starting the local Temporal dev server', () => {
  let blocker: Server | undefined;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stockhold-devserver-'));
  afterAll(async () => {
    if (blocker) await new Promise((resolve) => blocker!.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("says the server's own reason when it cannot start (its Web UI port is taken)", async () => {
    const port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(port + 1000, '127.0.0.1', resolve));
    await expect(startDevServer({ address: `127.0.0.1:${port}`, namespace: 'default', dataDir })).rejects.toThrow(
      new RegExp(`exited with \\d+: .*UI port ${port + 1000}.*address already in use`),
    );
  });
});
