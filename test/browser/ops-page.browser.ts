/**
 * The ops page as a person uses it, in headless Chromium driven by playwright-core: open /ops,
 * sign in with the admin token (a wrong one first) and see "updated" move, pick a SKU, watch a
 * flash sale sell it out (units left falling to 0, holds per second, the state turning "sold out",
 * the list saying what the live panel says, the holds with their countdowns, never a "?"), then
 * follow a hold's link to its workflow in the Temporal Web UI. Screenshots go to .data/ops-*.png.
 *
 *   npm run test:browser
 *
 * Not part of `npm test`: it needs Debian's Chromium (`apt-get install -y chromium`, or
 * CHROMIUM_PATH); playwright-core never downloads a browser (test/browser/chromium.ts). Real parts:
 * the app over the run's Redis and PostgreSQL, a Temporal dev server with its Web UI, a worker.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../src/paths';
import { keys } from '../../src/stock';
import { uniqueSku } from '../helpers/env';
import { ADMIN_TOKEN, CLIENT_TOKEN, startStack, type Stack } from '../helpers/stack';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium';
const SHOTS = path.join(PROJECT_ROOT, '.data');
const UNITS = 20;
const BUYERS = 400;

let stack: Stack;
let browser: Browser;
let page: Page;
/** What went wrong in the page: errors it logged or threw, Content-Security-Policy refusals. */
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStack({ ui: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (message) => {
    // Answers of 4xx are logged as errors too: they are checked below, by what was asked.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      problems.push(`console: ${message.text()}`);
  });
  page.on('response', (res) => {
    // The wrong token's 401s are the test's own doing.
    if (res.status() >= 400 && res.status() !== 401)
      problems.push(`${res.status()} for ${res.request().method()} ${res.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
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
    await page.locator('#status', { hasText: /^signed in · updated \d/ }).waitFor();
    // "updated" moves with every refresh, not only at sign-in.
    const first = await text('#status');
    await page
      .locator('#status', { hasText: /^signed in · updated / })
      .filter({ hasNotText: first })
      .waitFor({ timeout: 5_000 });
    await page.locator('#list-age', { hasText: /^read \d+(\.\d)? s ago$/ }).waitFor();
  });

  it('watches a flash sale sell a SKU out: units left to 0, holds per second, sold out, the holds with countdowns', async () => {
    const sku = uniqueSku('OPS');
    expect(
      (await stack.admin('POST', '/v1/skus', { body: { sku, total: UNITS, name: 'Limited sneaker drop' } })).status,
    ).toBe(201);
    expect((await stack.admin('PATCH', `/v1/skus/${sku}`, { body: { lowStockThreshold: 5 } })).status).toBe(200);

    // The list refreshes every 3 s: the new SKU appears, in stock.
    const row = page.locator(`tr.sku[data-sku="${sku}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('.state').getAttribute('data-state')).toBe('ok');
    await row.click();
    await page.locator('#units-left', { hasText: new RegExp(`^${UNITS}$`) }).waitFor();
    await page.locator('#detail-age', { hasText: /^read \d+(\.\d)? s ago$/ }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'ops-before-sale.png'), fullPage: true });

    // The storm, while the page polls: the highest holds/s it showed, and at each look, in one
    // go, what the list and the live panel say of the SKU and every hold's "expires in".
    let highestRate = 0;
    let watching = true;
    let recordingShot = false;
    const looks: { listed: string; live: string; expiries: string[] }[] = [];
    const watcher = (async () => {
      while (watching) {
        highestRate = Math.max(highestRate, Number(await text('#holds-rate')) || 0);
        looks.push(
          await page.locator('main').evaluate(
            (main, picked) => ({
              listed: main.querySelector(`tr.sku[data-sku="${picked}"] td.available`)?.textContent ?? '',
              live: main.querySelector('#units-left')?.textContent ?? '',
              expiries: [...main.querySelectorAll('#holds td.countdown')].map((td) => td.textContent ?? ''),
            }),
            sku,
          ),
        );
        // A hold Redis took and PostgreSQL has not recorded yet, if the storm shows one.
        if (!recordingShot && looks.at(-1)!.expiries.some((e) => e.startsWith('not recorded yet'))) {
          recordingShot = true;
          await page.screenshot({ path: path.join(SHOTS, 'ops-during-sale.png'), fullPage: true });
        }
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
    await page
      .locator('#holds tr.hold')
      .nth(UNITS - 1)
      .waitFor({ timeout: 10_000 });
    expect(await page.locator('#holds tr.hold').count()).toBe(UNITS);
    expect(await page.getAttribute('#picked-state', 'data-state')).toBe('soldout');
    // Countdowns of 10-minute holds once PostgreSQL has them all, and a refresh of the list after
    // that (the list is read every 3 s, the SKU every 0.5 s), still watched.
    await page.locator('#holds td.countdown.pending').first().waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator('#list-age', { hasText: /^read [1-9]/ }).waitFor({ timeout: 10_000 });
    await page.locator('#list-age', { hasText: /^read 0\.\d s ago$/ }).waitFor({ timeout: 10_000 });
    watching = false;
    await watcher;
    expect(highestRate).toBeGreaterThan(0);
    // The list says what the live panel says, at every look: one reading of the SKU.
    expect(looks.length).toBeGreaterThan(5);
    expect(looks.filter((look) => look.listed !== look.live)).toEqual([]);
    expect(await page.locator(`tr.sku[data-sku="${sku}"] .state`).getAttribute('data-state')).toBe('soldout');
    // A hold's "expires in" is a countdown, or says its deadline is not recorded yet: never "?".
    const expiries = looks.flatMap((look) => look.expiries);
    expect(expiries.length).toBeGreaterThan(0);
    expect(expiries.filter((e) => !/^(\d+:[0-5]\d|not recorded yet( \(\d+ s\))?)$/.test(e))).toEqual([]);
    const countdowns = await page.locator('#holds td.countdown').allInnerTexts();
    expect(countdowns).toHaveLength(UNITS);
    for (const c of countdowns) expect(c).toMatch(/^(9:[0-5]\d|10:00)$/);
    // The refusals of the storm, seen through this API process's metrics.
    expect(Number(await text('#refusals-rate'))).toBeGreaterThanOrEqual(0);
    await page.screenshot({ path: path.join(SHOTS, 'ops-sold-out.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it("follows a hold's link to its reservation workflow in the Temporal Web UI", async () => {
    const link = page.locator('#holds a.reservation-link').first();
    const reservationId = await link.innerText();
    expect(await link.getAttribute('href')).toBe(
      `${stack.uiUrl}/namespaces/default/workflows/${encodeURIComponent(`reservation-${reservationId}`)}`,
    );
    const [ui] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
    await ui.waitForLoadState('domcontentloaded');
    const heading = ui.locator('[data-testid="workflow-id-heading"]');
    await heading.waitFor({ timeout: 60_000 });
    expect(await heading.innerText()).toContain(`reservation-${reservationId}`);
    await ui.screenshot({ path: path.join(SHOTS, 'ops-workflow.png') });
  });

  it('says a hold PostgreSQL has not recorded yet is so, and for how long, where a countdown would be', async () => {
    // The moment between Redis taking the units and PostgreSQL recording the reservation, made to
    // last: a hold in Redis alone (the reconciler would give it back; this stack runs none).
    const sku = uniqueSku('OPS');
    expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: 3, name: 'Not recorded yet' } })).status).toBe(
      201,
    );
    await page.locator(`tr.sku[data-sku="${sku}"]`).click({ timeout: 10_000 });
    await stack.stock.redis.hset(keys.holds(sku), `${sku}-unrecorded`, 1);
    try {
      const expiry = page.locator('#holds td.countdown.pending');
      await expiry.filter({ hasText: /^not recorded yet$/ }).waitFor({ timeout: 5_000 });
      await expiry.filter({ hasText: /^not recorded yet \([2-9] s\)$/ }).waitFor({ timeout: 5_000 });
      expect(await expiry.getAttribute('title')).toMatch(/PostgreSQL has not recorded the reservation/);
      await page.screenshot({ path: path.join(SHOTS, 'ops-not-recorded.png'), fullPage: true });
    } finally {
      await stack.stock.redis.hdel(keys.holds(sku), `${sku}-unrecorded`);
    }
    await page.locator('#hold-count', { hasText: '(0)' }).waitFor({ timeout: 5_000 });
    expect(problems).toEqual([]);
  });
  it("shows a SKU's stock per location, each hold's allocation and each movement's location", async () => {
    const at = [uniqueSku('OPSWH'), uniqueSku('OPSWH')];
    for (const locationId of at)
      expect((await stack.admin('POST', '/v1/locations', { body: { locationId, name: locationId } })).status).toBe(201);
    const sku = uniqueSku('OPSLOC');
    const created = await stack.admin('POST', '/v1/skus', {
      body: { sku, locations: { [at[0]!]: 2, [at[1]!]: 3 }, name: 'Two warehouses' },
    });
    expect(created.status).toBe(201);
    const channel = uniqueSku('opsch');
    expect(
      (await stack.admin('PUT', `/v1/channels/${channel}`, { body: { locations: at, strategy: 'priority' } })).status,
    ).toBe(200);
    // 4 units: no location has them all, so the line is split, the first location filled first.
    const held = await stack.api('POST', '/v1/reservations', { body: { channel, items: [{ sku, quantity: 4 }] } });
    expect(held.status).toBe(201);
    await page.locator(`tr.sku[data-sku="${sku}"]`).click({ timeout: 10_000 });
    await page.locator('#levels tr.level').nth(1).waitFor({ timeout: 10_000 });
    const levels = await page
      .locator('#levels tr.level')
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    // By locationId, as the stock view lists them.
    expect(levels).toEqual(
      [
        [at[0], '2', '2', '0'],
        [at[1], '3', '2', '1'],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    await page.locator('#holds td.where', { hasText: `${at[0]} 2, ${at[1]} 2` }).waitFor({ timeout: 5_000 });
    const kinds = await page
      .locator('#movements tbody tr')
      .evaluateAll((rows) => rows.map((r) => [r.children[1]?.textContent, r.children[2]?.textContent]));
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['initial', at[0]],
        ['initial', at[1]],
      ]),
    );
    await page.screenshot({ path: path.join(SHOTS, 'ops-locations.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
