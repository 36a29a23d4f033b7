/**
 * A TCP proxy a test controls, to make a real server stop answering without touching its process:
 * `freeze()` stops forwarding in both directions (bytes are kept, connections stay open, new ones
 * are accepted and wait), as a SIGSTOPped server behaves; `thaw()` delivers what waited and goes on.
 * And `startSilentListener()`: a server that accepts connections and never says a word.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>`, where clients connect instead of the target. */
  address: string;
  port: number;
  /** Stops forwarding: nothing reaches either side until `thaw()`; connections stay open. */
  freeze(): void;
  /** Delivers what waited while frozen and forwards again. */
  thaw(): void;
  /** Connections accepted so far. */
  connections(): number;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** One direction of a connection: forwards chunks, or keeps them while the proxy is frozen. */
class Direction {
  private waiting: Buffer[] = [];
  constructor(private readonly to: Socket) {}
  push(chunk: Buffer, frozen: boolean): void {
    if (frozen || this.waiting.length > 0) this.waiting.push(chunk);
    else this.to.write(chunk);
  }
  flush(): void {
    for (const chunk of this.waiting.splice(0)) this.to.write(chunk);
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A proxy from a free port on 127.0.0.1 to `target` (`host:port`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  let frozen = false;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const directions = new Set<Direction>();
  const server = createServer((client) => {
    accepted += 1;
    const upstream = connect({ host, port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    const up = new Direction(upstream);
    const down = new Direction(client);
    directions.add(up).add(down);
    client.on('close', () => {
      directions.delete(up);
      directions.delete(down);
    });
    client.on('data', (chunk: Buffer) => up.push(chunk, frozen));
    upstream.on('data', (chunk: Buffer) => down.push(chunk, frozen));
  });
  const listening = await listen(server);
  return {
    address: `127.0.0.1:${listening}`,
    port: listening,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const direction of directions) direction.flush();
    },
    connections: () => accepted,
    close: () => closeServer(server, sockets),
  };
}

/** A server on a free port of 127.0.0.1 that accepts every connection and never answers. */
export async function startSilentListener(): Promise<{
  address: string;
  connections(): number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.resume(); // read and drop whatever the client sends
  });
  const port = await listen(server);
  return { address: `127.0.0.1:${port}`, connections: () => accepted, close: () => closeServer(server, sockets) };
}
