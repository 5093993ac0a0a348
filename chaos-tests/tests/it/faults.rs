//! The short chaos suite: a few seeded rounds of each fault family against real processes, every
//! invariant checked at the end. `CHAOS_SEED=N` replays one seed.

use roomraft_chaos_tests::schedule::{self, seed_or, Plan, MEMBERSHIP, NETWORK, PROCESS};

async fn run(port_base: u16, seed: u64, faults: &[schedule::Fault], rounds: usize) {
    let plan = Plan {
        seed: seed_or(seed),
        rounds,
        faults: faults.to_vec(),
        clients: 6,
        rooms: 3,
        balanced_clients: 2,
    };
    let report = schedule::run(port_base, plan).await.unwrap();
    eprintln!("{report}");
    for f in &report.failures {
        eprintln!("{f}");
    }
    assert!(
        report.failures.is_empty(),
        "seed {} broke {} invariant(s); replay with CHAOS_SEED={}",
        report.seed,
        report.failures.len(),
        report.seed
    );
    assert!(
        report.acknowledged_writes > 0,
        "no write was acknowledged: the run proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_faults_kill_pause_restart() {
    run(24000, 1, PROCESS, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_partitions_one_way_delay_resets() {
    run(24300, 2, NETWORK, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_faults_replace_and_lost_disk() {
    run(24600, 3, MEMBERSHIP, 3).await;
}
