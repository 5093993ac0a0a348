//! Usage analytics in the replicated state: the daily salts that key visitor ids (kept two days,
//! never backed up), page-view batches counted into each tenant's days, and the roll-up of old
//! days into monthly totals.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use jiff::{SignedDuration, ToSpan};
use roomraft_replicated::WriteSet;
use serde::{Deserialize, Serialize};

mod ops;
mod records;
mod state;
mod tally;
pub use ops::{AnalyticsOp, RecordPageViews, SetAnalyticsSalt};
pub(crate) use records::{visitor_key, AnalyticsRecord, PRIVATE_PREFIX};
pub(crate) use state::AnalyticsState;
pub use tally::{
    retention_cutoff, Changes, DayKey, DayStats, MonthKey, Report, Row, Tally, Totals, Visitor,
    VisitorKey, IDLE,
};

use super::apply::{forbidden, invalid, Bookings, Ctx, Res};
use super::calendar::local_date;
use super::model::{Outcome, Role, TenantId};
use crate::records::Record;

/// The UTC day of an instant: the day whose salt keys a visitor id made then.
pub fn utc_day(t: Timestamp) -> jiff::civil::Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// The oldest salt day still kept at `now`: yesterday's (its visitors' ids may still arrive in
/// a batch). Older salts, and the visitor state keyed by them, are destroyed.
pub fn oldest_salt_day(now: Timestamp) -> jiff::civil::Date {
    utc_day(now).yesterday().expect("a day before a real date")
}

/// Device classes, from the user agent. Variants are only ever appended (stored in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Other,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Other => "other",
        }
    }
}

/// A page view as replicated and kept: nothing in it identifies a person. Stored in the Raft
/// log inside a versioned command, so fields are only ever appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    pub tenant: u64,
    pub at: Timestamp,
    /// Path plus only its UTM and `ref` query parameters.
    pub path: String,
    /// Where the visit came from: `utm_source`, `ref`, or the referrer's domain.
    pub source: Option<String>,
    pub browser: String,
    pub os: String,
    pub device: Device,
    /// ISO 3166 alpha-2 code.
    pub country: Option<String>,
    /// English city name.
    pub city: Option<String>,
    /// Keyed hash of (the day's salt, address, user agent, tenant): unlinkable across days.
    pub visitor: [u8; 16],
}

/// Longest path kept, in bytes.
pub const MAX_PATH: usize = 512;
/// Most page views in one batch.
pub const MAX_BATCH: usize = 10_000;
/// How far past its command's time a page view may be stamped (clocks of two nodes differ).
const FUTURE_SLACK: SignedDuration = SignedDuration::from_mins(5);

impl Bookings {
    pub(crate) fn apply_analytics(
        &mut self,
        ctx: &mut Ctx,
        op: &AnalyticsOp,
        writes: &mut WriteSet,
    ) -> Res {
        if ctx.actor.role != Role::Operator || ctx.actor.tenant.is_some() {
            return Err(forbidden("only the cluster itself records analytics"));
        }
        match op {
            AnalyticsOp::SetAnalyticsSalt(SetAnalyticsSalt { day, salt }) => {
                if salt.len() != 64 || !salt.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("salt", "must be 32 bytes in hex"));
                }
                let today = utc_day(ctx.time);
                let latest = today.checked_add(1.day()).expect("a real date");
                if *day < oldest_salt_day(self.clock) || *day > latest {
                    return Err(invalid("day", "must be yesterday, today or tomorrow (UTC)"));
                }
                if !self.analytics.salts.contains_key(day) {
                    self.store(AnalyticsRecord::Salt((*day, salt.clone())), writes);
                }
                Ok(Outcome::Done)
            }
            AnalyticsOp::RecordPageViews(RecordPageViews {
                views,
                retention_months,
            }) => {
                if views.len() > MAX_BATCH {
                    return Err(invalid(
                        "views",
                        format!("at most {MAX_BATCH} page views per batch"),
                    ));
                }
                if !(1..=1200).contains(retention_months) {
                    return Err(invalid("retention_months", "must be 1 to 1200"));
                }
                let oldest = oldest_salt_day(self.clock);
                let newest = ctx.time + FUTURE_SLACK;
                let mut zones: BTreeMap<TenantId, Option<TimeZone>> = BTreeMap::new();
                let mut changes = Changes::default();
                let (mut recorded, mut skipped) = (0u32, 0u32);
                for v in views {
                    let zone = zones.entry(v.tenant).or_insert_with(|| {
                        let t = self.school.tenants().get(&v.tenant)?;
                        TimeZone::get(&t.time_zone).ok()
                    });
                    let ok = zone.is_some()
                        && v.at <= newest
                        && utc_day(v.at) >= oldest
                        && well_formed(v);
                    match zone {
                        Some(tz) if ok => {
                            let local = local_date(tz, v.at);
                            self.analytics.tally.add(v, local, &mut changes);
                            recorded += 1;
                        }
                        _ => skipped += 1,
                    }
                }
                let cutoff = retention_cutoff(utc_day(ctx.time), *retention_months);
                self.analytics.tally.roll_up(cutoff, &mut changes);
                self.persist_analytics(changes, writes);
                Ok(Outcome::PageViewsRecorded { recorded, skipped })
            }
        }
    }

    /// Writes (or deletes) every analytics record `changes` names, from the tally as it is now.
    pub(super) fn persist_analytics(&mut self, changes: Changes, writes: &mut WriteSet) {
        for (tenant, day) in changes.days {
            let rec = AnalyticsRecord::Day((tenant, day, Default::default()));
            match self.analytics.tally.days.get(&(tenant, day)) {
                Some(stats) => {
                    let rec = Record::from(AnalyticsRecord::Day((tenant, day, stats.clone())));
                    writes.put(rec.key(), rec.encode())
                }
                None => writes.delete(rec.key()),
            }
        }
        for key in changes.months {
            let totals = self
                .analytics
                .tally
                .months
                .get(&key)
                .copied()
                .unwrap_or_default();
            let rec = Record::from(AnalyticsRecord::Month((key, totals)));
            writes.put(rec.key(), rec.encode());
        }
        for key in changes.visitors {
            match self.analytics.tally.visitors.get(&key) {
                Some(v) => {
                    let rec = Record::from(AnalyticsRecord::Visitor((key, v.clone())));
                    writes.put(rec.key(), rec.encode());
                }
                None => writes.delete(visitor_key(&key)),
            }
        }
    }

    /// Destroys salts and visitor state from before yesterday (UTC), as the clock passes.
    pub(super) fn expire_analytics(&mut self, writes: &mut WriteSet) {
        let keep = oldest_salt_day(self.clock);
        while let Some((&day, salt)) = self.analytics.salts.first_key_value() {
            if day >= keep {
                break;
            }
            let rec = AnalyticsRecord::Salt((day, salt.clone()));
            self.discard(rec, writes);
        }
        let mut changes = Changes::default();
        self.analytics.tally.expire_visitors(keep, &mut changes);
        self.persist_analytics(changes, writes);
    }

    /// The salt that keys visitor ids on UTC `day`, while it is kept.
    /// Visitors remembered for the days not yet rolled up (each a private record).
    pub fn analytics_visitors(&self) -> usize {
        self.analytics.tally.visitors.len()
    }

    pub fn analytics_salt(&self, day: Date) -> Option<&str> {
        self.analytics.salts.get(&day).map(String::as_str)
    }

    /// A tenant's analytics over local days `from..=to`.
    pub(crate) fn analytics_report(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
        limit: usize,
    ) -> Report {
        self.analytics.tally.report(tenant, from, to, limit)
    }
}

/// What every replica checks of a page view, whatever node sent it.
fn well_formed(v: &PageView) -> bool {
    let short = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
    v.path.starts_with('/')
        && short(&v.path, MAX_PATH)
        && v.source.as_deref().is_none_or(|s| short(s, 100))
        && short(&v.browser, 64)
        && short(&v.os, 64)
        && v.country.as_deref().is_none_or(|c| short(c, 8))
        && v.city.as_deref().is_none_or(|c| short(c, 100))
}

#[cfg(test)]
mod tests;
