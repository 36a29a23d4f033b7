/*
 * A person's check of the Temporal Web UI, in headless Chromium: open the workflow list, type
 * `ReservationStatus="HELD" AND InventorySkus="<SKU>"` in the raw query box, and screenshot the
 * filtered list and one reservation. Not part of the test suite (it needs a browser):
 *   apt-get install chromium && npm install --no-save playwright-core
 *   node scripts/webui-check.cjs PS5 order-ui-1     # with `npm start` running and that reservation HELD
 * Screenshots go to ./.data/webui-*.png.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain CommonJS script, run without a build
const { chromium } = require('playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const [sku = 'PS5', reservationId = 'order-ui-1'] = process.argv.slice(2);
  const query = `ReservationStatus="HELD" AND InventorySkus="${sku}"`;
  await page.goto('http://127.0.0.1:8233/namespaces/default/workflows', { waitUntil: 'networkidle' });
  await page.screenshot({ path: '.data/webui-list.png' });
  // Type the query in the Web UI's filter box as a person would.
  // The "</>" button opens the raw query editor of the filter bar.
  await page.locator('button:has-text("</>"), button[aria-label*="query" i], button[title*="query" i]').last().click().catch(async () => {
    await page.mouse.click(1345, 219);
  });
  await page.waitForTimeout(800);
  await page.screenshot({ path: '.data/webui-editor.png' });
  const input = page.locator('textarea:visible, input#manual-search:visible, [contenteditable="true"]:visible, input[data-testid*="search" i]:visible').first();
  await input.waitFor({ timeout: 15000 });
  await input.click();
  await input.fill(query);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(2500);
  await page.screenshot({ path: '.data/webui-filtered.png' });
  const text = await page.locator('body').innerText();
  console.log(`reservation-${reservationId} listed under ${query}:`, text.includes(`reservation-${reservationId}`));
  console.log('url:', page.url());
  await page.locator(`a:has-text("reservation-${reservationId}")`).first().click();
  await page.waitForTimeout(2500);
  await page.screenshot({ path: '.data/webui-detail.png' });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
