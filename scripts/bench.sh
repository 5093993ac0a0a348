#!/usr/bin/env bash
# Side-by-side write benchmark: Roomraft (release build, `roomraft dev`) against a three-member
# etcd 3.4 cluster (Debian's etcd-server), both on loopback, driven by the same load generator.
# Usage: scripts/bench.sh [runs] [seconds] [clients]. Results go to stdout; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
secs=${2:-10}
clients=${3:-64}
work=$(mktemp -d /tmp/roomraft-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # what, command...
    local what=$1; shift
    for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench: $what did not come up" >&2; exit 1
}

cargo build --release -p roomraft-node -p roomraft-bench
bin=target/release/roomraft
load=target/release/roomraft-bench

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"

# Roomraft: a fresh three-node dev cluster.
"$bin" dev --data-dir "$work/roomraft" --port-base 18440 >"$work/dev.log" 2>&1 &
pids+=($!)
wait_for "roomraft dev" grep -q "is up" "$work/dev.log"
urls=https://127.0.0.1:18441,https://127.0.0.1:18442,https://127.0.0.1:18443
# The dev cluster takes its first hourly backup about 30 s after it starts; the runs measure the
# time between backups, as etcd has none (docs/benchmarks.md says what a backup costs a run).
backed_up() { # the leader's gauge is set as it finishes; the others' at their next check
    for port in 18441 18442 18443; do
        curl -sf --cacert "$work/roomraft/ca.pem" -H "Authorization: Bearer $(cat "$work/roomraft/operator.token")" \
            "https://127.0.0.1:$port/metrics" | grep -Eq '^roomraft_backup_last_success_timestamp_seconds [1-9]' && return 0
    done
    return 1
}
for _ in $(seq 1 120); do backed_up && break; sleep 1; done
backed_up || { echo "bench: the first backup was not taken" >&2; exit 1; }

# etcd: three members, default settings, plain HTTP. Both clusters stay up and the runs
# alternate (Roomraft, etcd, Roomraft, ...): this virtual machine's speed drifts by tens of
# per cent over minutes, which one system's runs after the other's would read as a difference.
# An idle cluster costs little (heartbeats).
if ! command -v etcd >/dev/null; then
    $(command -v sudo || true) env DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >/dev/null
fi
etcd_pids=()
cluster="e1=http://127.0.0.1:12380,e2=http://127.0.0.1:12480,e3=http://127.0.0.1:12580"
for i in 1 2 3; do
    peer=$((12280 + i * 100)); client=$((12279 + i * 100))
    etcd --name "e$i" --data-dir "$work/etcd$i" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --initial-cluster "$cluster" --initial-cluster-state new >"$work/etcd$i.log" 2>&1 &
    pids+=($!)
    etcd_pids+=($!)
done
wait_for "etcd" curl -sf http://127.0.0.1:12379/health
eurls=http://127.0.0.1:12379,http://127.0.0.1:12479,http://127.0.0.1:12579
# Each run also reports the CPU each server process and the load generator spent per write.
node_pids=$(for i in 1 2 3; do cat "$work/roomraft/node$i/pid"; echo; done | paste -sd,)
etcd_pid_list=$(IFS=,; echo "${etcd_pids[*]}")
for r in $(seq 1 "$runs"); do
    "$load" --urls "$urls" --ca "$work/roomraft/ca.pem" --token-file "$work/roomraft/admin.token" \
        --clients "$clients" --duration "$secs" --cpu-of "$node_pids"
    "$load" --target etcd --urls "$eurls" --clients "$clients" --duration "$secs" --cpu-of "$etcd_pid_list"
done
