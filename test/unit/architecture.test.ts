// The layering of src/ (../shared/STYLE.md, "Imports point one way"), checked on the
// import statements themselves: no cycles, shard code never loads the network stack,
// and each outside library has its one owner.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : files(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Module specifiers imported by a file (static and dynamic). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) out.push(m[1]!);
  return out;
}

const rel = (f: string): string => path.relative(SRC, f).replace(/\\/g, '/');
const all = files(SRC);
const graph = new Map<string, string[]>();
for (const f of all) {
  graph.set(
    rel(f),
    importsOf(f)
      .filter((s) => s.startsWith('.'))
      .map((s) => rel(path.resolve(path.dirname(f), s.replace(/\.js$/, '.ts'))))
      .filter((s) => !s.startsWith('..') && !s.includes('generated/')),
  );
}
const externals = new Map(all.map((f) => [rel(f), importsOf(f).filter((s) => !s.startsWith('.'))]));

describe('architecture', () => {
  it('has no import cycles', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (n: string, trail: string[]): void => {
      if (state.get(n) === 'done') return;
      if (state.get(n) === 'visiting') {
        cycles.push([...trail.slice(trail.indexOf(n)), n].join(' -> '));
        return;
      }
      state.set(n, 'visiting');
      for (const m of graph.get(n) ?? []) visit(m, [...trail, n]);
      state.set(n, 'done');
    };
    for (const n of graph.keys()) visit(n, []);
    expect(cycles).toEqual([]);
  });

  it('shard code never loads the gateway, the coordinator or uWS', () => {
    for (const [f, deps] of graph) {
      if (!f.startsWith('shard/')) continue;
      for (const d of deps) expect(d, `${f} imports ${d}`).not.toMatch(/^(gateway|coordinator|server|cli|client)\//);
      expect(externals.get(f)!.some((e) => e.includes('uws')), `${f} imports uWS`).toBe(false);
    }
  });

  it('the browser entry (txkv/client) reaches no static node: import', () => {
    const seen = new Set<string>();
    const walk = (f: string): void => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const d of graph.get(f) ?? []) walk(d);
    };
    walk('client/index.ts');
    expect(seen.size).toBeGreaterThan(5);
    for (const f of seen) {
      const text = fs.readFileSync(path.join(SRC, f), 'utf8');
      expect(/^\s*import[^;(]*from\s+'node:/m.test(text), `${f} statically imports a node: module`).toBe(false);
    }
  });

  it.each([
    ['@trufflesuite/uws-js-unofficial', /^gateway\//],
    ['ws', /^client\/connection\.ts$/],
    ['@nxtedition/rocksdb', /^(shard\/storage\.ts|server\/open-database\.ts|coordinator\/recovery\.ts|coordinator\/coordinator\.ts|coordinator\/distribution\.ts|cluster\/cluster-node\.ts|cluster\/snapshot\.ts)$/],
    ['etcd3', /^cluster\//],
    ['piscina', /^coordinator\/shard-handle\.ts$/],
    ['prom-client', /^metrics\//],
  ])('only its owner imports %s', (lib, owner) => {
    for (const [f, ext] of externals) {
      if (ext.includes(lib)) expect(f, `${f} imports ${lib}`).toMatch(owner);
    }
  });
});
