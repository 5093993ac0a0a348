//! The people area's entities: departments, users, sessions, API tokens and sign-in guards.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{DepartmentId, Role, TenantId, TokenId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: DepartmentId,
    pub tenant: TenantId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub tenant: TenantId,
    pub username: String,
    pub name: String,
    pub email: String,
    pub department: Option<DepartmentId>,
    pub role: Role,
    /// Argon2id in PHC string form; hashed by the receiving node, never in clear anywhere.
    pub password_phc: String,
    pub active: bool,
    pub created_at: Timestamp,
    pub password_changed_at: Timestamp,
}

/// A signed-in browser session; only hashes of its secrets are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sha256: String,
    pub tenant: TenantId,
    pub user: UserId,
    pub csrf_sha256: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    /// Absolute end of the session.
    pub expires_at: Timestamp,
    /// Idle timeout, seconds.
    pub idle_secs: u32,
}

/// Failed sign-ins of one account, counted by the whole cluster whichever node and spelling of
/// the login each guess used. A GCRA bucket: each failure moves `tat` on by the refill interval;
/// once it runs more than the allowed failures ahead of the command's time, the account is
/// locked until the next failure would be allowed again (at most the policy's longest lock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInGuard {
    pub tenant: TenantId,
    pub user: UserId,
    /// The bucket's theoretical arrival time: it is empty again from then on.
    pub tat: Timestamp,
    /// No sign-in or password change is accepted for the account before this.
    pub locked_until: Option<Timestamp>,
    /// Failures counted since the bucket was last empty.
    pub failures: u32,
}

impl SignInGuard {
    /// Whether the account is locked at `now`.
    pub fn locked_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|u| *u > now)
    }

    /// When the guard says nothing any more: its bucket empty and any lock over.
    pub fn expires_at(&self) -> Timestamp {
        self.locked_until.map_or(self.tat, |l| l.max(self.tat))
    }
}

/// How many wrong passwords an account absorbs: `failures` at once, then one every
/// `refill_secs`; a lock lasts at most `lock_max_secs`. Carried by each failure's command, so
/// every replica applies the receiving node's configured policy alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPolicy {
    pub failures: u32,
    pub refill_secs: u32,
    pub lock_max_secs: u32,
}

/// An API token for integrations: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub sha256: String,
    pub tenant: TenantId,
    pub role: Role,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}
