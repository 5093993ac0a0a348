//! Usage analytics that identify nobody.
//!
//! A page view is captured on the request path as a [`Hit`] (a queue push behind a per-address
//! rate limit: microseconds). A background task drains the queue in batches, turns each hit into
//! a [`PageView`] with [`Enricher`] (GeoIP country and city, browser, OS and device class from
//! the user agent, the referrer's domain, and a visitor id that is a keyed hash of the day's salt,
//! the address, the user agent and the tenant), and replicates the batch. The address and the
//! user agent never leave the node's memory. [`Tally`] is the deterministic, replicated part:
//! daily aggregates per tenant, visits (30 minutes idle ends one), and the roll-up into monthly
//! totals once the detail is older than the retention.

mod enrich;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use jiff::Timestamp;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use enrich::{clip, visitor_id, Enricher, Location, Skip, MAX_PATH};
// The replicated side (page views as kept, their tally) is the domain's.
pub use roomraft_domain::analytics::{
    oldest_salt_day, retention_cutoff, utc_day, Changes, DayKey, DayStats, Device, MonthKey,
    PageView, Report, Row, Tally, Totals, Visitor, VisitorKey, IDLE,
};

use crate::limits::{quota, whole_seconds};
use crate::Refusal;

/// `[analytics]` in node.toml. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Record page views at all.
    pub enabled: bool,
    /// A MaxMind-format City or Country database (GeoLite2, GeoIP2 or compatible). Without one,
    /// or when it cannot be read, locations are unknown and everything else still works.
    pub geoip_database: Option<PathBuf>,
    /// Months of daily detail kept; older days are rolled up into monthly totals.
    pub retention_months: u16,
    /// Page views one client address may record per minute, with a burst.
    pub per_address_per_minute: u32,
    pub per_address_burst: u32,
    /// Page views held on a node waiting for the next batch; beyond this they are dropped.
    pub queue_capacity: usize,
    /// Most page views in one replicated batch.
    pub batch_max: usize,
    /// How often a node sends its batch.
    pub flush_interval_ms: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            enabled: true,
            geoip_database: None,
            retention_months: 13,
            per_address_per_minute: 60,
            per_address_burst: 30,
            queue_capacity: 20_000,
            batch_max: 2_000,
            flush_interval_ms: 2_000,
        }
    }
}

impl AnalyticsConfig {
    /// Checks the numbers; the database is checked (leniently) when it is opened.
    pub fn validate(&self) -> Result<(), String> {
        if self.retention_months == 0 || self.retention_months > 1200 {
            return Err("retention_months must be between 1 and 1200".into());
        }
        if self.queue_capacity == 0 || self.batch_max == 0 {
            return Err("queue_capacity and batch_max must be at least 1".into());
        }
        if !(100..=600_000).contains(&self.flush_interval_ms) {
            return Err("flush_interval_ms must be between 100 and 600000".into());
        }
        Ok(())
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

/// A page view as the request saw it. Holds the address and user agent, so it lives only in
/// the capturing node's memory until it is enriched.
#[derive(Debug, Clone)]
pub struct Hit {
    pub tenant: u64,
    pub at: Timestamp,
    pub client: IpAddr,
    pub user_agent: String,
    /// The page's path, with any query string (only UTM and `ref` parameters are kept).
    pub path: String,
    /// The `Referer` the page was reached from.
    pub referrer: Option<String>,
    /// The site's own host name: a referrer from it is internal navigation, not a source.
    pub host: Option<String>,
}

/// Why a hit was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    RateLimited(Refusal),
    Full,
}

/// The per-node queue of captured hits, behind a per-address limit.
pub struct Collector {
    queue: Mutex<VecDeque<Hit>>,
    capacity: usize,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl Collector {
    pub fn new(c: &AnalyticsConfig) -> Self {
        Collector {
            queue: Mutex::new(VecDeque::new()),
            capacity: c.queue_capacity,
            limiter: RateLimiter::keyed(quota(
                Duration::from_secs(60),
                c.per_address_per_minute,
                c.per_address_burst,
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one of `client`'s page views, or says when it may send the next.
    pub fn admit(&self, client: IpAddr) -> Result<(), Refusal> {
        self.limiter
            .check_key(&client)
            .map_err(|not_until| Refusal {
                scope: "analytics",
                retry_after_secs: whole_seconds(not_until.wait_time_from(self.clock.now())),
            })
    }

    /// Queues a hit unless its address is over the limit or the queue is full.
    pub fn record(&self, hit: Hit) -> Result<(), NotQueued> {
        self.admit(hit.client).map_err(NotQueued::RateLimited)?;
        self.enqueue(hit)
    }

    /// Queues a hit already admitted, unless the queue is full.
    pub fn enqueue(&self, hit: Hit) -> Result<(), NotQueued> {
        let mut q = self.queue.lock();
        if q.len() >= self.capacity {
            return Err(NotQueued::Full);
        }
        q.push_back(hit);
        Ok(())
    }

    /// Takes up to `max` hits, oldest first.
    pub fn drain(&self, max: usize) -> Vec<Hit> {
        let mut q = self.queue.lock();
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// Hits waiting.
    pub fn pending(&self) -> usize {
        self.queue.lock().len()
    }

    /// Drops refilled rate-limit buckets (bounded memory under a flood of addresses).
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Addresses the limiter remembers.
    pub fn tracked_addresses(&self) -> usize {
        self.limiter.len()
    }
}

/// The GeoIP database tests use: `ROOMRAFT_TEST_GEOIP` when set (`scripts/test.sh` points it
/// at a downloaded GeoLite2 database when `../shared/geoip` is absent), else MaxMind's test
/// database in `../shared/geoip`. Also says whether it is MaxMind's test database, whose
/// addresses have known cities (London, Milton, Linköping …).
pub fn test_database() -> (PathBuf, bool) {
    if let Some(p) = std::env::var_os("ROOMRAFT_TEST_GEOIP") {
        let p = PathBuf::from(p);
        let test_db = p.to_string_lossy().contains("-Test");
        return (p, test_db);
    }
    let shared =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/geoip/GeoIP2-City-Test.mmdb");
    assert!(
        shared.exists(),
        "no GeoIP database for tests: run scripts/test.sh (it fetches one) or set ROOMRAFT_TEST_GEOIP"
    );
    (shared, true)
}

#[cfg(test)]
mod tests;
