//! Usage analytics in the replicated state: the daily salts that key visitor ids (kept two days,
//! never backed up), page-view batches counted into each tenant's days, and the roll-up of old
//! days into monthly totals.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, ToSpan};
use roomraft_cluster::WriteSet;
use roomraft_ops::analytics::{
    oldest_salt_day as keep_from, retention_cutoff, utc_day, Changes, Report, MAX_PATH,
};

use super::apply::{forbidden, invalid, Bookings, Ctx, Record, Res};
use super::calendar::local_date;
use super::model::*;

/// Most page views in one batch.
pub const MAX_BATCH: usize = 10_000;
/// How far past its command's time a page view may be stamped (clocks of two nodes differ).
const FUTURE_SLACK: SignedDuration = SignedDuration::from_mins(5);

impl Bookings {
    pub(super) fn analytics(&mut self, ctx: &mut Ctx, op: &Op, writes: &mut WriteSet) -> Res {
        if ctx.actor.role != Role::Operator || ctx.actor.tenant.is_some() {
            return Err(forbidden("only the cluster itself records analytics"));
        }
        match op {
            Op::SetAnalyticsSalt { day, salt } => {
                if salt.len() != 64 || !salt.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("salt", "must be 32 bytes in hex"));
                }
                let today = utc_day(ctx.time);
                let latest = today.checked_add(1.day()).expect("a real date");
                if *day < keep_from(self.clock) || *day > latest {
                    return Err(invalid("day", "must be yesterday, today or tomorrow (UTC)"));
                }
                if !self.salts.contains_key(day) {
                    self.store(Record::AnalyticsSalt(*day, salt.clone()), writes);
                }
                Ok(Outcome::Done)
            }
            Op::RecordPageViews {
                views,
                retention_months,
            } => {
                if views.len() > MAX_BATCH {
                    return Err(invalid(
                        "views",
                        format!("at most {MAX_BATCH} page views per batch"),
                    ));
                }
                if !(1..=1200).contains(retention_months) {
                    return Err(invalid("retention_months", "must be 1 to 1200"));
                }
                let oldest = keep_from(self.clock);
                let newest = ctx.time + FUTURE_SLACK;
                let mut zones: HashMap<TenantId, Option<TimeZone>> = HashMap::new();
                let mut changes = Changes::default();
                let (mut recorded, mut skipped) = (0u32, 0u32);
                for v in views {
                    let zone = zones.entry(v.tenant).or_insert_with(|| {
                        let t = self.tenants.get(&v.tenant)?;
                        TimeZone::get(&t.time_zone).ok()
                    });
                    let ok = zone.is_some()
                        && v.at <= newest
                        && utc_day(v.at) >= oldest
                        && well_formed(v);
                    match zone {
                        Some(tz) if ok => {
                            let local = local_date(tz, v.at);
                            self.tally.add(v, local, &mut changes);
                            recorded += 1;
                        }
                        _ => skipped += 1,
                    }
                }
                let cutoff = retention_cutoff(utc_day(ctx.time), *retention_months);
                self.tally.roll_up(cutoff, &mut changes);
                self.persist_analytics(changes, writes);
                Ok(Outcome::PageViewsRecorded { recorded, skipped })
            }
            _ => unreachable!("not an analytics op"),
        }
    }

    /// Writes (or deletes) every analytics record `changes` names, from the tally as it is now.
    pub(super) fn persist_analytics(&mut self, changes: Changes, writes: &mut WriteSet) {
        for (tenant, day) in changes.days {
            let rec = Record::AnalyticsDay(tenant, day, Default::default());
            match self.tally.days.get(&(tenant, day)) {
                Some(stats) => writes.put(
                    rec.key(),
                    Record::AnalyticsDay(tenant, day, stats.clone()).encode(),
                ),
                None => writes.delete(rec.key()),
            }
        }
        for key in changes.months {
            let totals = self.tally.months.get(&key).copied().unwrap_or_default();
            let rec = Record::AnalyticsMonth(key, totals);
            writes.put(rec.key(), rec.encode());
        }
        for key in changes.visitors {
            match self.tally.visitors.get(&key) {
                Some(v) => {
                    let rec = Record::AnalyticsVisitor(key, v.clone());
                    writes.put(rec.key(), rec.encode());
                }
                None => writes.delete(Record::visitor_key(&key)),
            }
        }
    }

    /// Destroys salts and visitor state from before yesterday (UTC), as the clock passes.
    pub(super) fn expire_analytics(&mut self, writes: &mut WriteSet) {
        let keep = keep_from(self.clock);
        while let Some((&day, salt)) = self.salts.first_key_value() {
            if day >= keep {
                break;
            }
            let rec = Record::AnalyticsSalt(day, salt.clone());
            self.discard(rec, writes);
        }
        let mut changes = Changes::default();
        self.tally.expire_visitors(keep, &mut changes);
        self.persist_analytics(changes, writes);
    }

    /// The salt that keys visitor ids on UTC `day`, while it is kept.
    pub fn analytics_salt(&self, day: Date) -> Option<&str> {
        self.salts.get(&day).map(String::as_str)
    }

    /// A tenant's analytics over local days `from..=to`.
    pub fn analytics_report(&self, tenant: TenantId, from: Date, to: Date, limit: usize) -> Report {
        self.tally.report(tenant, from, to, limit)
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
