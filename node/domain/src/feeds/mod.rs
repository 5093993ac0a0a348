//! Calendar feeds: secret iCalendar addresses of a room's or a user's bookings.

mod apply;
mod model;
mod ops;
mod records;
mod state;

pub use model::{Feed, FeedTarget};
pub use ops::{CreateFeed, FeedOp, RevokeFeed};
pub(crate) use records::FeedRecord;
pub(crate) use state::FeedState;

use roomraft_replicated::WriteSet;

use crate::apply::{Bookings, Ctx, Res};

impl Bookings {
    pub(crate) fn apply_feeds(&mut self, ctx: &mut Ctx, op: &FeedOp, writes: &mut WriteSet) -> Res {
        match op {
            FeedOp::CreateFeed(CreateFeed {
                tenant,
                target,
                sha256,
            }) => self.create_feed(ctx, *tenant, *target, sha256, writes),
            FeedOp::RevokeFeed(RevokeFeed { tenant, feed }) => {
                self.revoke_feed(ctx, *tenant, *feed, writes)
            }
        }
    }
}
