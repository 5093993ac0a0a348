//! Prometheus metrics of the Raft runtime and its storage, registered in the node's registry.

use std::sync::Arc;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Raft and storage: set by the cluster crate as it works, and from openraft's metrics on scrape.
pub struct RaftMetrics {
    pub term: IntGauge,
    pub leader_id: IntGauge,
    pub is_leader: IntGauge,
    pub leader_changes: IntCounter,
    /// Elections this node started because a majority had lost the leader (cluster::failover).
    pub early_elections: IntCounter,
    /// `result`: `committed` or `failed`, proposals made on this node while it led.
    pub proposals: IntCounterVec,
    pub proposals_pending: IntGauge,
    pub forwarded_writes: IntCounter,
    pub forward_requests: IntCounter,
    pub entries_applied: IntCounter,
    pub last_log_index: IntGauge,
    pub applied_index: IntGauge,
    pub snapshot_index: IntGauge,
    /// On the leader: entries each follower is behind the leader's last log index.
    pub replication_lag: IntGaugeVec,
    pub snapshot_builds: IntCounter,
    pub snapshots_sent: IntCounter,
    pub snapshots_installed: IntCounter,
    /// TLS handshakes on the peer port refused for a certificate the cluster CA did not sign.
    pub peer_certificates_refused: IntCounter,
    /// One fsync of the Raft log (a group commit, a vote, a truncation or purge).
    pub log_fsync_seconds: Histogram,
    /// Applying one batch of committed entries to the state machine and writing its journal
    /// record (not fsynced: it reaches disk with the next log flush).
    pub apply_seconds: Histogram,
}

impl RaftMetrics {
    /// Metrics in a registry of their own that nobody scrapes (tools and tests of the cluster alone).
    pub fn detached() -> Arc<Self> {
        Arc::new(Self::register(&Registry::new()).expect("metric definitions are valid"))
    }

    /// The metrics, registered in `r` (a node's registry, scraped with its other metrics).
    pub fn register(r: &Registry) -> prometheus::Result<Self> {
        // 50 µs to ~1.6 s: an fsync on NVMe is tens of µs, on a loaded cloud disk tens of ms.
        let io_buckets = exponential_buckets(0.00005, 2.0, 16)?;
        Ok(RaftMetrics {
            term: registered(r, IntGauge::new("roomraft_raft_term", "Current Raft term."))?,
            leader_id: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_leader_id",
                    "Id of the node this node believes leads; 0 when none is known.",
                ),
            )?,
            is_leader: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_is_leader",
                    "1 while this node leads, else 0.",
                ),
            )?,
            leader_changes: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_leader_changes_total",
                    "Times this node saw the known leader change (including to none).",
                ),
            )?,
            early_elections: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_early_elections_total",
                    "Elections this node started as soon as a majority had lost the leader.",
                ),
            )?,
            proposals: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "roomraft_raft_proposals_total",
                        "Writes proposed to Raft on this node as leader, by result.",
                    ),
                    &["result"],
                ),
            )?,
            proposals_pending: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_proposals_pending",
                    "Proposals waiting to commit on this node.",
                ),
            )?,
            forwarded_writes: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_forwarded_writes_total",
                    "Writes this node forwarded to the leader.",
                ),
            )?,
            forward_requests: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_forward_requests_total",
                    "Peer requests that carried them: several writes share one under load.",
                ),
            )?,
            entries_applied: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_entries_applied_total",
                    "Log entries applied to this node's state machine.",
                ),
            )?,
            last_log_index: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_last_log_index",
                    "Index of the last log entry.",
                ),
            )?,
            applied_index: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_applied_index",
                    "Index of the last entry applied to the state machine.",
                ),
            )?,
            snapshot_index: registered(
                r,
                IntGauge::new(
                    "roomraft_raft_snapshot_index",
                    "Last log index covered by the current snapshot; 0 when none.",
                ),
            )?,
            replication_lag: registered(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "roomraft_raft_replication_lag_entries",
                        "On the leader: entries a member is behind the leader's last log index.",
                    ),
                    &["peer"],
                ),
            )?,
            snapshot_builds: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshot_builds_total",
                    "Snapshots this node built.",
                ),
            )?,
            snapshots_sent: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshots_sent_total",
                    "Snapshots this node sent to a lagging member.",
                ),
            )?,
            snapshots_installed: registered(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshots_installed_total",
                    "Snapshots received from the leader and installed.",
                ),
            )?,
            peer_certificates_refused: registered(
                r,
                IntCounter::new(
                    "roomraft_peer_certificates_refused_total",
                    "Peer connections refused for a certificate the cluster CA did not sign.",
                ),
            )?,
            log_fsync_seconds: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "roomraft_raft_log_fsync_duration_seconds",
                        "Time to make Raft log writes durable (one fsync).",
                    )
                    .buckets(io_buckets.clone()),
                ),
            )?,
            apply_seconds: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "roomraft_raft_apply_duration_seconds",
                        "Time to apply a batch of committed entries and write the result to the store.",
                    )
                    .buckets(io_buckets),
                ),
            )?,
        })
    }
}

/// `c`, registered in `r`: each metric of a node is made and registered in one step.
pub fn registered<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<C>,
) -> prometheus::Result<C> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}
