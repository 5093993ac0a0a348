#!/usr/bin/env bash
# Throughput under faults (docs/reliability.md): `roomraft bench` on a release-built three-node dev
# cluster with all nodes up, with one follower SIGKILLed, and while that follower restarts and
# catches up. Usage: scripts/bench-faults.sh [seconds] [clients]. Results go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
clients=${2:-64}
work=$(mktemp -d /tmp/roomraft-bench-faults.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p roomraft-node -p roomraft-bench
bin=$PWD/target/release/roomraft
load=$PWD/target/release/roomraft-bench
dir=$work/roomraft
base=18440
url() { echo "https://127.0.0.1:$((base + $1))"; }
bench() { # label, node ids...
    local label=$1; shift
    local urls
    urls=$(for n in "$@"; do url "$n"; done | paste -sd,)
    echo -n "$label: "
    "$load" --urls "$urls" --ca "$dir/ca.pem" --token-file "$dir/admin.token" \
        --clients "$clients" --duration "$secs"
}
ready() { curl -sf --cacert "$dir/ca.pem" "$(url "$1")/health/ready" >/dev/null; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
"$bin" dev --data-dir "$dir" --port-base "$base" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "is up" "$work/dev.log" && break; sleep 0.1; done
grep -q "is up" "$work/dev.log" || { echo "roomraft dev did not come up" >&2; exit 1; }

bench "all three up" 1 2 3
leader=$(curl -sf --cacert "$dir/ca.pem" -H "Authorization: Bearer $(cat "$dir/admin.token")" \
    "$(url 1)/api/v1/cluster" | sed -E 's/.*"leader_id":([0-9]+).*/\1/')
follower=$((leader % 3 + 1))
survivors=$(for n in 1 2 3; do [ "$n" != "$follower" ] && echo "$n"; done | xargs)
kill -9 "$(cat "$dir/node$follower/pid")"
echo "SIGKILLed follower $follower (leader $leader)"
# shellcheck disable=SC2086
bench "one follower down" $survivors

# Restart it alone and bench the survivors while it catches up; time it until it is ready.
"$bin" serve --config "$dir/node$follower/node.toml" >>"$dir/node$follower/node.log" 2>&1 &
pids+=($!)
started=$(date +%s%N)
# shellcheck disable=SC2086
bench "during catch-up" $survivors &
bench_pid=$!
until ready "$follower"; do sleep 0.05; done
echo "follower $follower ready $(( ($(date +%s%N) - started) / 1000000 )) ms after its restart"
wait "$bench_pid"
if grep -q "snapshot installed" "$dir/node$follower/node.log"; then
    echo "it caught up by snapshot install"
else
    echo "it caught up from the log"
fi
