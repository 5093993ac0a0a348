//! Prometheus metrics of one node, in its own registry (several nodes can share a process in tests).
//!
//! Names follow Prometheus conventions: a `roomraft_` prefix, base units (seconds, bytes),
//! `_total` on counters, and labels drawn from small fixed sets (route templates, never paths).

use std::sync::Arc;

use roomraft_cluster::registered as reg;
pub use roomraft_cluster::RaftMetrics;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

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
            raft: Arc::new(RaftMetrics::register(&r)?),
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
