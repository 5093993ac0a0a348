//! The feeds area's entities.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{FeedId, RoomId, TenantId, UserId};

/// A secret, revocable iCalendar feed of a room or a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    pub id: FeedId,
    pub sha256: String,
    pub tenant: TenantId,
    pub target: FeedTarget,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedTarget {
    Room(RoomId),
    User(UserId),
}
