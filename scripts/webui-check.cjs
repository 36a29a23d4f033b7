/*
 * A person's check of the Temporal Web UI, in headless Chromium: open the workflow list, open the
 * raw query box, type `ReservationStatus="HELD" AND InventorySkus="<SKU>"`, check that the
 * reservation's workflow is listed, then open it and its search attributes. Screenshots of each
 * step go to .data/webui-*.png. Not part of
 * `npm test`: it needs a browser and a running service.
 *
 * Once per machine: Debian's Chromium (playwright-core is a devDependency and never downloads a
 * browser of its own):
 *   apt-get install -y chromium
 *
 * Then, with the service running (`npm start`, default ports and development tokens), in another
 * shell, create the SKU and a reservation that stays HELD (its TTL is 600 s: run the check before):
 *   A='Authorization: Bearer dev-admin-token'; C='Authorization: Bearer dev-api-token'; J='Content-Type: application/json'
 *   curl -s -XPOST localhost:3000/v1/skus -H "$A" -H "$J" -d '{"sku":"PS5","total":5,"name":"PlayStation 5"}'
 *   curl -s -XPOST localhost:3000/v1/reservations -H "$C" -H "$J" -d '{"reservationId":"order-3","items":[{"sku":"PS5","quantity":1}]}'
 *   node scripts/webui-check.cjs PS5 order-3
 * (409 SKU_EXISTS from the first curl is fine: the SKU is there. The second must answer 201 or 200
 * with "status":"HELD".)
 *
 * Where the Web UI is: TEMPORAL_UI_URL if set; else the port of TEMPORAL_ADDRESS + 1000, where
 * `npm start`'s dev server puts it; else http://127.0.0.1:8233. Run it with the same environment as
 * the service. Exits 0 when the reservation is listed, 1 otherwise, saying why.
 */

const { mkdirSync, mkdtempSync, rmSync, existsSync } = require('node:fs');

const os = require('node:os');

const path = require('node:path');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(__dirname, '..', '.data');
// Elements of Temporal Web UI 2.54 (the CLI 1.9.1's): the "</>" button that shows the raw query
// box, and that box. Test ids, because the button has no text or accessible name.
const RAW_QUERY_TOGGLE = '[data-testid="toggle-manual-query"]';
const RAW_QUERY_INPUT = '[data-testid="workflow-manual-search-input"]';
// On a workflow's page: its id as the heading, and the tab of its search attributes.
const WORKFLOW_HEADING = '[data-testid="workflow-id-heading"]';
const SEARCH_ATTRIBUTES_TAB = '[data-testid="search-attributes-tab"]';

/** The Web UI's base URL, the way `npm start` chooses it. */
function webUiUrl(env) {
  if (env.TEMPORAL_UI_URL) return env.TEMPORAL_UI_URL.replace(/\/+$/, '');
  if (env.TEMPORAL_ADDRESS) {
    const [host, port] = env.TEMPORAL_ADDRESS.split(':');
    if (port && /^\d+$/.test(port)) return `http://${host || '127.0.0.1'}:${Number(port) + 1000}`;
  }
  return 'http://127.0.0.1:8233';
}

class CheckFailed extends Error {}

async function main() {
  const [sku = 'PS5', reservationId = 'order-3'] = process.argv.slice(2);
  const workflowId = `reservation-${reservationId}`;
  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const listUrl = `${webUiUrl(process.env)}/namespaces/${namespace}/workflows`;
  const query = `ReservationStatus="HELD" AND InventorySkus="${sku}"`;

  if (!existsSync(CHROMIUM))
    throw new CheckFailed(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  // Loaded here, so that a missing package gets a message of its own.
  const { chromium } = (() => {
    try {
      return require('playwright-core');
    } catch {
      throw new CheckFailed('playwright-core is not installed: run `npm install` (it is a devDependency)');
    }
  })();

  mkdirSync(SHOTS, { recursive: true });
  const shot = (name) => path.join(SHOTS, `webui-${name}.png`);
  // A fresh profile each run: no remembered raw-query toggle, no cookies, nothing left behind.
  const profile = mkdtempSync(path.join(os.tmpdir(), 'webui-check-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    console.log(`Web UI: ${listUrl}`);
    try {
      await page.goto(listUrl, { waitUntil: 'networkidle', timeout: 30_000 });
    } catch (err) {
      throw new CheckFailed(
        `no Web UI answers at ${listUrl} (${err.message.split('\n')[0]}). Is the service running? Set TEMPORAL_UI_URL or TEMPORAL_ADDRESS as for the service.`,
      );
    }
    await page.screenshot({ path: shot('list') });

    // Open the raw query box as a person would, with its "</>" button.
    const input = page.locator(RAW_QUERY_INPUT);
    if (!(await input.isVisible())) {
      const toggle = page.locator(RAW_QUERY_TOGGLE);
      try {
        await toggle.waitFor({ state: 'visible', timeout: 15_000 });
      } catch {
        throw new CheckFailed(
          `the workflow list has no raw-query button (${RAW_QUERY_TOGGLE}); this check knows Web UI 2.54. See ${shot('list')}.`,
        );
      }
      await toggle.click();
    }
    try {
      await input.waitFor({ state: 'visible', timeout: 10_000 });
    } catch {
      await page.screenshot({ path: shot('editor') });
      throw new CheckFailed(
        `the raw-query button did not show the query box (${RAW_QUERY_INPUT}). See ${shot('editor')}.`,
      );
    }
    await page.screenshot({ path: shot('editor') });
    await input.fill(query);
    await input.press('Enter');

    // Visibility is eventually consistent: give a fresh reservation a few seconds to be listed.
    const row = page.locator(`a:text-is("${workflowId}")`);
    const listed = await row
      .first()
      .waitFor({ state: 'visible', timeout: 15_000 })
      .then(() => true)
      .catch(() => false);
    await page.screenshot({ path: shot('filtered') });
    const applied = new URL(page.url()).searchParams.get('query');
    console.log(`query in the page's URL: ${applied}`);
    if (applied !== query)
      throw new CheckFailed(
        `the Web UI did not apply the query (its URL has ${JSON.stringify(applied)}). See ${shot('filtered')}.`,
      );
    if (!listed) {
      throw new CheckFailed(
        `${workflowId} is not listed under ${query}. Is it HELD (GET /v1/reservations/${reservationId}), with SKU ${sku}? See ${shot('filtered')}.`,
      );
    }
    console.log(`${workflowId} is listed under ${query}`);

    // The reservation's own page: its history, then its search attributes as the workflow set them.
    await row.first().click();
    try {
      await page
        .locator(WORKFLOW_HEADING)
        .filter({ hasText: workflowId })
        .waitFor({ state: 'visible', timeout: 15_000 });
    } catch {
      await page.screenshot({ path: shot('detail') });
      throw new CheckFailed(
        `the page of ${workflowId} did not show its heading (${WORKFLOW_HEADING}). See ${shot('detail')}.`,
      );
    }
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: shot('detail') });
    await page.locator(SEARCH_ATTRIBUTES_TAB).click();
    const status = page.getByText('ReservationStatus').first();
    const shown = await status
      .waitFor({ state: 'visible', timeout: 10_000 })
      .then(() => true)
      .catch(() => false);
    await page.screenshot({ path: shot('search-attributes') });
    if (!shown)
      throw new CheckFailed(
        `the search attributes tab of ${workflowId} does not show ReservationStatus. See ${shot('search-attributes')}.`,
      );
    console.log(`screenshots: ${['list', 'editor', 'filtered', 'detail', 'search-attributes'].map(shot).join(' ')}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof CheckFailed ? `webui-check: ${err.message}` : err);
  process.exit(1);
});
