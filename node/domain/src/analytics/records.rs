//! The analytics area's stored records: the daily salts, and the tally's days, months and
//! visitors. Salts and visitors live under `analytics/` and never leave the cluster.

use jiff::civil::Date;

use super::{DayStats, MonthKey, Totals, Visitor, VisitorKey};
use crate::apply::{tkey, Bookings};
use crate::model::TenantId;
use crate::records::Record;

/// A stored record of the analytics area; its wire tag is in `records.rs`'s table.
#[derive(Debug, Clone)]
pub(crate) enum AnalyticsRecord {
    Salt((Date, String)),
    Day((TenantId, Date, DayStats)),
    Month((MonthKey, Totals)),
    Visitor((VisitorKey, Visitor)),
}

/// Records that never leave the cluster: the salts (destroyed after two days, so a backup must
/// not keep them) and the visitor state keyed by them.
pub(crate) const PRIVATE_PREFIX: &[u8] = b"analytics/";

impl AnalyticsRecord {
    /// Where the record lives: days and months under their school's `t/{tenant}/`, salts and
    /// visitors under [`PRIVATE_PREFIX`].
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            AnalyticsRecord::Salt((day, _)) => format!("analytics/salt/{day}").into_bytes(),
            AnalyticsRecord::Day((t, day, _)) => tkey(*t, "analytics-day", day),
            AnalyticsRecord::Month(((t, y, m), _)) => {
                tkey(*t, "analytics-month", format!("{y:04}-{m:02}"))
            }
            AnalyticsRecord::Visitor((k, _)) => visitor_key(k),
        }
    }
}

pub(crate) fn visitor_key((day, tenant, id): &VisitorKey) -> Vec<u8> {
    format!("analytics/visitor/{day}/{tenant:020}/{}", hex::encode(id)).into_bytes()
}

impl From<AnalyticsRecord> for Record {
    fn from(record: AnalyticsRecord) -> Record {
        Record::Analytics(record)
    }
}

impl Bookings {
    pub(crate) fn index_analytics(&mut self, record: AnalyticsRecord) {
        match record {
            AnalyticsRecord::Salt((day, salt)) => {
                self.analytics.salts.insert(day, salt);
            }
            AnalyticsRecord::Day((t, day, stats)) => {
                self.analytics.tally.days.insert((t, day), stats);
            }
            AnalyticsRecord::Month((key, totals)) => {
                self.analytics.tally.months.insert(key, totals);
            }
            AnalyticsRecord::Visitor((key, v)) => {
                self.analytics.tally.visitors.insert(key, v);
            }
        }
    }

    /// Salts are deleted as they expire; the tally's records through `persist_analytics`.
    pub(crate) fn discard_analytics(&mut self, record: AnalyticsRecord) {
        match record {
            AnalyticsRecord::Salt((day, _)) => {
                self.analytics.salts.remove(&day);
            }
            other => unreachable!("records of this kind are deleted by the tally: {other:?}"),
        }
    }

    pub(crate) fn analytics_records(&self, out: &mut Vec<Record>) {
        let salts =
            (self.analytics.salts.iter()).map(|(d, s)| AnalyticsRecord::Salt((*d, s.clone())));
        let days = (self.analytics.tally.days.iter())
            .map(|(&(t, d), s)| AnalyticsRecord::Day((t, d, s.clone())));
        let months =
            (self.analytics.tally.months.iter()).map(|(k, t)| AnalyticsRecord::Month((*k, *t)));
        let visitors = (self.analytics.tally.visitors.iter())
            .map(|(k, v)| AnalyticsRecord::Visitor((*k, v.clone())));
        let records = salts.chain(days).chain(months).chain(visitors);
        out.extend(records.map(Record::Analytics));
    }
}
