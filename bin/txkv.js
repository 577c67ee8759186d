#!/usr/bin/env node
// The txkv command: runs the compiled CLI (npm start / npm test build it first).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`txkv: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
