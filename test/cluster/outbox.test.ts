/** test/stock/outbox.test.ts against the run's 3-master Redis Cluster (carts span slots there). */
import '../helpers/cluster-mode';
import '../stock/outbox.test';
