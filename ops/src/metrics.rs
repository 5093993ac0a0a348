//! Prometheus metrics of one node, in its own registry (several nodes can share a process in tests).
//!
//! Names follow Prometheus conventions: a `roomraft_` prefix, base units (seconds, bytes),
//! `_total` on counters, and labels drawn from small fixed sets (route templates, never paths).

use std::sync::Arc;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
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
        Arc::new(Self::new(&Registry::new()).expect("metric definitions are valid"))
    }

    fn new(r: &Registry) -> prometheus::Result<Self> {
        // 50 µs to ~1.6 s: an fsync on NVMe is tens of µs, on a loaded cloud disk tens of ms.
        let io_buckets = exponential_buckets(0.00005, 2.0, 16)?;
        Ok(RaftMetrics {
            term: reg(r, IntGauge::new("roomraft_raft_term", "Current Raft term."))?,
            leader_id: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_leader_id",
                    "Id of the node this node believes leads; 0 when none is known.",
                ),
            )?,
            is_leader: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_is_leader",
                    "1 while this node leads, else 0.",
                ),
            )?,
            leader_changes: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_leader_changes_total",
                    "Times this node saw the known leader change (including to none).",
                ),
            )?,
            early_elections: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_early_elections_total",
                    "Elections this node started as soon as a majority had lost the leader.",
                ),
            )?,
            proposals: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "roomraft_raft_proposals_total",
                        "Writes proposed to Raft on this node as leader, by result.",
                    ),
                    &["result"],
                ),
            )?,
            proposals_pending: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_proposals_pending",
                    "Proposals waiting to commit on this node.",
                ),
            )?,
            forwarded_writes: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_forwarded_writes_total",
                    "Writes this node forwarded to the leader.",
                ),
            )?,
            forward_requests: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_forward_requests_total",
                    "Peer requests that carried them: several writes share one under load.",
                ),
            )?,
            entries_applied: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_entries_applied_total",
                    "Log entries applied to this node's state machine.",
                ),
            )?,
            last_log_index: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_last_log_index",
                    "Index of the last log entry.",
                ),
            )?,
            applied_index: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_applied_index",
                    "Index of the last entry applied to the state machine.",
                ),
            )?,
            snapshot_index: reg(
                r,
                IntGauge::new(
                    "roomraft_raft_snapshot_index",
                    "Last log index covered by the current snapshot; 0 when none.",
                ),
            )?,
            replication_lag: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "roomraft_raft_replication_lag_entries",
                        "On the leader: entries a member is behind the leader's last log index.",
                    ),
                    &["peer"],
                ),
            )?,
            snapshot_builds: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshot_builds_total",
                    "Snapshots this node built.",
                ),
            )?,
            snapshots_sent: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshots_sent_total",
                    "Snapshots this node sent to a lagging member.",
                ),
            )?,
            snapshots_installed: reg(
                r,
                IntCounter::new(
                    "roomraft_raft_snapshots_installed_total",
                    "Snapshots received from the leader and installed.",
                ),
            )?,
            peer_certificates_refused: reg(
                r,
                IntCounter::new(
                    "roomraft_peer_certificates_refused_total",
                    "Peer connections refused for a certificate the cluster CA did not sign.",
                ),
            )?,
            log_fsync_seconds: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "roomraft_raft_log_fsync_duration_seconds",
                        "Time to make Raft log writes durable (one fsync).",
                    )
                    .buckets(io_buckets.clone()),
                ),
            )?,
            apply_seconds: reg(
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

/// HTTP, bookings and security, counted by the node's API layer.
pub struct HttpMetrics {
    /// `route` is the route template (`/api/v1/bookings/{id}`), or `unmatched`.
    pub requests: IntCounterVec,
    pub duration_seconds: HistogramVec,
    /// `reason`: `per_address` (refused over the per-address cap), `idle` (no request within
    /// the idle timeout) or `body_timeout` (a request body slower than its deadline).
    pub connections_closed: IntCounterVec,
}

/// Every metric of one node.
pub struct Metrics {
    registry: Registry,
    pub raft: Arc<RaftMetrics>,
    pub http: HttpMetrics,
    /// `outcome`: `created`, `conflicted` or `cancelled`.
    pub bookings: IntCounterVec,
    /// `scope`: `address`, `sign_in_address`, `sign_in_account` or `tenant`.
    pub rate_limited: IntCounterVec,
    /// `kind`: `failed_sign_in`, `rate_limited` or `cross_site` (a browser's change sent from
    /// another site); refused peer certificates have their own counter.
    pub security_events: IntCounterVec,
    pub backup: BackupMetrics,
    pub analytics: AnalyticsMetrics,
}

/// Usage analytics on this node.
pub struct AnalyticsMetrics {
    /// `outcome`: `recorded` (replicated), `rate_limited`, `dropped` (queue full, too old or
    /// not replicated in time), `bot` or `invalid`.
    pub events: IntCounterVec,
    /// Page views waiting in this node's queue for the next batch.
    pub pending: IntGauge,
}

/// Backups. The last success is read from the replicated state, so every node reports it;
/// the rest describe backups this node took.
pub struct BackupMetrics {
    /// Unix time the newest scheduled backup finished (0 before the first).
    pub last_success_timestamp_seconds: IntGauge,
    /// `trigger`: `scheduled` or `manual`; backups this node wrote and verified.
    pub taken: IntCounterVec,
    /// `stage`: `snapshot`, `upload`, `verify`, `record` or `prune`.
    pub failures: IntCounterVec,
    pub duration_seconds: Histogram,
    /// Size of the last archive this node wrote.
    pub last_size_bytes: IntGauge,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<C>,
) -> prometheus::Result<C> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// A fresh registry with every metric, build info and (on Linux) process metrics.
    pub fn new(version: &str) -> Self {
        Self::build(version).expect("metric definitions are valid and unique")
    }

    fn build(version: &str) -> prometheus::Result<Self> {
        let r = Registry::new();
        let info = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "roomraft_build_info",
                    "Always 1; labels say which build runs.",
                ),
                &["version"],
            ),
        )?;
        info.with_label_values(&[version]).set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let m = Metrics {
            raft: Arc::new(RaftMetrics::new(&r)?),
            http: HttpMetrics {
                requests: reg(
                    &r,
                    IntCounterVec::new(
                        Opts::new(
                            "roomraft_http_requests_total",
                            "Client HTTP requests answered, by route template, method and status.",
                        ),
                        &["route", "method", "status"],
                    ),
                )?,
                duration_seconds: reg(
                    &r,
                    HistogramVec::new(
                        HistogramOpts::new(
                            "roomraft_http_request_duration_seconds",
                            "Time from a request's arrival to its answer.",
                        )
                        .buckets(exponential_buckets(0.0005, 2.0, 15)?),
                        &["route", "method"],
                    ),
                )?,
                connections_closed: reg(
                    &r,
                    IntCounterVec::new(
                        Opts::new(
                            "roomraft_http_connections_closed_total",
                            "Client connections this node closed or refused to protect itself, by reason.",
                        ),
                        &["reason"],
                    ),
                )?,
            },
            bookings: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "roomraft_bookings_total",
                        "Booking requests served by this node, by outcome.",
                    ),
                    &["outcome"],
                ),
            )?,
            rate_limited: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "roomraft_rate_limit_rejections_total",
                        "Requests refused with 429, by the limit that refused them.",
                    ),
                    &["scope"],
                ),
            )?,
            security_events: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "roomraft_security_events_total",
                        "Security-relevant events, by kind.",
                    ),
                    &["kind"],
                ),
            )?,
            backup: BackupMetrics {
                last_success_timestamp_seconds: reg(
                    &r,
                    IntGauge::new(
                        "roomraft_backup_last_success_timestamp_seconds",
                        "Unix time the newest scheduled backup finished (from the replicated state; 0 before the first).",
                    ),
                )?,
                taken: reg(
                    &r,
                    IntCounterVec::new(
                        Opts::new(
                            "roomraft_backups_total",
                            "Backups this node wrote, by trigger.",
                        ),
                        &["trigger"],
                    ),
                )?,
                failures: reg(
                    &r,
                    IntCounterVec::new(
                        Opts::new(
                            "roomraft_backup_failures_total",
                            "Backups this node attempted that failed, by the stage that failed.",
                        ),
                        &["stage"],
                    ),
                )?,
                duration_seconds: reg(
                    &r,
                    Histogram::with_opts(
                        HistogramOpts::new(
                            "roomraft_backup_duration_seconds",
                            "Time to copy, compress, encrypt and upload one backup.",
                        )
                        .buckets(exponential_buckets(0.05, 2.0, 14)?),
                    ),
                )?,
                last_size_bytes: reg(
                    &r,
                    IntGauge::new(
                        "roomraft_backup_last_size_bytes",
                        "Size of the last archive this node wrote.",
                    ),
                )?,
            },
            analytics: AnalyticsMetrics {
                events: reg(
                    &r,
                    IntCounterVec::new(
                        Opts::new(
                            "roomraft_analytics_events_total",
                            "Page views this node received for usage analytics, by outcome.",
                        ),
                        &["outcome"],
                    ),
                )?,
                pending: reg(
                    &r,
                    IntGauge::new(
                        "roomraft_analytics_pending_events",
                        "Page views queued on this node for the next replicated batch.",
                    ),
                )?,
            },
            registry: r,
        };
        // Every series of a bounded label set exists from the start, at 0, so rates and alerts
        // see a counter begin rather than appear.
        for (vec, values) in [
            (&m.raft.proposals, &["committed", "failed"][..]),
            (&m.bookings, &["created", "conflicted", "cancelled"][..]),
            (
                &m.rate_limited,
                &[
                    "address",
                    "sign_in_address",
                    "sign_in_account",
                    "tenant",
                    "analytics",
                ][..],
            ),
            (
                &m.analytics.events,
                &["recorded", "rate_limited", "dropped", "bot", "invalid"][..],
            ),
            (
                &m.security_events,
                &["failed_sign_in", "rate_limited", "cross_site"][..],
            ),
            (
                &m.http.connections_closed,
                &["per_address", "idle", "body_timeout"][..],
            ),
            (&m.backup.taken, &["scheduled", "manual"][..]),
            (
                &m.backup.failures,
                &["snapshot", "upload", "verify", "record", "prune"][..],
            ),
        ] {
            for v in values {
                vec.with_label_values(&[v]);
            }
        }
        Ok(m)
    }

    /// For metrics owned elsewhere (backups, analytics) to join this node's registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new("unknown")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = Metrics::new("1.2.3");
        m.raft.proposals.with_label_values(&["committed"]).inc();
        m.http
            .requests
            .with_label_values(&["/api/v1/bookings", "POST", "201"])
            .inc();
        m.raft.log_fsync_seconds.observe(0.002);
        let text = m.render();
        assert!(text.contains("roomraft_build_info{version=\"1.2.3\"} 1"));
        assert!(text.contains("roomraft_raft_proposals_total{result=\"committed\"} 1"));
        assert!(text.contains("# TYPE roomraft_raft_log_fsync_duration_seconds histogram"));
        assert!(text.contains("roomraft_raft_log_fsync_duration_seconds_count 1"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE roomraft_")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no help"
            );
        }
    }

    #[test]
    fn two_nodes_in_one_process_have_separate_registries() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.raft.leader_changes.inc();
        assert_eq!(a.raft.leader_changes.get(), 1);
        assert_eq!(b.raft.leader_changes.get(), 0);
    }
}
