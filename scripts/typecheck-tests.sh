#!/usr/bin/env bash
# Type-checks the tests with src/ and bench/ (tsconfig.test.json). vitest runs test files
# without checking their types, so a test could call what src/ no longer has (27 such errors
# had piled up by 2026-11-30) and still pass, or fail only at run time.
#
#   scripts/typecheck-tests.sh           check now (what `npm run typecheck` runs)
#   scripts/typecheck-tests.sh --start   check in the background at idle CPU priority (a first
#                                        step of `npm test`: ~15 s of CPU the vitest run leaves idle)
#   scripts/typecheck-tests.sh --wait    wait for that check; exit 1 with its errors if it failed
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/node_modules/.cache/txkv-typecheck"
TSC="$ROOT/node_modules/.bin/tsc"
case "${1:-}" in
  "")
    exec "$TSC" -p "$ROOT/tsconfig.test.json"
    ;;
  --start)
    mkdir -p "$OUT"
    rm -f "$OUT/rc" "$OUT/log"
    idle=(nice -n 19)
    chrt --idle 0 true 2>/dev/null && idle=(chrt --idle 0)
    setsid "${idle[@]}" bash -c '"$1" -p "$2" >"$3/log" 2>&1; echo $? >"$3/rc"' _ "$TSC" "$ROOT/tsconfig.test.json" "$OUT" </dev/null >/dev/null 2>&1 &
    ;;
  --wait)
    for _ in $(seq 1 600); do [ -f "$OUT/rc" ] && break; sleep 1; done
    if [ ! -f "$OUT/rc" ]; then
      echo "typecheck-tests: the background check (--start) did not finish within 600 s; run: npm run typecheck" >&2
      exit 1
    fi
    if [ "$(cat "$OUT/rc")" != 0 ]; then
      echo "typecheck-tests: the tests do not type-check (tsconfig.test.json):" >&2
      cat "$OUT/log" >&2
      exit 1
    fi
    echo "typecheck-tests: test/, src/ and bench/ type-check"
    ;;
  *)
    echo "usage: scripts/typecheck-tests.sh [--start | --wait]" >&2
    exit 2
    ;;
esac
