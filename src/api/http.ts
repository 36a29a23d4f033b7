/** Express plumbing shared by the routes: reading a JSON body, the request log, timeouts. */
import express, { type Request, type RequestHandler } from 'express';
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { StockholdError } from '../domain/errors';
import { parse } from '../domain/schemas';
import type { Logger } from '../logger';

/** Reads a JSON body up to 64 KiB; anything else leaves `req.body` undefined (see `bodyOf`). */
export const jsonBody = express.json({ limit: '64kb', strict: false });

/**
 * Validates the request's JSON body against `schema`. A body sent without a JSON Content-Type is
 * refused saying so (express.json leaves it unread); a missing body reads as `whenAbsent`.
 */
export function bodyOf<T>(req: Request, schema: z.ZodType<T>, whenAbsent?: unknown): T {
  if (req.body === undefined) {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody) {
      const type = req.headers['content-type'];
      throw new StockholdError(
        'INVALID_REQUEST',
        type
          ? `(body): Content-Type must be application/json, not ${type}`
          : '(body): Content-Type is missing; send the body as application/json',
        { field: '(body)' },
      );
    }
    if (whenAbsent === undefined)
      throw new StockholdError('INVALID_REQUEST', '(body): a JSON body is required', { field: '(body)' });
    return parse(schema, whenAbsent);
  }
  return parse(schema, req.body);
}

/** Query values that must be numbers: digits only; anything else stays a string and fails validation. */
export function numberParam(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
}

const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per request, when it finishes: method, path, status, time; 5xx at error, 4xx at
 * info, the rest at debug. No headers, so tokens never reach a log line. (Cheaper on the hot path
 * than a child logger per request: most flash-sale answers are 409s.)
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (UNLOGGED.has(req.path)) return next();
    const start = performance.now();
    res.once('finish', () => {
      const status = res.statusCode;
      // A 409 is the business answering (sold out, over a limit, a finished reservation): a
      // flash sale gives thousands a second, counted by the HTTP metrics; logged at debug, like a
      // 2xx, since writing each line cost about 6 % of the refusals a storm's API could answer.
      const level = status >= 500 ? 'error' : status >= 400 && status !== 409 ? 'info' : 'debug';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          req: { method: req.method, url: req.originalUrl },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - start),
        },
        'request',
      );
    });
    next();
  };
}

/** `promise`, or a rejection after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The contract's deadlines: a read answers within 2 s, a write within 30 s, whatever a store does. */
export const READ_DEADLINE_MS = 2_000;
export const WRITE_DEADLINE_MS = 30_000;
const DEADLINE_MARGIN_MS = 200;

/**
 * Answers 503 UNAVAILABLE when a request outlives its deadline (a frozen store, a stuck call), so
 * a client never waits longer than the contract says; the late answer of the handler is dropped.
 */
export function deadlines(): RequestHandler {
  return (req, res, next) => {
    const ms = req.method === 'GET' || req.method === 'HEAD' ? READ_DEADLINE_MS : WRITE_DEADLINE_MS;
    // Fired a little early, so the answer is on the wire before the deadline, not just after it.
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      const message = `no answer from the stores within ${ms / 1000} s; retry shortly`;
      res.status(503).json({ error: { code: 'UNAVAILABLE', message, details: { deadlineMs: ms } } });
    }, ms - DEADLINE_MARGIN_MS);
    res.once('close', () => clearTimeout(timer));
    next();
  };
}
