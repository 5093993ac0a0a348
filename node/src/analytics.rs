//! Page-view capture and its batches: the request path queues a hit; a task on every node
//! enriches its queue into page views that identify nobody and replicates them in batches, so
//! analytics never waits on, or slows, a booking.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use jiff::civil::Date;
use jiff::Timestamp;
use roomraft_cluster::{Cluster, ClusterError, Consistency};
use roomraft_ops::analytics::{
    clip, oldest_salt_day, utc_day, Collector, Enricher, Hit, NotQueued, PageView, Skip,
};
use roomraft_ops::{AnalyticsConfig, Metrics, Refusal};

use crate::backup::system_actor;
use crate::domain::analytics::{RecordPageViews, SetAnalyticsSalt};
use crate::domain::{Bookings, Command, LogCommand, Op, Request, TenantId};

/// Longest user agent kept in memory for hashing.
const MAX_USER_AGENT: usize = 512;
/// A failed batch is retried this many times (with the same request key) before it is dropped.
const BATCH_ATTEMPTS: u32 = 5;

/// One node's analytics: its queue, its enricher and its settings.
pub struct Analytics {
    pub config: AnalyticsConfig,
    collector: Collector,
    enricher: Enricher,
    metrics: Arc<Metrics>,
}

/// Whether a page view was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Queued,
    /// Analytics is off, the client is a robot, or the queue is full.
    Ignored,
}

impl Analytics {
    pub fn new(config: AnalyticsConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid [analytics] in the config: {e}"))?;
        Ok(Analytics {
            collector: Collector::new(&config),
            enricher: Enricher::open(config.geoip_database.as_deref()),
            config,
            metrics,
        })
    }

    fn count(&self, outcome: &str, n: u64) {
        if n > 0 {
            self.metrics
                .analytics
                .events
                .with_label_values(&[outcome])
                .inc_by(n);
        }
    }

    /// Records a view of `path` on `tenant`'s pages by the request's client. Costs a rate-limit
    /// check and a queue push; the address and user agent stay in this node's memory until the
    /// next batch hashes them away. `referrer` overrides the request's `Referer` (a page that
    /// reports its own view passes the referrer it was reached from).
    ///
    /// A view of no school's public site (`tenant` is `None`) spends the client's rate limit
    /// like any other and is ignored, so the answer never tells which school names exist.
    pub fn page_view(
        &self,
        tenant: Option<TenantId>,
        client: IpAddr,
        headers: &HeaderMap,
        path: &str,
        referrer: Option<&str>,
    ) -> Result<Recorded, Refusal> {
        if !self.config.enabled {
            return Ok(Recorded::Ignored);
        }
        if let Err(r) = self.collector.admit(client) {
            self.count("rate_limited", 1);
            return Err(r);
        }
        let Some(tenant) = tenant else {
            return Ok(Recorded::Ignored);
        };
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let hit = Hit {
            tenant,
            at: Timestamp::now(),
            client,
            user_agent: clip(
                &text(header::USER_AGENT).unwrap_or_default(),
                MAX_USER_AGENT,
            ),
            path: clip(path, 2048),
            referrer: referrer
                .map(str::to_string)
                .or_else(|| text(header::REFERER))
                .map(|r| clip(&r, 2048)),
            host: text(header::HOST),
        };
        match self.collector.enqueue(hit) {
            Ok(()) => Ok(Recorded::Queued),
            Err(NotQueued::RateLimited(r)) => {
                self.count("rate_limited", 1);
                Err(r)
            }
            Err(NotQueued::Full) => {
                self.count("dropped", 1);
                Ok(Recorded::Ignored)
            }
        }
    }
}

/// The salt that keys visitor ids on UTC `day`: the replicated one, or a fresh one proposed
/// now (the first proposal of a day wins on every node).
async fn salt(cluster: &Cluster<Bookings>, day: Date) -> Result<Vec<u8>, ClusterError> {
    let read = |b: &Bookings| b.analytics_salt(day).map(str::to_string);
    let found = match cluster.read_local(read) {
        Some(s) => s,
        None => {
            let fresh = hex::encode(rand::random::<[u8; 32]>());
            // Refused when another node's salt for the day won; the read below finds it.
            let _ = crate::backup::propose(cluster, SetAnalyticsSalt { day, salt: fresh }).await?;
            cluster
                .read(Consistency::Linearizable, read)
                .await?
                .ok_or_else(|| ClusterError::Codec {
                    what: "analytics salt",
                    reason: format!("no salt for {day} after proposing one (too old?)"),
                })?
        }
    };
    hex::decode(&found).map_err(|e| ClusterError::Codec {
        what: "analytics salt",
        reason: e.to_string(),
    })
}

/// A batch on its way into the log, kept with its request key so a retry cannot count twice.
struct Batch {
    key: String,
    views: Vec<PageView>,
    attempts: u32,
}

/// Drains this node's queue every `flush_interval`, enriches it, and replicates it.
pub async fn run(cluster: Cluster<Bookings>, analytics: Arc<Analytics>) {
    let a = &*analytics;
    let mut tick = tokio::time::interval(a.config.flush_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut salts: BTreeMap<Date, Vec<u8>> = BTreeMap::new();
    let mut pending: Option<Batch> = None;
    loop {
        tick.tick().await;
        a.collector.housekeeping();
        if pending.is_none() {
            pending = next_batch(&cluster, a, &mut salts).await;
        }
        a.metrics
            .analytics
            .pending
            .set(a.collector.pending() as i64);
        let Some(mut batch) = pending.take() else {
            continue;
        };
        let cmd = LogCommand::current(Command {
            time: Timestamp::now(),
            actor: system_actor(cluster.id()),
            request_key: batch.key.clone(),
            op: Op::from(RecordPageViews {
                views: batch.views.clone(),
                retention_months: a.config.retention_months,
            }),
        });
        match cluster.write(&cmd).await {
            Ok((_, outcome)) => match RecordPageViews::reply(outcome) {
                Ok((recorded, skipped)) => {
                    a.count("recorded", recorded.into());
                    a.count("invalid", skipped.into());
                }
                Err(other) => {
                    tracing::warn!(outcome = ?other, "page-view batch refused");
                    a.count("dropped", batch.views.len() as u64);
                }
            },
            Err(e) => {
                batch.attempts += 1;
                if batch.attempts >= BATCH_ATTEMPTS {
                    tracing::warn!(error = %e, views = batch.views.len(), "page-view batch dropped");
                    a.count("dropped", batch.views.len() as u64);
                } else {
                    tracing::debug!(error = %e, "page-view batch will be retried");
                    pending = Some(batch);
                }
            }
        }
    }
}

/// The next batch from the queue, enriched with each day's salt.
async fn next_batch(
    cluster: &Cluster<Bookings>,
    a: &Analytics,
    salts: &mut BTreeMap<Date, Vec<u8>>,
) -> Option<Batch> {
    let hits = a.collector.drain(a.config.batch_max);
    if hits.is_empty() {
        return None;
    }
    let oldest = oldest_salt_day(Timestamp::now());
    // Forget salts the cluster has destroyed, so this node cannot outlive them.
    salts.retain(|d, _| *d >= oldest);
    let mut views = Vec::with_capacity(hits.len());
    let (mut bots, mut dropped) = (0u64, 0u64);
    // Days whose salt could not be had this time (no leader): their hits are dropped at once.
    let mut unsalted = std::collections::BTreeSet::new();
    for hit in &hits {
        let day = utc_day(hit.at);
        if day < oldest || unsalted.contains(&day) {
            dropped += 1;
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = salts.entry(day) {
            match salt(cluster, day).await {
                Ok(s) => {
                    slot.insert(s);
                }
                Err(e) => {
                    tracing::warn!(error = %e, %day, "no analytics salt; page views dropped");
                    unsalted.insert(day);
                    dropped += 1;
                    continue;
                }
            }
        }
        match a.enricher.enrich(hit, &salts[&day]) {
            Ok(v) => views.push(v),
            Err(Skip::Bot) => bots += 1,
        }
    }
    a.count("bot", bots);
    a.count("dropped", dropped);
    (!views.is_empty()).then(|| Batch {
        key: format!("analytics/{}/{:032x}", cluster.id(), rand::random::<u128>()),
        views,
        attempts: 0,
    })
}
