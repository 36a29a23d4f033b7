/** test/stock/admitted.test.ts against the run's 3-master Redis Cluster. */
import '../helpers/cluster-mode';
import '../stock/admitted.test';
