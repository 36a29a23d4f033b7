import { migrate } from '../../src/stock/database';
import { TEST_DATABASE_URL } from './env';

/** Creates and migrates the test database once per run. */
export default async function globalSetup(): Promise<void> {
  await migrate(TEST_DATABASE_URL);
}
