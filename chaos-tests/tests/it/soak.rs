//! The long runs, selected explicitly (see docs/reliability.md):
//! - `soak`: hundreds of fault rounds of every kind, in batches of fresh clusters;
//! - `failover_figures`: repeated leader SIGKILLs, timing the first write through a survivor.
//! Run them on a release build: `ROOMRAFT_BIN=target/release/roomraft`.

use std::collections::BTreeMap;

use roomraft_chaos_tests::schedule::{self, all_faults, seed_or, summary, Fault, Plan};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

const BATCH: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long soak: CHAOS_SOAK_ROUNDS=300 cargo nextest run -p roomraft-chaos-tests --run-ignored only soak::soak"]
async fn soak() {
    let rounds = env_usize("CHAOS_SOAK_ROUNDS", 200);
    let first_seed = seed_or(rand::random::<u32>() as u64);
    let mut faults: BTreeMap<Fault, usize> = BTreeMap::new();
    let (mut ops, mut acked, mut unknown, mut done) = (0, 0, 0, 0);
    let (mut failover, mut recovery, mut failures) = (Vec::new(), Vec::new(), 0);
    let mut batch = 0u64;
    while done < rounds {
        let seed = first_seed + batch;
        let plan = Plan {
            seed,
            rounds: BATCH.min(rounds - done),
            faults: all_faults(),
            clients: 6,
            rooms: 3,
        };
        let report = schedule::run(25000, plan).await.unwrap();
        eprintln!("{report}");
        for f in &report.failures {
            eprintln!("{f}");
        }
        for (k, n) in &report.faults {
            *faults.entry(*k).or_default() += n;
        }
        ops += report.ops;
        acked += report.acknowledged_writes;
        unknown += report.unknown_writes;
        done += report.rounds;
        failures += report.failures.len();
        failover.extend(report.failover);
        recovery.extend(report.recovery);
        batch += 1;
    }
    eprintln!("soak from seed {first_seed}: {done} rounds in {batch} clusters");
    eprintln!("faults: {faults:?}");
    eprintln!("operations {ops}, acknowledged writes {acked}, unknown writes {unknown}, invariant failures {failures}");
    if !failover.is_empty() {
        eprintln!("failover: {}", summary(&failover));
    }
    eprintln!("recovery after heal: {}", summary(&recovery));
    assert_eq!(
        failures, 0,
        "invariants broken; replay the failing seed above"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: CHAOS_FAILOVER_KILLS=20 cargo nextest run -p roomraft-chaos-tests --run-ignored only soak::failover_figures"]
async fn failover_figures() {
    let kills = env_usize("CHAOS_FAILOVER_KILLS", 20);
    let plan = Plan {
        seed: seed_or(7),
        rounds: kills,
        faults: vec![Fault::KillLeader],
        clients: 6,
        rooms: 3,
    };
    let report = schedule::run(25500, plan).await.unwrap();
    eprintln!("{report}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.failover.len(), kills);
}
