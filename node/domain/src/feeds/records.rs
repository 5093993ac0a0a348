//! The feeds area's stored records.

use crate::apply::{id20, tkey, Bookings};
use crate::model::Feed;
use crate::quotas::Kind;
use crate::records::Record;

/// A stored record of the feeds area; its wire tag is in `records.rs`'s table. A revoked feed
/// stays, marked revoked.
#[derive(Debug, Clone)]
pub(crate) enum FeedRecord {
    Feed(Feed),
}

impl FeedRecord {
    /// Where the record lives: under its school's `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            FeedRecord::Feed(f) => tkey(f.tenant, "feed", id20(f.id)),
        }
    }
}

impl From<FeedRecord> for Record {
    fn from(record: FeedRecord) -> Record {
        Record::Feeds(record)
    }
}

impl Bookings {
    pub(crate) fn index_feeds(&mut self, record: FeedRecord) {
        match record {
            FeedRecord::Feed(f) => {
                let was = self
                    .feeds
                    .feeds
                    .get(&f.sha256)
                    .is_some_and(|o| o.revoked_at.is_none());
                let is = f.revoked_at.is_none();
                self.count(f.tenant, Kind::Feed, is as i64 - was as i64);
                self.feeds.feeds.insert(f.sha256.clone(), f);
            }
        }
    }

    pub(crate) fn feed_records(&self, out: &mut Vec<Record>) {
        out.extend(
            self.feeds
                .feeds
                .values()
                .cloned()
                .map(|f| Record::Feeds(FeedRecord::Feed(f))),
        );
    }
}
