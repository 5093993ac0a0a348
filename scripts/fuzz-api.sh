#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTPS API: schemathesis (PyPI) generates requests from
# docs/openapi.yaml, valid and invalid, and sends them to a real `roomraft dev` cluster, as the
# school's admin and then as the operator. It fails on any server error (5xx other than a
# documented 503), any status or content type the document does not list, and any answer that
# does not match its schema. docs/api.md ("Fuzzing") says how to read a failure.
#
#   ./scripts/fuzz-api.sh                 # about 25 cases per operation and identity
#   FUZZ_EXAMPLES=200 ./scripts/fuzz-api.sh
#
# The test command runs a short pass of it; FUZZ_EXAMPLES asks for more (the long mode, docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${FUZZ_EXAMPLES:-25}"
port_base="${FUZZ_PORT_BASE:-31500}"
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis>=4.3,<5'
fi
bin="${ROOMRAFT_BIN:-target/debug/roomraft}"
[[ -x "$bin" ]] || cargo build -p roomraft-node --bin roomraft

dir=$(mktemp -d)
log="$dir/dev.log"
"$bin" dev --data-dir "$dir" --port-base "$port_base" >"$log" 2>&1 &
dev=$!
cleanup() {
  kill "$dev" 2>/dev/null || true
  wait "$dev" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  grep -q "cluster is up" "$log" && break
  kill -0 "$dev" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
grep -q "cluster is up" "$log" || { echo "roomraft dev did not come up" >&2; cat "$log"; exit 1; }

url="https://127.0.0.1:$((port_base + 1))"
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# Membership changes would take the cluster apart under the fuzzer, a backup takes seconds per
# call, and revoking tokens would revoke the fuzzer's own: each has its own tests.
exclude='^/api/v1/(cluster/(learners|voters|members|backups)|tokens/\{id\})'
run() {
  local who=$1 token=$2
  echo "== fuzzing as $who"
  schemathesis run docs/openapi.yaml \
    --url "$url" \
    --tls-verify "$dir/ca.pem" \
    -H "Authorization: Bearer $token" \
    --checks "$checks" \
    --exclude-path-regex "$exclude" \
    --max-examples "$examples" \
    --seed "${FUZZ_SEED:-30}" \
    --workers 2 \
    --request-timeout 20 \
    --suppress-health-check all \
    --report junit --report-dir "target/fuzz/$who"
}
mkdir -p target/fuzz
run admin "$(cat "$dir/admin.token")"
run operator "$(cat "$dir/operator.token")"
echo "fuzzing found nothing: no server error, no undocumented status"
