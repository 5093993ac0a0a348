//! The people area's state: users, departments, API tokens, sessions and sign-in guards.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::model::{
    ApiToken, Department, DepartmentId, Session, SignInGuard, TenantId, User, UserId,
};

/// The people area's part of `Bookings`. Its fields are private to `people/`: only this area's
/// apply and `index_people` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleState {
    pub(super) users: BTreeMap<UserId, User>,
    pub(super) departments: BTreeMap<DepartmentId, Department>,
    /// By SHA-256 of the secret.
    pub(super) tokens: BTreeMap<String, ApiToken>,
    /// By SHA-256 of the cookie's secret.
    pub(super) sessions: BTreeMap<String, Session>,
    /// (tenant, lowercase username or email) → user.
    pub(super) logins: BTreeMap<(TenantId, String), UserId>,
    /// Sessions by when they expire.
    pub(super) session_expiry: BTreeSet<(Timestamp, String)>,
    /// Failed sign-ins per account, by user; dropped once their bucket is empty and unlocked.
    pub(super) sign_in_guards: BTreeMap<UserId, SignInGuard>,
    /// Guards by when they may be dropped.
    pub(super) guard_expiry: BTreeSet<(Timestamp, UserId)>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl PeopleState {
    pub(crate) fn users(&self) -> &BTreeMap<UserId, User> {
        &self.users
    }

    pub(crate) fn departments(&self) -> &BTreeMap<DepartmentId, Department> {
        &self.departments
    }

    pub(crate) fn tokens(&self) -> &BTreeMap<String, ApiToken> {
        &self.tokens
    }

    #[cfg(test)]
    pub(crate) fn sessions(&self) -> &BTreeMap<String, Session> {
        &self.sessions
    }

    #[cfg(test)]
    pub(crate) fn sign_in_guards(&self) -> &BTreeMap<UserId, SignInGuard> {
        &self.sign_in_guards
    }
}
