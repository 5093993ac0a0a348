#!/usr/bin/env bash
# Runs Roomraft's whole test suite on a fresh machine, installing what it needs (idempotently).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

# Real tools some tests drive: promtool (Debian's prometheus package) and HAProxy.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A real S3-protocol server for the backup tests: moto_server (PyPI moto[server]).
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]>=5,<6'
fi

cargo fmt --all -- --check
# The multi-process tests run the real binary from target/debug/roomraft.
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"

# The long chaos runs, only when asked for (docs/reliability.md), on a release build.
if [[ -n "${CHAOS_SOAK_ROUNDS:-}${CHAOS_FAILOVER_KILLS:-}" ]]; then
  cargo build --release -p roomraft-node -p roomraft-chaos-tests --bin roomraft --bin chaos-soak
  ROOMRAFT_BIN="$PWD/target/release/roomraft" target/release/chaos-soak
fi
