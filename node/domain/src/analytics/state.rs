//! The analytics area's state: every school's tally and the salts keying visitor ids.

use std::collections::BTreeMap;

use super::Tally;

/// The analytics area's part of `Bookings`. Its fields are private to `analytics/`: only this area's
/// apply and `index_analytics` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyticsState {
    /// Usage analytics of every tenant.
    pub(super) tally: Tally,
    /// Salts keying visitor ids, by UTC day (yesterday's and today's only).
    pub(super) salts: BTreeMap<jiff::civil::Date, String>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl AnalyticsState {
    #[cfg(test)]
    pub(crate) fn tally(&self) -> &Tally {
        &self.tally
    }
}
