//! The long chaos runs, outside the short suite (docs/reliability.md):
//! - `CHAOS_SOAK_ROUNDS=N`: N fault rounds of every kind, in batches of fresh clusters;
//! - `CHAOS_FAILOVER_KILLS=N`: N leader SIGKILLs, timing the first write through a survivor.
//!
//! `./scripts/test.sh` runs this after the suite when either variable is set. Exits non-zero when
//! an invariant broke. Best on a release build: `ROOMRAFT_BIN=target/release/roomraft`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context};
use roomraft_chaos_tests::schedule::{self, all_faults, seed_or, summary, Fault, Plan};
use roomraft_chaos_tests::workload::Balanced;

/// Rounds per cluster: keeps every history small enough to check exhaustively.
const BATCH: usize = 25;

fn env_usize(name: &str) -> anyhow::Result<Option<usize>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => match v.parse() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => bail!("{name} must be a positive number of rounds, not {v:?}"),
        },
    }
}

async fn soak(rounds: usize) -> anyhow::Result<usize> {
    let first_seed = seed_or(rand::random::<u32>() as u64);
    let mut faults: BTreeMap<Fault, usize> = BTreeMap::new();
    let (mut ops, mut acked, mut unknown, mut done) = (0, 0, 0, 0);
    let (mut failover, mut recovery, mut failures) = (Vec::new(), Vec::new(), 0);
    let mut balanced = Balanced::default();
    let mut balanced_by_fault: BTreeMap<Fault, Vec<std::time::Duration>> = BTreeMap::new();
    let mut batch = 0u64;
    while done < rounds {
        let plan = Plan {
            seed: first_seed + batch,
            rounds: BATCH.min(rounds - done),
            faults: all_faults(),
            clients: 6,
            rooms: 3,
            balanced_clients: 2,
        };
        let report = schedule::run(25000, plan).await?;
        println!("{report}");
        for f in &report.failures {
            println!("{f}");
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
        balanced.add(report.balanced);
        for (k, d) in report.balanced_by_fault {
            balanced_by_fault.entry(k).or_default().extend(d);
        }
        batch += 1;
    }
    println!("soak from seed {first_seed}: {done} rounds in {batch} clusters");
    println!("faults: {faults:?}");
    println!("operations {ops}, acknowledged writes {acked}, unknown writes {unknown}, invariant failures {failures}");
    if !failover.is_empty() {
        println!("failover: {}", summary(&failover));
    }
    println!("recovery after heal: {}", summary(&recovery));
    println!("through haproxy: {balanced}");
    for (k, d) in &balanced_by_fault {
        println!("  error windows in {k:?} rounds: {}", summary(d));
    }
    Ok(failures)
}

async fn failover_figures(kills: usize) -> anyhow::Result<usize> {
    let plan = Plan {
        seed: seed_or(7),
        rounds: kills,
        faults: vec![Fault::KillLeader],
        clients: 6,
        rooms: 3,
        balanced_clients: 2,
    };
    let report = schedule::run(25500, plan).await?;
    println!("{report}");
    for f in &report.failures {
        println!("{f}");
    }
    if report.failover.len() != kills {
        bail!("timed {} failovers of {kills} kills", report.failover.len());
    }
    Ok(report.failures.len())
}

async fn run() -> anyhow::Result<usize> {
    let soak_rounds = env_usize("CHAOS_SOAK_ROUNDS")?;
    let kills = env_usize("CHAOS_FAILOVER_KILLS")?;
    if soak_rounds.is_none() && kills.is_none() {
        bail!("set CHAOS_SOAK_ROUNDS and/or CHAOS_FAILOVER_KILLS (see docs/reliability.md)");
    }
    let mut failures = 0;
    if let Some(n) = soak_rounds {
        failures += soak(n).await.context("soak")?;
    }
    if let Some(n) = kills {
        failures += failover_figures(n).await.context("failover figures")?;
    }
    Ok(failures)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => {
            eprintln!("chaos-soak: {n} invariant failure(s); replay the failing seed above with CHAOS_SEED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chaos-soak: {e:#}");
            ExitCode::from(2)
        }
    }
}
