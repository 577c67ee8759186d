// The cluster tests' harness: 3 etcd members and 3 `txkv serve --etcd ...` nodes on loopback.
// The code lives in bench/cluster.ts, shared with bench/compare.ts (system `txkv-cluster`).
export { ETCD_BIN, HAVE_ETCD, LoopbackCluster as TestCluster, sleep } from '../../bench/cluster.js';
export type { ClusterStatus, EtcdMember, Machine, Proc, TxkvNode } from '../../bench/cluster.js';
