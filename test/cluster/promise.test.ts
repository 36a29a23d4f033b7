/** test/stock/promise.test.ts against the run's 3-master Redis Cluster (a refused cart gives back every slot group it took). */
import '../helpers/cluster-mode';
import '../stock/promise.test';
