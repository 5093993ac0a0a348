//! The system area's entities: the cluster identity, backup slots and quotas.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The most records of each kind one school may store (an operator's cluster setting). A
/// command that would pass one is refused with a clear error, so no school can swell every
/// node's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    pub rooms: u64,
    pub users: u64,
    pub departments: u64,
    pub lessons: u64,
    /// Bookings of every status, past ones included.
    pub bookings: u64,
    /// API tokens not revoked.
    pub api_tokens: u64,
    /// Calendar feeds not revoked.
    pub feeds: u64,
    pub enquiries: u64,
}

impl Default for Quotas {
    /// Generous for the largest school: ten times a big secondary's rooms, staff and timetable.
    fn default() -> Self {
        Quotas {
            rooms: 2_000,
            users: 10_000,
            departments: 500,
            lessons: 20_000,
            bookings: 2_000_000,
            api_tokens: 500,
            feeds: 10_000,
            enquiries: 50_000,
        }
    }
}

impl Quotas {
    /// Every cap with its name.
    pub fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("rooms", self.rooms),
            ("users", self.users),
            ("departments", self.departments),
            ("lessons", self.lessons),
            ("bookings", self.bookings),
            ("api_tokens", self.api_tokens),
            ("feeds", self.feeds),
            ("enquiries", self.enquiries),
        ]
    }
}

/// Which cluster this is. A restore makes a new identity that remembers where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub id: String,
    pub created: Timestamp,
    pub restored_from: Option<RestoredFrom>,
}

/// The backup a cluster was restored from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredFrom {
    pub cluster_id: String,
    pub backup_id: String,
    pub index: u64,
}

/// One scheduled backup slot: who claimed it, and whether it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSlot {
    pub slot: Timestamp,
    pub node: u64,
    pub term: u64,
    pub claimed_at: Timestamp,
    pub done: Option<BackupDone>,
}

/// A finished scheduled backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDone {
    pub id: String,
    pub index: u64,
    pub archive_bytes: u64,
    pub finished: Timestamp,
}
