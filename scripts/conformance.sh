#!/usr/bin/env bash
# Runs the shared conformance suite (black-box tests of ../shared/spec/client-api.md) against
# this build: `TXKV_ROOT=<repo> node --test <suite>/`.
#
# The suite is not part of this repository: it lives next to it in the txkv workspace
# (<repo>/../shared/conformance). A clone elsewhere does not have it, so:
#   TXKV_CONFORMANCE=DIR   runs the suite in DIR instead;
#   TXKV_CONFORMANCE=skip  leaves it out, and says so (exit 0);
#   otherwise a missing suite is an error (exit 1) that says where it was looked for and how
#   to point at it: never a silent skip.
#
# --check (the first step of `npm test`): only finds the suite (same messages and exit codes),
# so a clone without it fails in a second instead of after the whole vitest run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want="${TXKV_CONFORMANCE:-}"

if [ "$want" = "skip" ]; then
  echo "conformance: SKIPPED (TXKV_CONFORMANCE=skip): the shared conformance suite was not run" >&2
  exit 0
fi
if [ -n "$want" ]; then
  suite="$want"
  how="TXKV_CONFORMANCE=$want"
else
  suite="$ROOT/../shared/conformance"
  how="the txkv workspace's ../shared/conformance (next to this repository)"
fi
if [ ! -d "$suite" ] || ! ls "$suite"/*.test.mjs >/dev/null 2>&1; then
  cat >&2 <<EOF
conformance: no conformance suite at $suite (looked there because of $how).
  The suite (shared/conformance of the txkv workspace) is not part of this repository; a clone
  outside the workspace does not have it. Either
    TXKV_CONFORMANCE=/path/to/shared/conformance npm test    to run it from where it is, or
    TXKV_CONFORMANCE=skip npm test                           to run everything else without it.
EOF
  exit 1
fi
suite="$(cd "$suite" && pwd)"
if [ "${1:-}" = "--check" ]; then
  echo "conformance: suite at $suite" >&2
  exit 0
fi
echo "conformance: running $suite against $ROOT" >&2
TXKV_ROOT="$ROOT" exec node --test "$suite/"
