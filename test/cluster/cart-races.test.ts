/** test/stock/cart-races.test.ts against the run's 3-master Redis Cluster (the two SKUs on different masters, a cart held slot group by slot group). */
import '../helpers/cluster-mode';
import '../stock/cart-races.test';
