/** test/integration/api.test.ts against the run's 3-master Redis Cluster (carts span slots there). */
import '../helpers/cluster-mode';
import '../integration/api.test';
