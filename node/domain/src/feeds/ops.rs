//! Commands of this area: one struct each, and the enum `Op::Feeds` holds.

use serde::{Deserialize, Serialize};

use crate::model::Feed;
use crate::model::Outcome;
use crate::op::replies;

use crate::model::{FeedId, FeedTarget, TenantId};

/// Calendar feeds: secret iCalendar addresses of a room, a user or the school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOp {
    CreateFeed(CreateFeed),
    RevokeFeed(RevokeFeed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateFeed {
    pub tenant: TenantId,
    pub target: FeedTarget,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeFeed {
    pub tenant: TenantId,
    pub feed: FeedId,
}

replies! {
    CreateFeed: Feed { Outcome::FeedCreated(f) => f }
    RevokeFeed: Feed { Outcome::Feed(f) => f }
}
