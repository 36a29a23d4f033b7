/**
 * The ops page as a person uses it, in headless Chromium driven by playwright-core: open /ops,
 * sign in with the admin token (a wrong one first), pick a SKU, watch a flash sale sell it out
 * (units left falling to 0, holds per second, the state turning "sold out", the holds with their
 * countdowns), then follow a hold's link to its workflow in the Temporal Web UI. Screenshots go
 * to .data/ops-*.png.
 *
 *   npm run test:browser
 *
 * Not part of `npm test`: it needs Debian's Chromium (`apt-get install -y chromium`, or
 * CHROMIUM_PATH); playwright-core never downloads a browser. Real parts: the app over the run's
 * Redis and PostgreSQL, a Temporal dev server with its Web UI, a worker.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../src/paths';
import { uniqueSku } from '../helpers/env';
import { ADMIN_TOKEN, CLIENT_TOKEN, startStack, type Stack } from '../helpers/stack';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(PROJECT_ROOT, '.data');
const UNITS = 20;
const BUYERS = 400;

let stack: Stack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStack({ ui: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const text = (selector: string) => page.locator(selector).innerText();
// Waits are locators, not page functions: the page's Content-Security-Policy forbids eval.

describe('the ops page, as an operator uses it', () => {
  it('refuses a wrong token and says so, then signs in with the admin token', async () => {
    await page.goto(`${stack.url}/ops`);
    await page.fill('#token', 'not-the-admin-token-at-all');
    await page.click('#signin-button');
    await page.locator('#status', { hasText: 'refused' }).waitFor();
    expect(await text('#status')).toMatch(/the token was refused \((401|403)\)/);

    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin-button');
    await page.locator('#status', { hasText: /^signed in/ }).waitFor();
  });

  it('watches a flash sale sell a SKU out: units left to 0, holds per second, sold out, the holds with countdowns', async () => {
    const sku = uniqueSku('OPS');
    expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: UNITS, name: 'Limited sneaker drop' } })).status).toBe(201);
    expect((await stack.admin('PATCH', `/v1/skus/${sku}`, { body: { lowStockThreshold: 5 } })).status).toBe(200);

    // The list refreshes every 3 s: the new SKU appears, in stock.
    const row = page.locator(`tr.sku[data-sku="${sku}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('.state').getAttribute('data-state')).toBe('ok');
    await row.click();
    await page.locator('#units-left', { hasText: new RegExp(`^${UNITS}$`) }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'ops-before-sale.png'), fullPage: true });

    // The storm, while the page polls; the highest holds/s it showed.
    let highestRate = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        highestRate = Math.max(highestRate, Number(await text('#holds-rate')) || 0);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: BUYERS }, (_, i) =>
        fetch(`${stack.url}/v1/reservations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ reservationId: `${sku}-b${i}`, items: [{ sku, quantity: 1 }] }),
        }).then((res) => res.status),
      ),
    );
    expect(answers.filter((s) => s === 201)).toHaveLength(UNITS);

    await page.locator('#units-left', { hasText: /^0$/ }).waitFor({ timeout: 10_000 });
    await page.locator('#holds tr.hold').nth(UNITS - 1).waitFor({ timeout: 10_000 });
    expect(await page.locator('#holds tr.hold').count()).toBe(UNITS);
    watching = false;
    await watcher;
    expect(await page.getAttribute('#picked-state', 'data-state')).toBe('soldout');
    expect(highestRate).toBeGreaterThan(0);
    // In the list too, once it refreshes.
    await page.locator(`tr.sku[data-sku="${sku}"] .state[data-state="soldout"]`).waitFor({ timeout: 10_000 });
    // Countdowns of 10-minute holds: m:ss, just under 10 minutes, and ticking.
    const countdowns = await page.locator('#holds td.countdown').allInnerTexts();
    expect(countdowns).toHaveLength(UNITS);
    for (const c of countdowns) expect(c).toMatch(/^(9:[0-5]\d|10:00)$/);
    // The refusals of the storm, seen through this API process's metrics.
    expect(Number(await text('#refusals-rate'))).toBeGreaterThanOrEqual(0);
    await page.screenshot({ path: path.join(SHOTS, 'ops-sold-out.png'), fullPage: true });
  });

  it("follows a hold's link to its reservation workflow in the Temporal Web UI", async () => {
    const link = page.locator('#holds a.reservation-link').first();
    const reservationId = await link.innerText();
    expect(await link.getAttribute('href')).toBe(`${stack.uiUrl}/namespaces/default/workflows/${encodeURIComponent(`reservation-${reservationId}`)}`);
    const [ui] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
    await ui.waitForLoadState('domcontentloaded');
    const heading = ui.locator('[data-testid="workflow-id-heading"]');
    await heading.waitFor({ timeout: 60_000 });
    expect(await heading.innerText()).toContain(`reservation-${reservationId}`);
    await ui.screenshot({ path: path.join(SHOTS, 'ops-workflow.png') });
  });
});
