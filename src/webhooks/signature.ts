/**
 * Webhook signing: `Stockhold-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * Pure functions over node:crypto, so a receiver can copy `verifySignature` as it is (README,
 * "Webhooks"). Also the retry schedule of a delivery, which the dispatcher and its tests share.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Stockhold-Signature';
export const EVENT_ID_HEADER = 'Stockhold-Event-Id';

/** How old a signature's timestamp may be before a receiver should refuse it (replay protection). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** The header value for `rawBody` signed at `timestampSeconds`. */
export function signPayload(secret: string, rawBody: string, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * True when `header` is a valid signature of `rawBody` (the bytes as received, before any JSON
 * parsing) with `secret`, made at most `toleranceSeconds` ago (and not more than that in the
 * future). A header may carry several `v1=` values (e.g. while a secret is being rotated); any
 * one matching is enough.
 */
export function verifySignature(
  secret: string,
  rawBody: string,
  header: string | undefined,
  options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (!header) return false;
  const tolerance = options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  let timestamp: number | undefined;
  const macs: string[] = [];
  for (const part of header.split(',')) {
    const [key, value] = part.trim().split('=', 2);
    if (key === 't' && value && /^\d+$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && value && /^[0-9a-f]{64}$/.test(value)) macs.push(value);
  }
  if (timestamp === undefined || macs.length === 0) return false;
  if (Math.abs(now - timestamp) > tolerance) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex'), 'utf8');
  // Constant-time comparison, so the time taken tells an attacker nothing about the right value.
  return macs.some((mac) => timingSafeEqual(Buffer.from(mac, 'utf8'), expected));
}

/** The waits after the 1st, 2nd… failed attempt; the last one repeats (ms). */
export const RETRY_DELAYS_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000];

/** How long after its first attempt a delivery keeps being retried before it is marked failed (ms). */
export const GIVE_UP_AFTER_MS = 24 * 3_600_000;

/** The wait before the next attempt of a delivery that has failed `attempts` times (≥ 1). */
export function retryDelayMs(attempts: number, delays: readonly number[] = RETRY_DELAYS_MS): number {
  return delays[Math.min(Math.max(attempts, 1), delays.length) - 1]!;
}
