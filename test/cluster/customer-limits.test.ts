/** test/stock/customer-limits.test.ts against the run's 3-master Redis Cluster (carts span slots there). */
import '../helpers/cluster-mode';
import '../stock/customer-limits.test';
