//! Commands of this area: one struct each, and the enum `Op::People` holds.

use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::model::{ApiToken, Department, Session, SignInGuard, User};
use crate::op::replies;

use crate::model::{DepartmentId, Role, SignInPolicy, TenantId, TokenId, UserId};

/// Departments, users, passwords, sessions, API tokens and the sign-in guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeopleOp {
    CreateDepartment(CreateDepartment),
    DeleteDepartment(DeleteDepartment),
    CreateUser(CreateUser),
    UpdateUser(UpdateUser),
    SetPassword(SetPassword),
    CreateSession(CreateSession),
    EndSession(EndSession),
    EndUserSessions(EndUserSessions),
    Touch(Touch),
    CreateToken(CreateToken),
    RevokeToken(RevokeToken),
    RecordSignInFailure(RecordSignInFailure),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDepartment {
    pub tenant: TenantId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteDepartment {
    pub tenant: TenantId,
    pub department: DepartmentId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUser {
    pub tenant: TenantId,
    pub username: String,
    pub name: String,
    pub email: String,
    pub department: Option<DepartmentId>,
    pub role: Role,
    pub password_phc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUser {
    pub tenant: TenantId,
    pub user: UserId,
    pub name: String,
    pub email: String,
    pub department: Option<DepartmentId>,
    pub role: Role,
    pub active: bool,
}

/// Admin reset (any user) or the user's own change; ends the user's other sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPassword {
    pub tenant: TenantId,
    pub user: UserId,
    pub password_phc: String,
    /// The session that made the change survives it.
    pub keep_session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    pub tenant: TenantId,
    pub user: UserId,
    pub sha256: String,
    pub csrf_sha256: String,
    pub idle_secs: u32,
    pub absolute_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndSession {
    pub sha256: String,
}

/// Admin-forced sign-out of every session of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUserSessions {
    pub tenant: TenantId,
    pub user: UserId,
}

/// Records use of a session or token (sent at most every few minutes per credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateToken {
    pub tenant: TenantId,
    pub name: String,
    pub role: Role,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeToken {
    pub tenant: TenantId,
    pub token: TokenId,
}

/// A wrong password for `user` (at sign-in or when changing it): spends the account's
/// failure budget, cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSignInFailure {
    pub tenant: TenantId,
    pub user: UserId,
    pub policy: SignInPolicy,
}

replies! {
    CreateDepartment: Department { Outcome::Department(d) => d }
    DeleteDepartment: () { Outcome::Done => () }
    CreateUser: User { Outcome::User(u) => u }
    UpdateUser: User { Outcome::User(u) => u }
    SetPassword: User { Outcome::User(u) => u }
    CreateSession: Session { Outcome::Session(s) => s }
    EndSession: () { Outcome::Done => () }
    EndUserSessions: () { Outcome::Done => () }
    Touch: () { Outcome::Done => () }
    CreateToken: ApiToken { Outcome::TokenCreated(t) => t }
    RevokeToken: ApiToken { Outcome::Token(t) => t }
    RecordSignInFailure: SignInGuard { Outcome::SignInGuard(g) => g }
}
