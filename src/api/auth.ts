/**
 * Bearer-token access (client or admin), compared in constant time; the admin token is accepted
 * wherever the client token is.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { StockholdError } from '../domain/errors';

export type Access = 'client' | 'admin';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Bearer-token roles from the environment. Digests make every comparison the same length, and
 * both tokens are always compared, so timing tells nothing about either token.
 */
export function createAuth(tokens: { adminToken: string; apiToken: string }) {
  const admin = digest(tokens.adminToken);
  const client = digest(tokens.apiToken);

  const roleOf = (header: string | undefined): Access | undefined => {
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(header ?? '');
    if (!match) return undefined;
    const presented = digest(match[1]!);
    const isAdmin = timingSafeEqual(presented, admin);
    const isClient = timingSafeEqual(presented, client);
    return isAdmin ? 'admin' : isClient ? 'client' : undefined;
  };

  /** The admin token is accepted wherever the client token is. */
  return function requireAccess(role: Access): RequestHandler {
    return (req, _res, next) => {
      const has = roleOf(req.headers.authorization);
      if (!has) return next(new StockholdError('UNAUTHENTICATED', 'a valid bearer token is required'));
      if (role === 'admin' && has !== 'admin')
        return next(new StockholdError('FORBIDDEN', 'this call needs the admin token'));
      next();
    };
  };
}
