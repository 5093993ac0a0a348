//! The replicated side of analytics: daily aggregates per tenant, visits, and the roll-up of old
//! detail into monthly totals. Everything here is deterministic; the caller supplies each page
//! view's local day and persists what [`Changes`] names.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::PageView;

/// A visit ends after this long without a page view.
pub const IDLE: SignedDuration = SignedDuration::from_mins(30);
/// Distinct keys kept per dimension per day; the rest are counted under [`OTHER`].
const MAX_KEYS: usize = 500;
/// Distinct pages kept per day.
const MAX_PAGES: usize = 2_000;
/// Where values beyond the caps are counted.
pub const OTHER: &str = "(other)";
/// The source of a visit without a referrer or campaign tag.
pub const DIRECT: &str = "(direct)";
/// An unknown country or city.
pub const UNKNOWN: &str = "(unknown)";

/// Counts that survive the roll-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub views: u64,
    /// Distinct visitors per day, summed over days (visitor ids change daily by design).
    pub visitors: u64,
    pub visits: u64,
    /// Visits of one page.
    pub bounces: u64,
    /// Sum of visit lengths, first page view to last.
    pub duration_secs: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.views += o.views;
        self.visitors += o.visitors;
        self.visits += o.visits;
        self.bounces += o.bounces;
        self.duration_secs += o.duration_secs;
    }
}

/// One tenant's day, in its own time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    pub totals: Totals,
    /// Page views by path (without query).
    pub pages: BTreeMap<String, u64>,
    /// Visits by source, country, city (`City, CC`), browser, OS and device class.
    pub sources: BTreeMap<String, u64>,
    pub countries: BTreeMap<String, u64>,
    pub cities: BTreeMap<String, u64>,
    pub browsers: BTreeMap<String, u64>,
    pub oses: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, u64>,
}

/// Takes back one count of `key` (or of [`OTHER`], where it was counted when over the cap).
fn unbump(map: &mut BTreeMap<String, u64>, key: &str) {
    let key = if map.contains_key(key) { key } else { OTHER };
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, cap: usize) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < cap {
        map.insert(key.to_string(), 1);
    } else {
        *map.entry(OTHER.to_string()).or_default() += 1;
    }
}

/// The visit a visitor is in (or was last in), keyed by the salt day of its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    pub visit_start: Timestamp,
    pub last: Timestamp,
    pub pages: u32,
    /// The local day the visit is counted on (the day it began).
    pub visit_day: Date,
    /// The last local day this visitor was counted as a unique visitor.
    pub counted_day: Date,
    /// Where the visit came from: its earliest page view's source.
    pub source: Option<String>,
}

/// (tenant, local day).
pub type DayKey = (u64, Date);
/// (tenant, year, month).
pub type MonthKey = (u64, i16, i8);
/// (UTC day of the salt, tenant, visitor id).
pub type VisitorKey = (Date, u64, [u8; 16]);

/// What an operation touched: the caller writes each key's current value, or deletes it when
/// the tally no longer has it.
#[derive(Debug, Default)]
pub struct Changes {
    pub days: BTreeSet<DayKey>,
    pub months: BTreeSet<MonthKey>,
    pub visitors: BTreeSet<VisitorKey>,
}

/// Every tenant's analytics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub days: BTreeMap<DayKey, DayStats>,
    pub months: BTreeMap<MonthKey, Totals>,
    pub visitors: BTreeMap<VisitorKey, Visitor>,
}

/// The first day whose detail is kept: the first of the month `months` before `today`'s.
pub fn retention_cutoff(today: Date, months: u16) -> Date {
    let first = today.first_of_month();
    first
        .checked_sub(jiff::Span::new().months(i64::from(months)))
        .unwrap_or(Date::MIN)
}

fn secs(d: SignedDuration) -> u64 {
    d.as_secs().max(0) as u64
}

impl Tally {
    /// Counts a page view on `local_day` (the view's day in the tenant's time zone).
    pub fn add(&mut self, view: &PageView, local_day: Date, changes: &mut Changes) {
        let tenant = view.tenant;
        let page = view.path.split('?').next().unwrap_or("/");
        let day = self.days.entry((tenant, local_day)).or_default();
        day.totals.views += 1;
        bump(&mut day.pages, page, MAX_PAGES);
        changes.days.insert((tenant, local_day));

        let key: VisitorKey = (super::utc_day(view.at), tenant, view.visitor);
        changes.visitors.insert(key);
        let at = view.at;
        if let Some(v) = self.visitors.get_mut(&key) {
            let same_visit = at <= v.last + IDLE && at + IDLE >= v.visit_start;
            if same_visit {
                let before = v.last.duration_since(v.visit_start);
                let (start, last) = (v.visit_start.min(at), v.last.max(at));
                let after = last.duration_since(start);
                let was_bounce = v.pages == 1;
                // Batches from different nodes may arrive out of order: the visit's source is
                // its earliest view's.
                let new_source = (at < v.visit_start && view.source != v.source)
                    .then(|| std::mem::replace(&mut v.source, view.source.clone()));
                v.visit_start = start;
                v.last = last;
                v.pages += 1;
                // The visit's day may already be rolled up; then only the view above counts.
                if let Some(d) = self.days.get_mut(&(tenant, v.visit_day)) {
                    if was_bounce {
                        d.totals.bounces = d.totals.bounces.saturating_sub(1);
                    }
                    d.totals.duration_secs += secs(after) - secs(before).min(secs(after));
                    if let Some(old) = new_source {
                        unbump(&mut d.sources, old.as_deref().unwrap_or(DIRECT));
                        bump(
                            &mut d.sources,
                            view.source.as_deref().unwrap_or(DIRECT),
                            MAX_KEYS,
                        );
                    }
                    changes.days.insert((tenant, v.visit_day));
                }
                return;
            }
        }
        let new_visitor = self
            .visitors
            .get(&key)
            .is_none_or(|v| v.counted_day != local_day);
        let day = self.days.get_mut(&(tenant, local_day)).expect("made above");
        let t = &mut day.totals;
        t.visits += 1;
        t.bounces += 1;
        if new_visitor {
            t.visitors += 1;
        }
        bump(
            &mut day.sources,
            view.source.as_deref().unwrap_or(DIRECT),
            MAX_KEYS,
        );
        bump(
            &mut day.countries,
            view.country.as_deref().unwrap_or(UNKNOWN),
            MAX_KEYS,
        );
        let city = match (&view.city, &view.country) {
            (Some(city), Some(cc)) => format!("{city}, {cc}"),
            (Some(city), None) => city.clone(),
            (None, _) => UNKNOWN.to_string(),
        };
        bump(&mut day.cities, &city, MAX_KEYS);
        bump(&mut day.browsers, &view.browser, MAX_KEYS);
        bump(&mut day.oses, &view.os, MAX_KEYS);
        bump(&mut day.devices, view.device.as_str(), MAX_KEYS);
        self.visitors.insert(
            key,
            Visitor {
                visit_start: at,
                last: at,
                pages: 1,
                visit_day: local_day,
                counted_day: local_day,
                source: view.source.clone(),
            },
        );
    }

    /// Forgets visitors whose ids were made with a salt from before `keep_from`.
    pub fn expire_visitors(&mut self, keep_from: Date, changes: &mut Changes) {
        while let Some((&key, _)) = self.visitors.first_key_value() {
            if key.0 >= keep_from {
                break;
            }
            self.visitors.remove(&key);
            changes.visitors.insert(key);
        }
    }

    /// Rolls every day before `cutoff` into its month's totals and drops its detail.
    /// Idempotent: rolling up again with the same cutoff changes nothing.
    pub fn roll_up(&mut self, cutoff: Date, changes: &mut Changes) {
        let old: Vec<DayKey> = self
            .days
            .keys()
            .filter(|(_, d)| *d < cutoff)
            .copied()
            .collect();
        for key in old {
            let stats = self.days.remove(&key).expect("listed above");
            let month = (key.0, key.1.year(), key.1.month());
            self.months.entry(month).or_default().add(&stats.totals);
            changes.days.insert(key);
            changes.months.insert(month);
        }
    }

    /// One tenant's report over `from..=to` (local days), with the `limit` largest entries of
    /// each breakdown.
    pub fn report(&self, tenant: u64, from: Date, to: Date, limit: usize) -> Report {
        let mut totals = Totals::default();
        let mut merged = DayStats::default();
        let mut daily = Vec::new();
        for (&(_, date), d) in self.days.range((tenant, from)..=(tenant, to)) {
            totals.add(&d.totals);
            for (into, from) in [
                (&mut merged.pages, &d.pages),
                (&mut merged.sources, &d.sources),
                (&mut merged.countries, &d.countries),
                (&mut merged.cities, &d.cities),
                (&mut merged.browsers, &d.browsers),
                (&mut merged.oses, &d.oses),
                (&mut merged.devices, &d.devices),
            ] {
                for (k, n) in from {
                    *into.entry(k.clone()).or_default() += n;
                }
            }
            daily.push(Row::new(date.to_string(), &d.totals));
        }
        // Rolled-up months count when the whole month is inside the range.
        let mut monthly = Vec::new();
        for (&(_, y, m), t) in self
            .months
            .range((tenant, i16::MIN, i8::MIN)..=(tenant, i16::MAX, i8::MAX))
        {
            let first = Date::new(y, m, 1).expect("a stored month is valid");
            if first >= from && first.last_of_month() <= to {
                totals.add(t);
                monthly.push(Row::new(format!("{y:04}-{m:02}"), t));
            }
        }
        let top = |m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let detail_from = self
            .days
            .range((tenant, Date::MIN)..=(tenant, Date::MAX))
            .next()
            .map(|((_, d), _)| *d);
        Report {
            page_views: totals.views,
            unique_visitors: totals.visitors,
            visits: totals.visits,
            bounce_rate: (totals.visits > 0).then(|| totals.bounces as f64 / totals.visits as f64),
            average_visit_seconds: (totals.visits > 0)
                .then(|| totals.duration_secs as f64 / totals.visits as f64),
            views_per_visit: (totals.visits > 0)
                .then(|| totals.views as f64 / totals.visits as f64),
            top_pages: top(&merged.pages),
            referrers: top(&merged.sources),
            countries: top(&merged.countries),
            cities: top(&merged.cities),
            browsers: top(&merged.browsers),
            operating_systems: top(&merged.oses),
            devices: top(&merged.devices),
            daily,
            monthly,
            detail_from,
        }
    }
}

/// One day's or one month's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub period: String,
    pub page_views: u64,
    pub unique_visitors: u64,
    pub visits: u64,
    pub bounces: u64,
    pub duration_seconds: u64,
}

impl Row {
    fn new(period: String, t: &Totals) -> Row {
        Row {
            period,
            page_views: t.views,
            unique_visitors: t.visitors,
            visits: t.visits,
            bounces: t.bounces,
            duration_seconds: t.duration_secs,
        }
    }
}

/// A tenant's analytics over a date range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub page_views: u64,
    pub unique_visitors: u64,
    pub visits: u64,
    /// Share of visits that saw one page; none without visits.
    pub bounce_rate: Option<f64>,
    pub average_visit_seconds: Option<f64>,
    pub views_per_visit: Option<f64>,
    /// (path, page views).
    pub top_pages: Vec<(String, u64)>,
    /// (source, visits), with `(direct)` for none.
    pub referrers: Vec<(String, u64)>,
    pub countries: Vec<(String, u64)>,
    pub cities: Vec<(String, u64)>,
    pub browsers: Vec<(String, u64)>,
    pub operating_systems: Vec<(String, u64)>,
    pub devices: Vec<(String, u64)>,
    /// Days with detail in the range.
    pub daily: Vec<Row>,
    /// Rolled-up months wholly inside the range (their detail is gone).
    pub monthly: Vec<Row>,
    /// The tenant's earliest day that still has detail.
    pub detail_from: Option<Date>,
}
