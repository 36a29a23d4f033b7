/**
 * Imported first by a test file that runs a suite against the run's Redis Cluster instead of its
 * single Redis (test/cluster/*.test.ts): helpers read it through ./env.ts. jest gives each test
 * file its own process.env, so this never leaks into other files.
 */
process.env.STOCKHOLD_TEST_REDIS = 'cluster';
