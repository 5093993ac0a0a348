//! Seeded fault schedules: a run starts a cluster and a workload, injects one fault per round
//! (chosen, placed and timed by the seed), heals it, and at the end checks every invariant.
//! The same seed gives the same schedule of faults; the system's own timing still varies.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::check::{self, convergence, Failure};
use crate::cluster::Cluster;
use crate::haproxy::HaProxy;
use crate::history::{History, Ret};
use crate::net::NodeId;
use crate::workload::{self, ts, Balanced, Workload, SLOT_ZERO};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    KillFollower,
    KillLeader,
    KillAll,
    PauseLeader,
    PauseFollower,
    IsolateLeader,
    IsolateFollower,
    /// The leader's outgoing peer traffic is cut; it still hears the others.
    LeaderCannotSend,
    /// The leader's incoming peer traffic is cut; it can still send.
    LeaderCannotHear,
    SlowLinks,
    DropConnections,
    /// A fresh member joins and an old one (perhaps the leader) is removed, under load.
    ReplaceNode,
    /// A member loses its data directory and rejoins as a new member with a new id.
    LoseDisk,
}

pub const PROCESS: &[Fault] = &[
    Fault::KillFollower,
    Fault::KillLeader,
    Fault::KillAll,
    Fault::PauseLeader,
    Fault::PauseFollower,
];
pub const NETWORK: &[Fault] = &[
    Fault::IsolateLeader,
    Fault::IsolateFollower,
    Fault::LeaderCannotSend,
    Fault::LeaderCannotHear,
    Fault::SlowLinks,
    Fault::DropConnections,
];
pub const MEMBERSHIP: &[Fault] = &[Fault::ReplaceNode, Fault::LoseDisk];

pub fn all_faults() -> Vec<Fault> {
    [PROCESS, NETWORK, MEMBERSHIP].concat()
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub rounds: usize,
    pub faults: Vec<Fault>,
    pub clients: usize,
    /// Rooms the clients contend for.
    pub rooms: usize,
    /// How many of the clients go through a real HAProxy (docs/ops/haproxy.cfg) rather than to
    /// the nodes; with none, no balancer is started.
    pub balanced_clients: usize,
}

/// The seed: `CHAOS_SEED` when set (to replay a failure), else `default`.
pub fn seed_or(default: u64) -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(s) => s.parse().expect("CHAOS_SEED must be a number"),
        Err(_) => default,
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub rounds: usize,
    pub faults: BTreeMap<Fault, usize>,
    pub ops: usize,
    pub acknowledged_writes: usize,
    pub unknown_writes: usize,
    pub conflicts: usize,
    /// Leader SIGKILL to the first acknowledged write sent through a survivor after the kill.
    pub failover: Vec<Duration>,
    /// Heal to every member ready again.
    pub recovery: Vec<Duration>,
    /// The same, by fault kind (how long a healed partition takes to be served again, etc.).
    pub recovery_by_fault: BTreeMap<Fault, Vec<Duration>>,
    pub convergence: Duration,
    /// What the clients behind HAProxy saw.
    pub balanced: Balanced,
    /// Their error windows by the fault of the round in which each began.
    pub balanced_by_fault: BTreeMap<Fault, Vec<Duration>>,
    pub failures: Vec<Failure>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} (replay: CHAOS_SEED={}): {} rounds, faults {:?}",
            self.seed, self.seed, self.rounds, self.faults
        )?;
        writeln!(
            f,
            "  operations {}, acknowledged writes {}, conflicts {}, unknown writes {}",
            self.ops, self.acknowledged_writes, self.conflicts, self.unknown_writes
        )?;
        if !self.failover.is_empty() {
            writeln!(
                f,
                "  failover after leader SIGKILL: {}",
                summary(&self.failover)
            )?;
        }
        if !self.recovery.is_empty() {
            writeln!(
                f,
                "  recovery after heal (all ready): {}",
                summary(&self.recovery)
            )?;
            for (fault, d) in &self.recovery_by_fault {
                writeln!(f, "    {fault:?}: {}", summary(d))?;
            }
        }
        if self.balanced.attempts > 0 {
            writeln!(f, "  through haproxy: {}", self.balanced)?;
            for (fault, d) in &self.balanced_by_fault {
                writeln!(f, "    error windows in {fault:?} rounds: {}", summary(d))?;
            }
        }
        writeln!(
            f,
            "  converged {:?} after the workload stopped",
            self.convergence
        )?;
        write!(f, "  invariant failures: {}", self.failures.len())
    }
}

/// `n`, p50, p99 and max of some durations.
pub fn summary(d: &[Duration]) -> String {
    let mut v = d.to_vec();
    v.sort();
    let q = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    format!(
        "n={} p50={:.0}ms p99={:.0}ms max={:.0}ms",
        v.len(),
        q(0.5).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

const READY_WITHIN: Duration = Duration::from_secs(60);
/// Added to a partition's or pause's hold so that the others surely elect a leader meanwhile:
/// a follower waits openraft's leader lease (election_max) plus its election timeout.
const ELECTION_GRACE: Duration = Duration::from_millis(1000);

/// Runs `plan` on a fresh three-node cluster whose ports start at `port_base`.
pub async fn run(port_base: u16, plan: Plan) -> anyhow::Result<Report> {
    let mut c = Cluster::start(port_base, 3, plan.rooms + 1).await?;
    // The last room is the failover probe's own, outside the checked workload.
    let probe_room = c.rooms.pop().context("probe room")?;
    let mut report = Report {
        seed: plan.seed,
        ..Default::default()
    };
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let urls: workload::Urls = Arc::new(Mutex::new(c.urls()));
    // The balancer listens on the cluster's base port, which no node uses (ids start at 1).
    let mut balancer = match plan.balanced_clients {
        0 => None,
        _ => {
            let lb = HaProxy::start(
                c.dir.path(),
                c.ca(),
                &format!("127.0.0.1:{port_base}"),
                &client_addrs(&c),
            )?;
            lb.wait_ready(&c.http, READY_WITHIN).await?;
            Some(lb)
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clients = tokio::spawn(workload::run(
        Workload {
            clients: plan.clients,
            seed: plan.seed,
            give_up_after: Duration::from_secs(10),
            balancer: balancer
                .as_ref()
                .map(|lb| (lb.url(""), plan.balanced_clients)),
        },
        c.http.clone(),
        urls.clone(),
        c.admin.clone(),
        c.rooms.clone(),
        stop_rx,
    ));

    let mut probe = Probe {
        room: probe_room,
        n: 0,
    };
    let mut round_starts: Vec<(Instant, Fault)> = Vec::new();
    for round in 0..plan.rounds {
        let mut fault = plan.faults[rng.gen_range(0..plan.faults.len())];
        if matches!(fault, Fault::ReplaceNode | Fault::LoseDisk)
            && c.ids().iter().max().copied().unwrap_or(0) > 90
        {
            fault = Fault::KillFollower; // out of node ids for this port range
        }
        let hold = Duration::from_millis(rng.gen_range(300..1500));
        eprintln!("seed {} round {round}: {fault:?}, held {hold:?}", plan.seed);
        round_starts.push((Instant::now(), fault));
        inject(&mut c, fault, hold, &mut rng, &mut probe, &mut report)
            .await
            .with_context(|| format!("seed {} round {round} ({fault:?})", plan.seed))?;
        *urls.lock().unwrap() = c.urls();
        if let Some(lb) = &mut balancer {
            if matches!(fault, Fault::ReplaceNode | Fault::LoseDisk) {
                // As an operator would: the balancer is pointed at the new member set.
                lb.reload(&client_addrs(&c))?;
            }
        }
        *report.faults.entry(fault).or_default() += 1;
        report.rounds += 1;
        let healed = Instant::now();
        for id in c.running() {
            c.wait_ready(id, READY_WITHIN).await.with_context(|| {
                format!(
                    "seed {} round {round} ({fault:?}): node {id} not ready after the heal",
                    plan.seed
                )
            })?;
        }
        report.recovery.push(healed.elapsed());
        report
            .recovery_by_fault
            .entry(fault)
            .or_default()
            .push(healed.elapsed());
        let after = c.leader(READY_WITHIN).await?;
        let term = c.get(after, "/api/v1/cluster", &c.operator).await?["term"]
            .as_u64()
            .unwrap_or(0);
        eprintln!("  healed; leader {after}, term {term}");
    }

    stop_tx.send(true)?;
    let (history, balanced) = clients.await?;
    for (began, length) in &balanced.windows {
        // A window that began before the first fault is counted with the first.
        let fault = round_starts
            .iter()
            .rev()
            .find(|(at, _)| at <= began)
            .or(round_starts.first())
            .map(|(_, f)| *f);
        if let Some(fault) = fault {
            report
                .balanced_by_fault
                .entry(fault)
                .or_default()
                .push(*length);
        }
    }
    report.balanced = balanced;
    // A write through the leader commits every entry before it, so the final state is complete.
    probe.write(&c, None).await?;
    report.convergence = match convergence::check(&c).await {
        Ok(d) => d,
        Err(f) => {
            report.failures.push(f);
            Duration::ZERO
        }
    };
    let mut states = Vec::new();
    for id in c.running() {
        states.push(check::final_state(&c, id, &history).await?);
    }
    report.failures.extend(check::all(&history, &states));
    tally(&history, &mut report);
    if !report.failures.is_empty() {
        for id in c.ids() {
            eprintln!("--- node {id} log tail ---\n{}", c.log_tail(id, 30));
        }
    }
    Ok(report)
}

/// The client addresses (`host:port`) of the members, for the balancer.
fn client_addrs(c: &Cluster) -> Vec<String> {
    c.ids()
        .into_iter()
        .map(|id| format!("127.0.0.1:{}", c.ports(id).client))
        .collect()
}

fn tally(history: &History, report: &mut Report) {
    report.ops = history.ops.len();
    report.acknowledged_writes =
        history.count(|o| matches!(o.ret, Ret::Booked { .. } | Ret::Cancelled));
    report.unknown_writes = history
        .count(|o| o.ret == Ret::Unknown && !matches!(o.call, crate::history::Call::Read { .. }));
    report.conflicts = history.count(|o| o.ret == Ret::Conflict);
}

/// Writes to a room of its own, to time failovers and to commit everything before the checks.
struct Probe {
    room: u64,
    n: i64,
}

impl Probe {
    /// Books the next probe slot through `via` (or any member), retrying until it is acknowledged;
    /// returns when it was, measured from `since`.
    async fn write(&mut self, c: &Cluster, via: Option<&[NodeId]>) -> anyhow::Result<Duration> {
        let since = Instant::now();
        self.n += 1;
        let start = SLOT_ZERO + 10_000_000 + self.n * 3600;
        let key = format!("probe-{}", self.n);
        let body = json!({"room_id": self.room, "start": ts(start), "end": ts(start + 1800), "title": key});
        let deadline = since + Duration::from_secs(30);
        let mut attempt = 0usize;
        while Instant::now() < deadline {
            let nodes = match via {
                Some(v) => v.to_vec(),
                None => c.running(),
            };
            let id = nodes[attempt % nodes.len()];
            attempt += 1;
            let r = c
                .http
                .post(c.url(id, "/api/v1/bookings"))
                .bearer_auth(&c.admin)
                .header("Idempotency-Key", &key)
                .timeout(Duration::from_secs(5))
                .json(&body)
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status() == 201) {
                return Ok(since.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("probe write {key} not acknowledged within 30s")
    }
}

async fn inject(
    c: &mut Cluster,
    fault: Fault,
    hold: Duration,
    rng: &mut StdRng,
    probe: &mut Probe,
    report: &mut Report,
) -> anyhow::Result<()> {
    let leader = c.leader(READY_WITHIN).await?;
    let others: Vec<NodeId> = c.running().into_iter().filter(|n| *n != leader).collect();
    let follower = others[rng.gen_range(0..others.len())];
    match fault {
        Fault::KillFollower => {
            c.kill(follower)?;
            tokio::time::sleep(hold).await;
            c.start_node(follower)?;
        }
        Fault::KillLeader => {
            c.kill(leader)?;
            report.failover.push(probe.write(c, Some(&others)).await?);
            tokio::time::sleep(hold).await;
            c.start_node(leader)?;
        }
        Fault::KillAll => {
            for id in c.running() {
                c.kill(id)?;
            }
            tokio::time::sleep(hold).await;
            for id in c.ids() {
                c.start_node(id)?;
            }
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            let who = if fault == Fault::PauseLeader {
                leader
            } else {
                follower
            };
            c.pause(who)?;
            // Long enough for the others to elect a new leader when the leader is paused.
            tokio::time::sleep(hold + ELECTION_GRACE).await;
            c.resume(who)?;
        }
        Fault::IsolateLeader | Fault::IsolateFollower => {
            let who = if fault == Fault::IsolateLeader {
                leader
            } else {
                follower
            };
            let rest: Vec<NodeId> = c.ids().into_iter().filter(|n| *n != who).collect();
            c.net.partition(&[who], &rest);
            tokio::time::sleep(hold + ELECTION_GRACE).await;
            c.net.heal();
        }
        Fault::LeaderCannotSend | Fault::LeaderCannotHear => {
            for other in c.ids().into_iter().filter(|n| *n != leader) {
                if fault == Fault::LeaderCannotSend {
                    c.net.set_blocked(leader, other, true);
                } else {
                    c.net.set_blocked(other, leader, true);
                }
            }
            tokio::time::sleep(hold + ELECTION_GRACE).await;
            c.net.heal();
        }
        Fault::SlowLinks => {
            for a in c.ids() {
                for b in c.ids().into_iter().filter(|b| *b != a) {
                    c.net
                        .set_delay(a, b, Duration::from_millis(rng.gen_range(5..60)));
                }
            }
            tokio::time::sleep(hold).await;
            c.net.heal();
        }
        Fault::DropConnections => {
            let ends = Instant::now() + hold;
            while Instant::now() < ends {
                let ids = c.ids();
                let a = ids[rng.gen_range(0..ids.len())];
                for b in ids.into_iter().filter(|b| *b != a) {
                    c.net.reset(a, b);
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(50..250))).await;
            }
        }
        Fault::ReplaceNode => {
            let ids = c.ids();
            let old = ids[rng.gen_range(0..ids.len())];
            let new = c.add_member().await?;
            c.remove_member(old).await?;
            eprintln!("  replaced node {old} with node {new}");
        }
        Fault::LoseDisk => {
            let new = c.lose_disk_and_rejoin(follower).await?;
            eprintln!("  node {follower} lost its disk and rejoined as node {new}");
        }
    }
    Ok(())
}
