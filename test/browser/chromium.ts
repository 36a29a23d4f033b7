/**
 * The browser of the browser tests: Debian's Chromium (`apt-get install -y chromium`, or
 * CHROMIUM_PATH), headless, quiet: no sandbox (root in a container), no GPU, and none of the
 * background calls home (updates, sync, component downloads). playwright-core never downloads one.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
