// Summarizes a V8 sampling heap profile (.heapprofile, e.g. serve-txkv.ts's TAIL_HEAP_PROFILE):
// the bytes allocated per function, attributed to the nearest txkv function on the stack
// (a builtin or npm frame allocates for its caller), largest first; with --commits N also
// per commit. Sampled with every collected object included, so this is allocation, not
// retention.
//   node dist/bench/heap-summary.js F [--commits N] [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { commits: { type: 'string' }, top: { type: 'string', default: '25' } },
});
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { head: Node };
const commits = opts.commits ? Number(opts.commits) : 0;

const own = (url: string): boolean => url.includes('/src/') && !url.includes('node_modules');
const name = (n: Node): string => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const byOwn = new Map<string, number>();
const bySelf = new Map<string, number>();
let total = 0;
function walk(n: Node, owner: string): void {
  const here = own(n.callFrame.url) ? name(n) : owner;
  if (n.selfSize > 0) {
    total += n.selfSize;
    byOwn.set(here, (byOwn.get(here) ?? 0) + n.selfSize);
    const s = name(n);
    bySelf.set(s, (bySelf.get(s) ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, here);
}
walk(profile.head, '(no txkv frame)');
const fmt = (b: number): string => (commits ? `${(b / commits).toFixed(0).padStart(6)} B/commit` : `${(b / 1e6).toFixed(1).padStart(7)} MB`);
console.log(`total ${(total / 1e6).toFixed(1)} MB${commits ? `, ${(total / commits / 1000).toFixed(1)} KB per commit` : ''}`);
for (const [title, m] of [['by nearest txkv function', byOwn], ['by allocating function', bySelf]] as const) {
  console.log(`-- ${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) console.log(`${fmt(v)} ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
}
