/** test/integration/customer-limits.test.ts against the run's 3-master Redis Cluster. */
import '../helpers/cluster-mode';
import '../integration/customer-limits.test';
