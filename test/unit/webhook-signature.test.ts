import { createHmac } from 'node:crypto';
import {
  GIVE_UP_AFTER_MS,
  retryDelayMs,
  RETRY_DELAYS_MS,
  signPayload,
  verifySignature,
} from '../../src/webhooks/signature';

const SECRET = 'whsec_0123456789abcdef0123456789abcdef';
const BODY = '{"id":"e1","type":"stock.changed","createdAt":"2026-11-24T10:00:00.000Z","data":{"sku":"A"}}';

describe('webhook signatures', () => {
  it('signs "<t>.<raw body>" with HMAC-SHA256 of the secret, as the contract writes it', () => {
    const expected = createHmac('sha256', SECRET).update(`1700000000.${BODY}`).digest('hex');
    expect(signPayload(SECRET, BODY, 1_700_000_000)).toBe(`t=1700000000,v1=${expected}`);
  });

  it('verifies its own signature within the tolerance', () => {
    const header = signPayload(SECRET, BODY, 1_700_000_000);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: 1_700_000_000 })).toBe(true);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: 1_700_000_300 })).toBe(true);
  });

  it('refuses a timestamp older than 5 minutes (a replay), or too far in the future', () => {
    const header = signPayload(SECRET, BODY, 1_700_000_000);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: 1_700_000_301 })).toBe(false);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: 1_699_999_699 })).toBe(false);
  });

  it('refuses another secret, a changed body, a changed timestamp and malformed headers', () => {
    const header = signPayload(SECRET, BODY, 1_700_000_000);
    const now = { nowSeconds: 1_700_000_000 };
    expect(verifySignature('whsec_another_secret_of_length', BODY, header, now)).toBe(false);
    expect(verifySignature(SECRET, BODY.replace('"A"', '"B"'), header, now)).toBe(false);
    expect(
      verifySignature(SECRET, BODY, header.replace('t=1700000000', 't=1700000001'), { nowSeconds: 1_700_000_001 }),
    ).toBe(false);
    for (const bad of [
      undefined,
      '',
      't=1700000000',
      'v1=abc',
      't=x,v1=' + 'a'.repeat(64),
      `t=1700000000,v1=${'z'.repeat(64)}`,
    ]) {
      expect(verifySignature(SECRET, BODY, bad, now)).toBe(false);
    }
  });

  it('accepts any one of several v1 values (a secret being rotated)', () => {
    const good = signPayload(SECRET, BODY, 1_700_000_000).split(',')[1]!;
    expect(
      verifySignature(SECRET, BODY, `t=1700000000,v1=${'0'.repeat(64)},${good}`, { nowSeconds: 1_700_000_000 }),
    ).toBe(true);
  });
});

describe('webhook retry schedule', () => {
  it('retries first within 10 s, then backs off to at most an hour apart', () => {
    expect(retryDelayMs(1)).toBeLessThanOrEqual(10_000);
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => retryDelayMs(n))).toEqual([
      5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
    expect(Math.max(...RETRY_DELAYS_MS)).toBe(3_600_000);
  });

  it('keeps trying for 24 hours', () => {
    expect(GIVE_UP_AFTER_MS).toBe(24 * 3_600_000);
  });

  it('takes a schedule of its own (tests)', () => {
    expect([1, 2, 3, 9].map((n) => retryDelayMs(n, [10, 20]))).toEqual([10, 20, 20, 20]);
  });
});
