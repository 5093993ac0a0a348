//! The feeds area's state: calendar feeds.

use std::collections::BTreeMap;

use crate::model::Feed;

/// The feeds area's part of `Bookings`. Its fields are private to `feeds/`: only this area's
/// apply and `index_feeds` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    /// By SHA-256 of the URL's secret.
    pub(super) feeds: BTreeMap<String, Feed>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl FeedState {
    pub(crate) fn feeds(&self) -> &BTreeMap<String, Feed> {
        &self.feeds
    }
}
