#!/usr/bin/env bash
# Side-by-side write benchmark: Roomraft (release build, `roomraft dev`) against a three-member
# etcd 3.4 cluster (Debian's etcd-server), both on loopback, driven by the same load generator.
# Usage: scripts/bench.sh [runs] [seconds] [clients]. Results go to stdout; see docs/benchmarks.md.
# With BASELINE_BIN=/path/to/an/older/roomraft, the runs alternate between a dev cluster of this
# build and one of that binary instead (an A/B of two builds), with no etcd.
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

start_dev() { # binary, folder, port base: a fresh three-node dev cluster, up and backed up once
    "$1" dev --data-dir "$2" --port-base "$3" >"$2.log" 2>&1 &
    pids+=($!)
    wait_for "roomraft dev in $2" grep -q "is up" "$2.log"
    # The dev cluster takes its first hourly backup about 30 s after it starts; the runs measure
    # the time between backups, as etcd has none (docs/benchmarks.md says what a backup costs).
    backed_up() { # the leader's gauge is set as it finishes; the others' at their next check
        for i in 1 2 3; do
            curl -sf --cacert "$2/ca.pem" -H "Authorization: Bearer $(cat "$2/operator.token")" \
                "https://127.0.0.1:$(($3 + i))/metrics" | grep -Eq '^roomraft_backup_last_success_timestamp_seconds [1-9]' && return 0
        done
        return 1
    }
    for _ in $(seq 1 120); do backed_up "$@" && break; sleep 1; done
    backed_up "$@" || { echo "bench: the first backup was not taken in $2" >&2; exit 1; }
}
node_urls() { echo "https://127.0.0.1:$(($1 + 1)),https://127.0.0.1:$(($1 + 2)),https://127.0.0.1:$(($1 + 3))"; }
node_pids() { for i in 1 2 3; do cat "$1/node$i/pid"; echo; done | paste -sd,; }
roomraft_run() { # folder, port base, label
    echo "== $3"
    "$load" --urls "$(node_urls "$2")" --ca "$1/ca.pem" --token-file "$1/admin.token" \
        --clients "$clients" --duration "$secs" --cpu-of "$(node_pids "$1")"
}

start_dev "$bin" "$work/roomraft" 18440

if [[ -n "${BASELINE_BIN:-}" ]]; then
    # A/B: both clusters stay up and the runs alternate, for the reason below.
    start_dev "$BASELINE_BIN" "$work/baseline" 18640
    for r in $(seq 1 "$runs"); do
        roomraft_run "$work/roomraft" 18440 "this build, run $r"
        roomraft_run "$work/baseline" 18640 "baseline $BASELINE_BIN, run $r"
    done
    exit 0
fi

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
etcd_pid_list=$(IFS=,; echo "${etcd_pids[*]}")
for r in $(seq 1 "$runs"); do
    roomraft_run "$work/roomraft" 18440 "Roomraft, run $r"
    echo "== etcd, run $r"
    "$load" --target etcd --urls "$eurls" --clients "$clients" --duration "$secs" --cpu-of "$etcd_pid_list"
done
