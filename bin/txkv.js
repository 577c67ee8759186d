#!/usr/bin/env -S node --v8-pool-size=1 --heap-growing-percent=300 --no-allocation-site-pretenuring
// The txkv command: runs the compiled CLI (npm start / npm test build it first). The node
// options on the first line are src/server/node-flags.ts SERVER_NODE_FLAGS (why: there).
import('../dist/src/cli/main.js').then(
  (m) =>
    m.main(process.argv.slice(2)).then(
      (code) => {
        if (typeof code === 'number') process.exitCode = code;
      },
      (err) => {
        process.stderr.write(`txkv: ${err && err.message ? err.message : err}\n`);
        process.exitCode = 1;
      },
    ),
  (err) => {
    // the CLI is TypeScript compiled to dist/: a fresh clone has not built it yet
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('/dist/')) {
      const root = new URL('..', import.meta.url).pathname;
      process.stderr.write(`txkv is not built yet: run \`npm run build\` in ${root} (npm start builds too), then try again\n`);
    } else process.stderr.write(`txkv: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
