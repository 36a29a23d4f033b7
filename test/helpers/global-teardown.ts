import type { TestStores } from './global-setup';

/** Removes the run's own stores (see global-setup.ts); jest runs it after every run, passed or failed. */
export default async function globalTeardown(): Promise<void> {
  const stores: TestStores | undefined = globalThis.__stockholdTestStores;
  globalThis.__stockholdTestStores = undefined;
  await stores?.cleanUp();
}
