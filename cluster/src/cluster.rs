//! A running cluster member: Raft, the peer listener, and the request paths that make any node
//! serve any request (writes forwarded to the leader, linearizable reads through a read index).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::time::{timeout_at, Instant};

use crate::metrics::RaftMetrics;

use crate::batch::{Batcher, ProposeError, WriteAnswer};
use crate::coalesce::Coalesce;
use crate::config::{ClusterConfig, Timeouts};
use crate::failover::Contact;
use crate::forward::{Failed, Forwarder};
use crate::log_store::LogStore;
use crate::network::{CallError, PeerClient, PeerNetworkFactory};
use crate::state_machine::{Shared, StateMachineStore};
use crate::store::{encode, Store};
use crate::tls::TlsMaterial;
use crate::types::{NodeId, NodeInfo, Raft};
use crate::ClusterError;
use roomraft_replicated::App;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Sees every write acknowledged before the read started, on any node (the default).
    #[default]
    Linearizable,
    /// Whatever this node has applied; no round trip to the leader.
    Stale,
}

/// A write forwarded to the leader.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ForwardedWrite {
    #[serde(with = "serde_bytes")]
    command: Vec<u8>,
    /// How long the sender still waits, in milliseconds.
    budget_ms: u64,
}

impl ForwardedWrite {
    pub(crate) fn new(command: Vec<u8>, budget_ms: u64) -> Self {
        Self { command, budget_ms }
    }
}

/// A membership change forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ForwardedMembership {
    AddLearner { id: NodeId, node: NodeInfo },
    AddVoters { ids: BTreeSet<NodeId> },
    Remove { ids: BTreeSet<NodeId> },
}

/// Why the node a request was forwarded to did not serve it.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("timed out on the leader")]
    Timeout,
    #[error("refused: {reason}")]
    Refused { reason: String },
    #[error("stopped: {reason}")]
    Stopped { reason: String },
}

enum Route {
    Local,
    Remote(NodeId, NodeInfo),
}

/// The non-generic part of a member, shared with the peer listener.
pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    batcher: Batcher,
    forwarder: Forwarder,
    pub(crate) peers: PeerClient,
    pub(crate) timeouts: Timeouts,
    pub(crate) metrics: Arc<RaftMetrics>,
    /// When a leader was last heard (see `failover`).
    pub(crate) contact: Contact,
    /// The Raft log, for this node's last log id.
    pub(crate) log: sled::Tree,
    /// Read indexes confirmed as leader, shared by the reads that arrive while one is asked.
    leader_reads: Coalesce<Result<u64, ForwardError>>,
    /// Read indexes asked of the leader by this follower, shared the same way.
    remote_reads: Coalesce<Result<u64, ForwardError>>,
}

const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(120);

impl Inner {
    fn leader(&self) -> (Option<NodeId>, Option<NodeInfo>) {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader;
        let node = leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned());
        (leader, node)
    }

    /// Waits (at most a short while, never past `deadline`) for a leader other than `old`.
    async fn await_new_leader(&self, old: Option<NodeId>, deadline: Instant) {
        let until = deadline.min(Instant::now() + Duration::from_millis(250));
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if m.current_leader.is_some() && m.current_leader != old {
                    return;
                }
            }
            match timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    async fn route(&self, deadline: Instant) -> Option<Route> {
        loop {
            match self.leader() {
                (Some(l), _) if l == self.id => return Some(Route::Local),
                (Some(l), Some(node)) => return Some(Route::Remote(l, node)),
                (leader, _) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    self.await_new_leader(leader, deadline).await;
                }
            }
        }
    }

    fn stopped(&self, reason: impl ToString) -> ClusterError {
        ClusterError::Stopped {
            node_id: self.id,
            reason: reason.to_string(),
        }
    }

    /// Proposes `command` here if this node leads, in the next batch; never forwards.
    async fn propose(
        &self,
        command: Vec<u8>,
        deadline: Instant,
    ) -> Result<WriteAnswer, ForwardError> {
        self.metrics.proposals_pending.inc();
        let result = self.batcher.propose(command, deadline).await;
        self.metrics.proposals_pending.dec();
        let label = if matches!(result, Some(Ok(_))) {
            "committed"
        } else {
            "failed"
        };
        self.metrics.proposals.with_label_values(&[label]).inc();
        match result {
            None => Err(ForwardError::Timeout),
            Some(Ok(answer)) => Ok(answer),
            Some(Err(ProposeError::NotLeader { leader })) => {
                Err(ForwardError::NotLeader { leader })
            }
            Some(Err(ProposeError::Refused { reason })) => Err(ForwardError::Refused { reason }),
            Some(Err(ProposeError::Stopped { reason })) => Err(ForwardError::Stopped { reason }),
        }
    }

    pub(crate) async fn write_as_leader(
        &self,
        req: ForwardedWrite,
    ) -> Result<WriteAnswer, ForwardError> {
        let deadline =
            Instant::now() + Duration::from_millis(req.budget_ms.min(self.timeouts.request_ms));
        self.propose(req.command, deadline).await
    }

    /// Writes through whichever node leads, retrying across leader changes until the deadline.
    pub(crate) async fn write(&self, command: Vec<u8>) -> Result<WriteAnswer, ClusterError> {
        let deadline = Instant::now() + self.timeouts.request();
        // Whether an attempt may have reached a leader; decides between "no leader" (certainly not
        // applied) and "timeout" (outcome unknown) when the deadline passes.
        let mut maybe_applied = false;
        loop {
            let route = self.route(deadline).await;
            let Some(route) = route.filter(|_| Instant::now() < deadline) else {
                return Err(if maybe_applied {
                    ClusterError::Timeout
                } else {
                    ClusterError::NoLeader
                });
            };
            match route {
                Route::Local => match self.propose(command.clone(), deadline).await {
                    Ok(answer) => return Ok(answer),
                    Err(ForwardError::Timeout) => return Err(ClusterError::Timeout),
                    Err(ForwardError::NotLeader { .. }) => {
                        self.await_new_leader(Some(self.id), deadline).await
                    }
                    Err(ForwardError::Refused { reason }) => {
                        return Err(ClusterError::Membership { reason })
                    }
                    Err(ForwardError::Stopped { reason }) => return Err(self.stopped(reason)),
                },
                Route::Remote(leader, node) => {
                    let answer = self
                        .forwarder
                        .forward(&node.peer_addr, command.clone(), deadline)
                        .await;
                    match answer {
                        Ok(Ok(answer)) => return Ok(answer),
                        Ok(Err(ForwardError::Timeout)) | Err(Failed::Timeout) => {
                            return Err(ClusterError::Timeout)
                        }
                        Ok(Err(ForwardError::Refused { reason })) => {
                            return Err(ClusterError::Membership { reason })
                        }
                        Ok(Err(ForwardError::NotLeader { .. } | ForwardError::Stopped { .. })) => {}
                        Err(Failed::Unreachable) => {}
                        Err(Failed::Other(e)) => {
                            tracing::debug!(leader, error = %e, "forwarded write failed, retrying");
                            maybe_applied = true;
                        }
                    }
                    self.await_new_leader(Some(leader), deadline).await;
                }
            }
        }
    }

    /// The commit index as of a leadership check made after this call: one heartbeat round to a
    /// quorum, shared by every read (local or forwarded) that arrived before it began.
    pub(crate) async fn read_index_as_leader(&self) -> Result<u64, ForwardError> {
        let shared = self
            .leader_reads
            .run(|| async { Some(self.confirm_read_index().await) })
            .await;
        shared.unwrap_or(Err(ForwardError::Timeout))
    }

    async fn confirm_read_index(&self) -> Result<u64, ForwardError> {
        let deadline = Instant::now() + self.timeouts.request();
        match timeout_at(deadline, self.raft.get_read_log_id()).await {
            Err(_) => Err(ForwardError::Timeout),
            Ok(Ok((read_log_id, _applied))) => Ok(read_log_id.map(|l| l.index).unwrap_or(0)),
            Ok(Err(RaftError::APIError(e))) => match e {
                openraft::error::CheckIsLeaderError::ForwardToLeader(f) => {
                    Err(ForwardError::NotLeader {
                        leader: f.leader_id,
                    })
                }
                openraft::error::CheckIsLeaderError::QuorumNotEnough(q) => {
                    Err(ForwardError::Refused {
                        reason: q.to_string(),
                    })
                }
            },
            Ok(Err(RaftError::Fatal(f))) => Err(ForwardError::Stopped {
                reason: f.to_string(),
            }),
        }
    }

    /// The index a linearizable read must wait for, obtained from the leader.
    pub(crate) async fn read_index(&self, deadline: Instant) -> Result<u64, ClusterError> {
        loop {
            let Some(route) = self
                .route(deadline)
                .await
                .filter(|_| Instant::now() < deadline)
            else {
                return Err(ClusterError::NoLeader);
            };
            let (leader, answer) = match route {
                Route::Local => (self.id, Ok(self.read_index_as_leader().await)),
                Route::Remote(leader, node) => {
                    let budget = deadline.saturating_duration_since(Instant::now());
                    let ask = || {
                        self.peers
                            .call(&node.peer_addr, "/cluster/read-index", &(), budget)
                    };
                    // Reads arriving while one asks share the next answer; a failed call is
                    // made again by each caller, so each sees its own error.
                    let shared = self.remote_reads.run(|| async { ask().await.ok() }).await;
                    let answer = match shared {
                        Some(a) => Ok(a),
                        None => ask().await,
                    };
                    (leader, answer)
                }
            };
            match answer {
                Ok(Ok(index)) => return Ok(index),
                Ok(Err(ForwardError::Timeout)) | Err(CallError::Timeout { .. }) => {
                    return Err(ClusterError::Timeout)
                }
                Ok(Err(e)) => tracing::debug!(leader, error = %e, "read index refused, retrying"),
                Err(e) => tracing::debug!(leader, error = %e, "read index call failed, retrying"),
            }
            self.await_new_leader(Some(leader), deadline).await;
        }
    }

    pub(crate) async fn membership_as_leader(
        &self,
        op: ForwardedMembership,
    ) -> Result<(), ForwardError> {
        let result = match op {
            ForwardedMembership::AddLearner { id, node } => {
                timeout_at(
                    Instant::now() + MEMBERSHIP_DEADLINE,
                    self.raft.add_learner(id, node, true),
                )
                .await
            }
            ForwardedMembership::AddVoters { ids } => {
                let change = ChangeMembers::AddVoterIds(ids);
                timeout_at(
                    Instant::now() + MEMBERSHIP_DEADLINE,
                    self.raft.change_membership(change, false),
                )
                .await
            }
            ForwardedMembership::Remove { ids } => {
                let change = ChangeMembers::RemoveVoters(ids.clone());
                let first = timeout_at(
                    Instant::now() + MEMBERSHIP_DEADLINE,
                    self.raft.change_membership(change, false),
                )
                .await;
                match first {
                    // A node that was only a learner is not a voter: remove it as a node instead.
                    Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_)))) => {
                        let change = ChangeMembers::RemoveNodes(ids);
                        timeout_at(
                            Instant::now() + MEMBERSHIP_DEADLINE,
                            self.raft.change_membership(change, false),
                        )
                        .await
                    }
                    other => other,
                }
            }
        };
        match result {
            Err(_) => Err(ForwardError::Timeout),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ForwardError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(ForwardError::Refused {
                    reason: e.to_string(),
                })
            }
            Ok(Err(RaftError::Fatal(f))) => Err(ForwardError::Stopped {
                reason: f.to_string(),
            }),
        }
    }

    async fn membership(&self, op: ForwardedMembership) -> Result<(), ClusterError> {
        let deadline = Instant::now() + MEMBERSHIP_DEADLINE;
        loop {
            let Some(route) = self
                .route(deadline)
                .await
                .filter(|_| Instant::now() < deadline)
            else {
                return Err(ClusterError::NoLeader);
            };
            let (leader, answer) = match route {
                Route::Local => (self.id, Ok(self.membership_as_leader(op.clone()).await)),
                Route::Remote(leader, node) => {
                    let budget = deadline.saturating_duration_since(Instant::now());
                    (
                        leader,
                        self.peers
                            .call(&node.peer_addr, "/cluster/membership", &op, budget)
                            .await,
                    )
                }
            };
            match answer {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(ForwardError::Refused { reason })) => {
                    return Err(ClusterError::Membership { reason })
                }
                Ok(Err(ForwardError::Timeout)) | Err(CallError::Timeout { .. }) => {
                    return Err(ClusterError::Timeout)
                }
                Ok(Err(e)) => {
                    tracing::debug!(leader, error = %e, "membership change refused, retrying")
                }
                Err(e) => tracing::debug!(leader, error = %e, "membership call failed, retrying"),
            }
            self.await_new_leader(Some(leader), deadline).await;
        }
    }
}

/// One member as seen in the membership configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub peer_addr: String,
    pub client_addr: String,
    /// Voter, or learner (receives the log but does not vote).
    pub voter: bool,
}

/// What this node knows of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    pub last_applied_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// On the leader: the highest log index known replicated to each member.
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
}

/// A digest of the applied application state, for comparing replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    pub node_id: NodeId,
    /// The last log index applied to the state the digest covers.
    pub applied_index: u64,
    /// Hex SHA-256 over every application record, in key order.
    pub sha256: String,
    /// How many records the state has.
    pub records: usize,
}

/// The whole application state at one applied log entry (see [`Cluster::backup_state`]).
pub struct AppliedState {
    pub index: u64,
    pub term: u64,
    /// The state digest, as [`StateDigest::sha256`].
    pub sha256: String,
    /// Every record, in key order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A running cluster member replicating the application `A`.
pub struct Cluster<A: App> {
    inner: Arc<Inner>,
    shared: Arc<Shared<A>>,
    store: Store,
    peer_handle: axum_server::Handle,
}

impl<A: App> Clone for Cluster<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            store: self.store.clone(),
            peer_handle: self.peer_handle.clone(),
        }
    }
}

impl<A: App> Cluster<A> {
    /// Opens the store, starts Raft and the peer listener, and bootstraps a fresh cluster from
    /// `initial_members` when this node is one of them and has never been initialised.
    pub async fn start(config: ClusterConfig, tls: &TlsMaterial) -> Result<Self, ClusterError> {
        Self::start_observed(config, tls, RaftMetrics::detached()).await
    }

    /// As [`Cluster::start`], recording Raft and storage metrics in `metrics`.
    pub async fn start_observed(
        config: ClusterConfig,
        tls: &TlsMaterial,
        metrics: Arc<RaftMetrics>,
    ) -> Result<Self, ClusterError> {
        let raft_config = Arc::new(config.raft_config()?);
        let store = Store::open_observed(&config.data_dir, metrics.clone())?;
        let fresh = store.is_fresh()?;
        let log_store = LogStore::new(store.clone());
        let sm = StateMachineStore::<A>::open(store.clone())?;
        let shared = sm.shared.clone();
        let peers = PeerClient::new(tls, &config.timeouts, config.peer_source_ip)?;
        let network = PeerNetworkFactory {
            id: config.node_id,
            client: peers.clone(),
            metrics: metrics.clone(),
        };
        let raft = Raft::new(config.node_id, raft_config, network, log_store, sm)
            .await
            .map_err(|e| ClusterError::Stopped {
                node_id: config.node_id,
                reason: e.to_string(),
            })?;
        let (batcher, batching) = Batcher::start(raft.clone());
        store.track_endless(batching);
        let (forwarder, forwarding) = Forwarder::start(peers.clone(), metrics.clone());
        store.track_endless(forwarding);
        let inner = Arc::new(Inner {
            id: config.node_id,
            raft,
            batcher,
            forwarder,
            peers,
            timeouts: config.timeouts.clone(),
            metrics: metrics.clone(),
            contact: Contact::new(),
            leader_reads: Coalesce::new(),
            remote_reads: Coalesce::new(),
            log: store.log.clone(),
        });
        store.track_endless(tokio::spawn(crate::failover::watch(inner.clone())));
        store.track_endless(tokio::spawn(observe_raft(
            inner.raft.metrics(),
            metrics.clone(),
        )));
        store.track_endless(tokio::spawn(snapshot_policy(
            inner.raft.clone(),
            shared.snapshot_records.clone(),
            config.snapshot_every_entries,
            config.snapshot_scales_with_state,
        )));
        let peer_handle = axum_server::Handle::new();
        crate::peer_server::serve(
            inner.clone(),
            config.peer_listen,
            tls,
            config.peer_body_limit_bytes,
            peer_handle.clone(),
        )?;

        if fresh && config.initial_members.contains_key(&config.node_id) {
            // Every initial member may do this with the same membership: they all write the same
            // first entry, and whichever wins the first election proceeds.
            match inner.raft.initialize(config.initial_members.clone()).await {
                Ok(()) => {
                    tracing::info!(members = ?config.initial_members.keys().collect::<Vec<_>>(), "cluster initialised")
                }
                Err(RaftError::APIError(e)) => {
                    tracing::info!(reason = %e, "cluster already initialised")
                }
                Err(RaftError::Fatal(f)) => {
                    return Err(ClusterError::Stopped {
                        node_id: config.node_id,
                        reason: f.to_string(),
                    })
                }
            }
        }
        Ok(Self {
            inner,
            shared,
            store,
            peer_handle,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The underlying Raft handle (metrics, waits), for tests and operations.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Replicates `command` through the leader and returns the log index and outcome.
    ///
    /// A follower forwards to the leader and retries across leader changes within the request
    /// deadline; the caller makes commands idempotent, as a retry may apply twice.
    pub async fn write(&self, command: &A::Command) -> Result<(u64, A::Outcome), ClusterError> {
        let answer = self.inner.write(encode(command)).await?;
        let outcome = bincode::deserialize(&answer.outcome).map_err(|e| ClusterError::Codec {
            what: "outcome",
            reason: e.to_string(),
        })?;
        Ok((answer.index, outcome))
    }

    /// Runs `f` on the application state after making it as fresh as `consistency` asks.
    pub async fn read<R>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&A) -> R,
    ) -> Result<R, ClusterError> {
        if consistency == Consistency::Linearizable {
            let deadline = Instant::now() + self.inner.timeouts.request();
            let index = self.inner.read_index(deadline).await?;
            self.wait_applied(index, deadline).await?;
        }
        Ok(self.read_local(f))
    }

    /// Runs `f` on this node's applied state, with no freshness guarantee.
    pub fn read_local<R>(&self, f: impl FnOnce(&A) -> R) -> R {
        f(&self.shared.app.read())
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ClusterError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        self.inner
            .raft
            .wait(Some(budget))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => ClusterError::Timeout,
                openraft::metrics::WaitError::ShuttingDown => self.inner.stopped("shutting down"),
            })
    }

    /// Ready to serve: a leader is known and this node has applied the leader's commit index.
    pub async fn is_ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        match self.inner.read_index(deadline).await {
            Ok(index) => self.wait_applied(index, deadline).await.is_ok(),
            Err(_) => false,
        }
    }

    /// A digest of this node's applied state and the index it covers. Two replicas that
    /// applied the same index must give the same digest; the chaos suite checks that they do.
    pub fn state_digest(&self) -> StateDigest {
        let (applied_index, mut records) = {
            let app = self.shared.app.read();
            (self.shared.applied_index(), app.records())
        };
        StateDigest {
            node_id: self.inner.id,
            applied_index,
            sha256: crate::restore::records_digest(&mut records),
            records: records.len(),
        }
    }

    /// A consistent copy of the state for a backup: every record the application backs up
    /// ([`App::backup_records`], in key order) with the
    /// log index and term they were applied up to, and their digest. With
    /// [`Consistency::Linearizable`] it includes every write acknowledged before the call.
    /// Writers wait only while the state is cloned (on a blocking thread, logged with how long it
    /// took); the records are encoded afterwards.
    pub async fn backup_state(
        &self,
        consistency: Consistency,
    ) -> Result<AppliedState, ClusterError> {
        self.read(consistency, |_| ()).await?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let (app, index, term) = {
                let app = shared.app.read();
                (app.clone(), shared.applied_index(), shared.applied_term())
            };
            let copied = started.elapsed();
            let mut records = app.backup_records();
            drop(app);
            let sha256 = crate::restore::records_digest(&mut records);
            tracing::info!(
                index,
                records = records.len(),
                copy_ms = copied.as_millis() as u64,
                encode_ms = (started.elapsed() - copied).as_millis() as u64,
                "state copied for a backup (writes waited for the copy)"
            );
            AppliedState {
                index,
                term,
                sha256,
                records,
            }
        })
        .await
        .map_err(|e| self.inner.stopped(format!("backup copy failed: {e}")))
    }

    /// The Raft and storage metrics this node records.
    pub fn metrics(&self) -> &Arc<RaftMetrics> {
        &self.inner.metrics
    }

    /// What this node knows of the cluster now.
    pub fn status(&self) -> ClusterStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                peer_addr: n.peer_addr.clone(),
                client_addr: n.client_addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterStatus {
            node_id: m.id,
            state: state.into(),
            leader_id: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            last_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members,
            replication: m.replication.as_ref().map(|r| {
                r.iter()
                    .map(|(id, l)| (*id, l.as_ref().map(|l| l.index)))
                    .collect()
            }),
        }
    }

    /// Adds a node as a learner and waits until it has caught up with the log.
    pub async fn add_learner(&self, id: NodeId, node: NodeInfo) -> Result<(), ClusterError> {
        self.inner
            .membership(ForwardedMembership::AddLearner { id, node })
            .await
    }

    /// Promotes learners to voters.
    pub async fn add_voters(&self, ids: BTreeSet<NodeId>) -> Result<(), ClusterError> {
        self.inner
            .membership(ForwardedMembership::AddVoters { ids })
            .await
    }

    /// Removes nodes from the cluster (voters or learners).
    pub async fn remove_nodes(&self, ids: BTreeSet<NodeId>) -> Result<(), ClusterError> {
        self.inner
            .membership(ForwardedMembership::Remove { ids })
            .await
    }

    /// Stops Raft, the peer listener and the store's background work, and flushes the store.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
        self.peer_handle.shutdown();
        self.store.stop_background().await;
        if let Err(e) = self.store.flush().await {
            tracing::warn!(error = %e, "final flush failed");
        }
    }
}

/// Asks Raft for a snapshot once enough entries were applied since the last one: at least
/// `every`, and with `scale` at least as many as the state had records at the last snapshot.
/// Building a snapshot copies the whole state while applies wait, so a fixed interval would make
/// a large state cost more per entry the larger it grows; this keeps it at about one record.
///
/// Nodes do not build at the same moment: a build copies and encodes the whole state, and three
/// at once on shared cores stalled a leader long enough to lose an election. Followers build
/// after 1, 1.25 or 1.5 times the threshold (by node id), the leader after twice it, so in a
/// steady cluster the followers build first, one after the other, and the leader rarely.
async fn snapshot_policy(raft: Raft, records: Arc<AtomicU64>, every: u64, scale: bool) {
    let mut rx = raft.metrics();
    // The applied index at the last request: a build that failed is asked for again only after
    // as many entries again, not on every entry.
    let mut asked_at = None::<u64>;
    loop {
        let due = {
            let m = rx.borrow_and_update();
            let applied = m.last_applied.map_or(0, |l| l.index);
            let snapshot = m.snapshot.map_or(0, |l| l.index);
            let base = if scale {
                every.max(records.load(Ordering::Relaxed))
            } else {
                every
            }
            .max(1);
            let quarters = if m.state == openraft::ServerState::Leader {
                8
            } else {
                4 + m.id % 3
            };
            let threshold = base.saturating_mul(quarters) / 4;
            let since_asked = asked_at.map_or(u64::MAX, |a| applied.saturating_sub(a));
            let due = applied.saturating_sub(snapshot) >= threshold && since_asked >= threshold;
            if due {
                asked_at = Some(applied);
            }
            due
        };
        if due {
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::debug!(error = %e, "snapshot policy stops");
                return;
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Mirrors openraft's metrics into the Prometheus gauges as they change, and counts leader changes.
async fn observe_raft(
    mut rx: tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, NodeInfo>>,
    metrics: Arc<RaftMetrics>,
) {
    let mut leader = None;
    loop {
        {
            let m = rx.borrow_and_update();
            if m.current_leader != leader {
                if leader.is_some() || m.current_leader.is_some() {
                    metrics.leader_changes.inc();
                }
                leader = m.current_leader;
            }
            let gauge = |v: u64| v.min(i64::MAX as u64) as i64;
            metrics.term.set(gauge(m.current_term));
            metrics.leader_id.set(gauge(m.current_leader.unwrap_or(0)));
            metrics
                .is_leader
                .set(i64::from(m.state == ServerState::Leader));
            let last = m.last_log_index.unwrap_or(0);
            metrics.last_log_index.set(gauge(last));
            metrics
                .applied_index
                .set(gauge(m.last_applied.map(|l| l.index).unwrap_or(0)));
            metrics
                .snapshot_index
                .set(gauge(m.snapshot.map(|l| l.index).unwrap_or(0)));
            metrics.replication_lag.reset();
            for (peer, matched) in m.replication.iter().flatten() {
                let matched = matched.map(|l| l.index).unwrap_or(0);
                metrics
                    .replication_lag
                    .with_label_values(&[&peer.to_string()])
                    .set(gauge(last.saturating_sub(matched)));
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
