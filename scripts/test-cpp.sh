#!/usr/bin/env bash
# Builds the C++ client + 3FS adapter (clients/cpp/build) and runs their GoogleTest suites
# against a txkv server started here (or TXKV_URL, if set). Exit code: ctest's.
# Skips (exit 0) only when the Debian packages are missing and cannot be installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/clients/cpp/build"
JOBS="${TXKV_CPP_JOBS:-2}"
PKGS=(libflatbuffers-dev flatbuffers-compiler libboost-dev libboost-system-dev libgtest-dev cmake g++)
start=$(date +%s)

missing() {
  local m=()
  command -v flatc >/dev/null || m+=(flatc)
  command -v cmake >/dev/null || m+=(cmake)
  command -v g++ >/dev/null || m+=(g++)
  [ -f /usr/include/boost/beast/websocket.hpp ] || m+=(boost-beast)
  [ -f /usr/include/gtest/gtest.h ] || m+=(gtest)
  [ -f /usr/include/flatbuffers/flatbuffers.h ] || m+=(flatbuffers-headers)
  echo "${m[*]:-}"
}

if [ -n "$(missing)" ]; then
  echo "test-cpp: installing ${PKGS[*]} (missing: $(missing))"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PKGS[@]}") >/tmp/txkv-test-cpp-apt.log 2>&1 ||
      echo "test-cpp: apt-get failed (see /tmp/txkv-test-cpp-apt.log)"
  fi
  if [ -n "$(missing)" ]; then
    echo "skipped: missing $(missing) (Debian packages: ${PKGS[*]})"
    exit 0
  fi
fi

echo "test-cpp: $(flatc --version), $(g++ --version | head -1), cmake $(cmake --version | head -1 | awk '{print $3}')"
# -O1 without debug info: the Beast TU costs ~3x more at -O2 -g; tests need no more.
cmake -S "$ROOT/clients/cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DTXKV_BUILD_TESTS=ON -DTXKV_BUILD_3FS_ADAPTER=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "test-cpp: build done in $(( $(date +%s) - start )) s"

SERVER_PID=""
DATA_DIR=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "$DATA_DIR" ] && rm -rf "$DATA_DIR"
}
trap cleanup EXIT

if [ -z "${TXKV_URL:-}" ]; then
  if [ ! -f "$ROOT/dist/src/index.js" ]; then
    echo "test-cpp: dist/src/index.js missing, running npm run build"
    (cd "$ROOT" && npm run build >/dev/null)
  fi
  DATA_DIR="$(mktemp -d /tmp/txkv-cpp-test-XXXXXX)"
  LOG="$DATA_DIR/server.log"
  (cd "$ROOT" && exec node -e "import('./dist/src/index.js').then(async (m) => {
      const s = await m.startServer({ port: 0, host: '127.0.0.1', dataDir: process.argv[1], shards: 4 });
      console.log('PORT', s.port);
      const stop = () => s.close().then(() => process.exit(0), () => process.exit(1));
      process.on('SIGTERM', stop); process.on('SIGINT', stop);
    }).catch((e) => { console.error(e); process.exit(1); })" "$DATA_DIR/data") >"$LOG" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do
    PORT="$(grep -m1 -o '^PORT [0-9]*' "$LOG" 2>/dev/null | awk '{print $2}' || true)"
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$PORT" ]; then
    echo "test-cpp: the txkv server did not start; its log:"
    cat "$LOG"
    exit 1
  fi
  export TXKV_URL="ws://127.0.0.1:$PORT"
fi
echo "test-cpp: server $TXKV_URL"

status=0
# Serially: the suites share one server, and each stays the only load on it.
(cd "$BUILD" && ctest --output-on-failure) || status=$?
echo "test-cpp: build + tests took $(( $(date +%s) - start )) s"
exit $status
