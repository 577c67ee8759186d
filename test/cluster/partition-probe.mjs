// Runs inside a machine's network namespace (test/cluster/partition.test.ts): a client
// of the txkv node on that machine, which stays reachable from here while the machine is
// cut off. Prints one JSON line per outcome (wall-clock ms; the test compares them with
// its own acknowledgements on the same host):
//   {op:'grv', t0, t, ok, v|code}      a read version asked of the node
//   {op:'commit', key, t0, t, ok, v|code}
//   {op:'status', t, role, leader}
// Usage: node partition-probe.mjs WS_URL KEY_PREFIX. Runs until killed.
import { connect } from '../../dist/src/index.js';

const [url, prefix] = process.argv.slice(2);
const httpUrl = url.replace(/^ws/, 'http');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (p, ms) => {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('probe timeout'), { code: 'PROBE_TIMEOUT' })), ms)))]).finally(() => clearTimeout(timer));
};

const db = await connect({ endpoints: [url], connectionPoolSize: 1, transactionTimeoutMs: 10_000 });
out({ op: 'ready', t: Date.now() });

async function grvLoop() {
  for (;;) {
    const t0 = Date.now();
    try {
      const v = await within(db.createTransaction().getReadVersion(), 3000);
      out({ op: 'grv', t0, t: Date.now(), ok: true, v: String(v) });
    } catch (err) {
      out({ op: 'grv', t0, t: Date.now(), ok: false, code: err.code ?? String(err) });
    }
    await sleep(50);
  }
}

async function commitLoop() {
  for (let seq = 0; ; seq++) {
    const key = `${prefix}${String(seq).padStart(6, '0')}`;
    const t0 = Date.now();
    try {
      const tx = db.createTransaction();
      tx.set(key, `p${seq}`);
      // the commit itself may wait for the log (bounded by the node); the probe waits longer
      await within(tx.commit(), 8000);
      out({ op: 'commit', key, t0, t: Date.now(), ok: true, v: String(tx.getCommittedVersion()) });
    } catch (err) {
      out({ op: 'commit', key, t0, t: Date.now(), ok: false, code: err.code ?? String(err) });
    }
    await sleep(100);
  }
}

async function statusLoop() {
  for (;;) {
    try {
      const r = await fetch(`${httpUrl}/v1/status`, { signal: AbortSignal.timeout(1000) });
      const s = await r.json();
      out({ op: 'status', t: Date.now(), role: s.cluster?.role ?? null, leader: s.cluster?.leader ?? null });
    } catch (err) {
      out({ op: 'status', t: Date.now(), role: null, err: String(err) });
    }
    await sleep(250);
  }
}

void grvLoop();
void commitLoop();
void statusLoop();
