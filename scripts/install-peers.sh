#!/usr/bin/env bash
# Installs the peer systems that bench/compare.ts measures txkv against, from Debian 12's
# own packages: etcd 3.4 (etcd-server), Redis 7.0 (redis-server), PostgreSQL 15 (postgresql).
# Run as root (or with sudo). bench/compare.ts starts each peer itself on loopback with a
# temporary data dir, so the services the packages enable are stopped and disabled here:
# they would only hold the default ports and compete for the 2 cores.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends etcd-server redis-server postgresql

# Stop the packaged services (no-op where there is no init system, e.g. in a container).
for svc in etcd redis-server postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  fi
done

echo "installed:"
command -v etcd && etcd --version | head -1
command -v redis-server && redis-server --version
ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null || echo "postgresql: initdb not found"
