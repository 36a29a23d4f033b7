import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../src/config';

const ADMIN = 'admin-token-0123456789';
const CLIENT = 'client-token-0123456789';

describe('tokens from the environment', () => {
  it('uses the public development tokens only when neither token is set', () => {
    expect(loadConfig({})).toMatchObject({ adminToken: 'dev-admin-token', apiToken: 'dev-api-token', devTokens: true });
  });

  it('takes both tokens when both are set, distinct and long enough', () => {
    expect(loadConfig({ INVENTORY_ADMIN_TOKEN: ADMIN, INVENTORY_API_TOKEN: CLIENT })).toMatchObject({
      adminToken: ADMIN,
      apiToken: CLIENT,
      devTokens: false,
    });
  });

  it.each([
    ['only the client token is set', { INVENTORY_API_TOKEN: CLIENT }, /INVENTORY_ADMIN_TOKEN is not set/],
    ['only the admin token is set', { INVENTORY_ADMIN_TOKEN: ADMIN }, /INVENTORY_API_TOKEN is not set/],
    ['both tokens are equal', { INVENTORY_ADMIN_TOKEN: ADMIN, INVENTORY_API_TOKEN: ADMIN }, /must differ/],
    [
      'the admin token is shorter than 16 characters',
      { INVENTORY_ADMIN_TOKEN: 'short-admin', INVENTORY_API_TOKEN: CLIENT },
      /INVENTORY_ADMIN_TOKEN must be at least 16/,
    ],
    [
      'the client token is shorter than 16 characters',
      { INVENTORY_ADMIN_TOKEN: ADMIN, INVENTORY_API_TOKEN: 'short-client' },
      /INVENTORY_API_TOKEN must be at least 16/,
    ],
    [
      'a token holds a space',
      { INVENTORY_ADMIN_TOKEN: `${ADMIN} x`, INVENTORY_API_TOKEN: CLIENT },
      /INVENTORY_ADMIN_TOKEN must be printable ASCII/,
    ],
    [
      'NODE_ENV=production and no token is set',
      { NODE_ENV: 'production' },
      /must both be set when NODE_ENV=production/,
    ],
  ])('refuses to start when %s, naming the variable', (_, env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('refuses to start the API process with a message, not a stack trace, when the tokens are wrong', () => {
    const server = path.join(__dirname, '..', '..', 'lib', 'api', 'server.js');
    let output = '';
    let status: number | null = 0;
    try {
      execFileSync(process.execPath, [server], {
        env: { PATH: process.env.PATH, INVENTORY_API_TOKEN: CLIENT },
        encoding: 'utf8',
        stdio: 'pipe',
        timeout: 20_000,
      });
    } catch (err) {
      const e = err as { status: number | null; stderr: string };
      status = e.status;
      output = e.stderr;
    }
    expect(status).toBe(78);
    expect(output.trim()).toBe(
      'Stockhold cannot start: INVENTORY_ADMIN_TOKEN is not set: set both INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN, or neither (development tokens)',
    );
  });
});
