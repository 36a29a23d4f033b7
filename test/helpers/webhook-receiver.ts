/**
 * A real webhook receiver for tests: a node:http server on 127.0.0.1, a spare port, that records
 * every request it gets (raw body, headers, the status it answered, when) and answers what the
 * test's `behaviour` says, so a test can check signatures, ids and order afterwards.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What a receiver answers to the n-th request (0-based), given the event it carries: a status,
 * after an optional delay, or once `after` settles (a gate the test opens: the request stays
 * unanswered until then, whatever the sender's timeout).
 */
export type Behaviour = (
  n: number,
  req: IncomingMessage,
  event: DeliveredEvent,
) => { status: number; delayMs?: number; after?: Promise<unknown> };

/** The event a delivery carries (docs/API.md, "A delivery"). */
export interface DeliveredEvent {
  id: string;
  type: string;
  createdAt: string;
  data: Record<string, unknown>;
}

/** One request as the receiver got it. */
export interface ReceivedRequest {
  /** The body exactly as sent (what the signature covers). */
  raw: string;
  /** The body parsed. */
  event: DeliveredEvent;
  headers: IncomingHttpHeaders;
  /** The status the receiver answered (or meant to, when the sender gave up first). */
  status: number;
  /** Whether that answer was written (false while a gate or delay holds it, or when the sender left first). */
  answered: boolean;
}

export interface Receiver {
  /** `http://127.0.0.1:<port>/hook`. */
  url: string;
  /** Every request so far, in the order received. */
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

const open = new Set<Server>();

const ok: Behaviour = () => ({ status: 200 });

export async function startReceiver(behaviour: Behaviour = ok): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const event = JSON.parse(raw) as DeliveredEvent;
      const { status, delayMs, after } = behaviour(n++, req, event);
      const received: ReceivedRequest = { raw, event, headers: req.headers, status, answered: false };
      requests.push(received);
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(status).end();
        received.answered = true;
      };
      if (after) void after.then(answer, answer);
      else if (delayMs) setTimeout(answer, delayMs).unref();
      else answer();
    });
  });
  open.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests,
    close: () => closeServer(server),
  };
}

async function closeServer(server: Server): Promise<void> {
  open.delete(server);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Closes every receiver still open (for afterAll). */
export async function closeReceivers(): Promise<void> {
  await Promise.all([...open].map(closeServer));
}

/** The ids of the events the receiver answered with a 2xx (an answer written, not one a gate still holds). */
export function deliveredIds(receiver: Receiver): Set<string> {
  return new Set(
    receiver.requests.filter((r) => r.answered && r.status >= 200 && r.status < 300).map((r) => r.event.id),
  );
}
