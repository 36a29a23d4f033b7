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

describe('worker settings from the environment', () => {
  it("defaults to the SDK's slots and threads, with 200 activity and local-activity slots", () => {
    expect(loadConfig({}).workerTuning).toEqual({
      maxConcurrentWorkflowTaskExecutions: 40,
      maxConcurrentActivityTaskExecutions: 200,
      maxConcurrentLocalActivityExecutions: 200,
      reuseV8Context: true,
      workflowThreadPoolSize: 1,
    });
  });

  it('takes each WORKER_* variable, two threads by default without a shared V8 context', () => {
    expect(
      loadConfig({
        WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '10',
        WORKER_MAX_CONCURRENT_ACTIVITIES: '20',
        WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES: '30',
        WORKER_REUSE_V8_CONTEXT: 'false',
      }).workerTuning,
    ).toEqual({
      maxConcurrentWorkflowTaskExecutions: 10,
      maxConcurrentActivityTaskExecutions: 20,
      maxConcurrentLocalActivityExecutions: 30,
      reuseV8Context: false,
      workflowThreadPoolSize: 2,
    });
    expect(loadConfig({ WORKER_THREAD_POOL_SIZE: '4' }).workerTuning.workflowThreadPoolSize).toBe(4);
  });

  it.each([
    ['WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', '1', /WORKER_MAX_CONCURRENT_WORKFLOW_TASKS must be an integer in 2\.\./],
    ['WORKER_THREAD_POOL_SIZE', '0', /WORKER_THREAD_POOL_SIZE must be an integer in 1\.\./],
    ['WORKER_REUSE_V8_CONTEXT', 'maybe', /WORKER_REUSE_V8_CONTEXT must be true or false/],
  ])('refuses %s=%s, naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });
});
