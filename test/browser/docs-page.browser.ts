/**
 * /docs as a person uses it, in headless Chromium driven by playwright-core: Swagger UI renders
 * every operation of /openapi.json, a call without a token is refused, Authorize takes the admin
 * token, and "Try it out" + Execute create a SKU, read it back and read /readyz from the running
 * service. Every request the page makes stays on the service's origin, and the page's
 * Content-Security-Policy (no inline script) refuses nothing. Screenshots go to .data/docs-*.png.
 *
 *   npm run test:browser
 *
 * Not part of `npm test` (see ops-page.browser.ts). Real parts: the app over the run's Redis and
 * PostgreSQL, a Temporal dev server, a worker.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../src/paths';
import { uniqueSku } from '../helpers/env';
import { ADMIN_TOKEN, startStack, type Stack } from '../helpers/stack';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium';

const SHOTS = path.join(PROJECT_ROOT, '.data');

let stack: Stack;
let browser: Browser;
let page: Page;
/** What the page asked for, and what went wrong in it (console errors, CSP refusals, failed requests). */
const requested: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('request', (req) => requested.push(req.url()));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  page.on('console', (message) => {
    // Answers of 4xx are logged as errors too: they are checked below, by what was asked.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      problems.push(`console: ${message.text()}`);
  });
  page.on('response', (res) => {
    // The call without a token is refused (401) on purpose.
    if (res.status() >= 400 && res.status() !== 401)
      problems.push(`${res.status()} for ${res.request().method()} ${res.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** The operation's block in Swagger UI: `GET /v1/skus/{sku}`. */
const operation = (method: string, route: string): Locator =>
  page.locator(`.opblock.opblock-${method.toLowerCase()}`, {
    has: page.locator(`.opblock-summary-path[data-path="${route}"]`),
  });

/** Opens an operation, presses "Try it out", fills its fields, presses Execute; answers the status and body shown. */
async function tryItOut(
  method: string,
  route: string,
  fill: (block: Locator) => Promise<void> = async () => undefined,
): Promise<{ status: number; body: string }> {
  const block = operation(method, route);
  if (!(await block.locator('.opblock-body').isVisible())) await block.locator('.opblock-summary').first().click();
  const tryOut = block.locator('button.try-out__btn');
  if ((await tryOut.innerText()).trim() === 'Try it out') await tryOut.click();
  await fill(block);
  // A previous answer's table goes away when Execute is pressed again ("Clear" is the other way).
  const clear = block.locator('button.btn-clear');
  if (await clear.isVisible()) await clear.click();
  await block.locator('button.execute').click();
  const live = block.locator('.live-responses-table .response');
  await live.waitFor({ timeout: 15_000 });
  const status = Number((await live.locator('.response-col_status').innerText()).trim());
  const body = await live
    .locator('.response-col_description .microlight, .response-col_description pre')
    .first()
    .innerText();
  return { status, body };
}

describe('/docs, as a developer uses it', () => {
  it('renders every operation of /openapi.json with Swagger UI, from this origin only', async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    await page.goto(`${stack.url}/docs`);
    await page
      .locator('.opblock')
      .nth(operations - 1)
      .waitFor({ timeout: 30_000 });
    expect(await page.locator('.opblock').count()).toBe(operations);
    expect(await page.locator('.info .title').innerText()).toMatch(/^Stockhold/);
    await page.screenshot({ path: path.join(SHOTS, 'docs-operations.png') });
  });

  it('refuses a call without a token, then Authorize takes the admin token', async () => {
    const sku = uniqueSku('DOCS');
    const refused = await tryItOut('GET', '/v1/skus/{sku}', (block) =>
      block.locator('tr[data-param-name="sku"] input').fill(sku),
    );
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error.code).toBe('UNAUTHENTICATED');

    await page.locator('.scheme-container button.authorize').click();
    const dialog = page.locator('.modal-ux');
    await dialog.waitFor();
    const admin = dialog.locator('.auth-container', { hasText: 'adminToken' });
    await admin.locator('input').fill(ADMIN_TOKEN);
    await page.screenshot({ path: path.join(SHOTS, 'docs-authorize.png') });
    await admin.locator('button.authorize').click();
    await admin.locator('button', { hasText: 'Logout' }).waitFor();
    await dialog.locator('button.btn-done, button.close-modal').first().click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('creates a SKU, reads it back and reads /readyz with "Try it out", from the running service', async () => {
    const sku = uniqueSku('DOCS');
    const created = await tryItOut('POST', '/v1/skus', (block) =>
      block.locator('textarea.body-param__text').fill(JSON.stringify({ sku, total: 7, name: 'Tried in /docs' })),
    );
    expect(created.status).toBe(201);
    expect(JSON.parse(created.body)).toMatchObject({ sku, total: 7, available: 7, name: 'Tried in /docs' });

    // The admin token, also where the client token is asked for (the admin token works wherever it does).
    const read = await tryItOut('GET', '/v1/skus/{sku}', (block) =>
      block.locator('tr[data-param-name="sku"] input').fill(sku),
    );
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body)).toMatchObject({ sku, total: 7, reserved: 0, available: 7 });
    // The service agrees: the SKU is there.
    expect((await stack.admin('GET', `/v1/skus/${sku}`)).body).toMatchObject({ sku, total: 7 });
    await operation('GET', '/v1/skus/{sku}').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'docs-try-it-out.png') });

    const ready = await tryItOut('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ok', checks: { redis: 'ok', postgres: 'ok', temporal: 'ok' } });
  });

  it('asked nothing of another origin, and its Content-Security-Policy refused nothing', () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => !url.startsWith(`${stack.url}/`))).toEqual([]);
    expect(problems).toEqual([]);
  });
});
