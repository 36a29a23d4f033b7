/** `npm run migrate`: creates the database when missing and applies pending migrations. */
import { loadConfig } from '../config';
import { migrate } from '../stock/database';

migrate(loadConfig().databaseUrl, (msg) => console.log(msg)).then(
  () => console.log('migrations applied'),
  (err: unknown) => {
    console.error('migration failed:', err);
    process.exit(1);
  },
);
