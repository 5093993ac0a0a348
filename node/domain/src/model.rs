//! What every area shares: ids, roles, the command and its log envelope, outcomes, rejections
//! and audit entries. Each area's entities live in its folder's `model.rs` and are re-exported
//! here, so `crate::model::Booking` and `roomraft_domain::Booking` name them as before.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::analytics::PageView;
pub use crate::booking::{
    Booking, BookingDetails, BookingStatus, CancelScope, Occurrence, Series, SeriesMode, WeeklyRule,
};
pub use crate::feeds::{Feed, FeedTarget};
use crate::op::Op;
pub use crate::people::{ApiToken, Department, Session, SignInGuard, SignInPolicy, User};
pub use crate::school::{
    AcademicYear, Calendar, Closure, ClosureKind, Lesson, LessonImport, LessonSpec, Period,
    PeriodKind, Room, RoomSpec, Rules, Tenant, Term,
};
pub use crate::system::{BackupDone, BackupSlot, ClusterIdentity, Quotas, RestoredFrom};
pub use crate::venue::{Enquiry, EnquirySpec, Site, SiteSpec};

pub type TenantId = u64;

pub type RoomId = u64;

pub type BookingId = u64;

pub type UserId = u64;

pub type DepartmentId = u64;

pub type LessonId = u64;

pub type SeriesId = u64;

pub type TokenId = u64;

pub type FeedId = u64;

pub type EnquiryId = u64;

/// Academic years, terms and closures share one id space (log indexes).
pub type CalendarId = u64;

/// Who may do what inside a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the platform: creates and suspends tenants. Belongs to no tenant.
    Operator,
    /// Administers one tenant.
    Admin,
    /// Books rooms in one tenant.
    Staff,
    /// Sees the tenant's rooms and bookings (the site team); changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Viewer => "viewer",
        }
    }

    /// A tenant role from its API name.
    pub fn parse_tenant_role(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn can_book(self) -> bool {
        matches!(self, Role::Admin | Role::Staff)
    }
}

/// One change in the append-only audit history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub tenant: TenantId,
    pub at: Timestamp,
    pub actor: String,
    pub user: Option<UserId>,
    pub object: String,
    pub object_id: u64,
    pub action: String,
    /// JSON of the object before and after.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Who sent a command, as authenticated by the node that received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub tenant: Option<TenantId>,
    pub role: Role,
    /// A printable principal, e.g. `token:admin` or `user:jsmith`.
    pub name: String,
    /// The signed-in user, when a session (not a token) authenticated the request.
    pub user: Option<UserId>,
}

/// A command as replicated through the Raft log. The enum is the log format's version tag:
/// variants are only ever appended. The version also says which rules the proposing build
/// enforced, so an entry is applied the same way on every replica and on every replay, whichever
/// build applies it: a rule added later applies only to commands of its version and newer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LogCommand {
    V1(Command),
    /// Release 0.2: bookings may not end in the past (unless an admin overrides), a room's
    /// lessons may not overlap, a school's records are capped per kind, and the credential that
    /// authenticated the request is checked again in apply.
    V2(Signed),
}

/// A command with the credential that authenticated it at the receiving node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed {
    pub command: Command,
    pub credential: Option<Credential>,
}

/// A credential as the state knows it (hashes only). Apply refuses a command whose token was
/// revoked or whose session ended before the command's place in the log, whichever node took
/// the request: a revocation acknowledged anywhere stops every later change at once, without
/// the receiving node asking the leader first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credential {
    /// SHA-256 of an API token (not the operator's, which is in no state).
    Token(String),
    /// SHA-256 of a session cookie.
    Session(String),
}

impl LogCommand {
    /// The version this build proposes.
    pub const CURRENT: u8 = 2;

    /// `command` in the version this build proposes, with no credential to check.
    pub fn current(command: Command) -> Self {
        Self::signed(command, None)
    }

    /// `command` in the version this build proposes, checked against `credential` in apply.
    pub fn signed(command: Command, credential: Option<Credential>) -> Self {
        LogCommand::V2(Signed {
            command,
            credential,
        })
    }

    /// The version, the command and the credential to check.
    pub fn into_parts(self) -> (u8, Command, Option<Credential>) {
        match self {
            LogCommand::V1(c) => (1, c, None),
            LogCommand::V2(s) => (2, s.command, s.credential),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    /// Wall-clock time at the receiving node; the only time apply ever sees.
    pub time: Timestamp,
    pub actor: Actor,
    /// Deduplicates retries: the client's Idempotency-Key (scoped by tenant) or a key the
    /// receiving node generated for this request.
    pub request_key: String,
    pub op: Op,
}

/// The result of applying a command. Rejections are outcomes, identical on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    TenantCreated(Tenant),
    RoomCreated(Room),
    BookingCreated(Booking),
    /// Every booking the cancellation changed.
    BookingsCancelled(Vec<Booking>),
    TokenCreated(ApiToken),
    Rejected(Rejection),
    Tenant(Tenant),
    Room(Room),
    Department(Department),
    User(User),
    Session(Session),
    Done,
    Calendar(Calendar),
    Lesson(Lesson),
    LessonsImported {
        count: usize,
    },
    SeriesCreated {
        series: Series,
        bookings: Vec<Booking>,
    },
    BookingDecided(Booking),
    FeedCreated(Feed),
    Token(ApiToken),
    Feed(Feed),
    Identity(ClusterIdentity),
    BackupClaim {
        granted: bool,
    },
    /// Page views counted, and those skipped (unknown tenant, too old, malformed).
    PageViewsRecorded {
        recorded: u32,
        skipped: u32,
    },
    Site(Site),
    Enquiry(Enquiry),
    /// The account's failure budget after a wrong password.
    SignInGuard(SignInGuard),
    Quotas(Quotas),
    /// A timetable import of version 2 on: lessons added, and rows already there exactly.
    TimetableImported {
        imported: usize,
        unchanged: usize,
    },
}

/// What a booking clashes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clash {
    Booking {
        id: BookingId,
        start: Timestamp,
        end: Timestamp,
        title: String,
    },
    Lesson {
        id: LessonId,
        start: Timestamp,
        end: Timestamp,
        subject: String,
        class_name: String,
    },
    Closure {
        id: CalendarId,
        name: String,
        date: Date,
    },
}

/// One CSV row's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: u32,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// The slot is taken.
    Conflict(Clash),
    NotFound {
        what: String,
        id: String,
    },
    Invalid {
        field: String,
        message: String,
    },
    AlreadyExists {
        what: String,
        key: String,
    },
    AlreadyCancelled {
        booking: BookingId,
    },
    Forbidden {
        reason: String,
    },
    /// The same idempotency key was used earlier for a different request.
    IdempotencyKeyReused,
    /// A booking rule refuses it.
    Rule {
        rule: String,
        message: String,
    },
    /// An import refused as a whole: every row's problem.
    Rows(Vec<RowError>),
    /// Occurrences of an all-or-nothing series that clash.
    SeriesConflicts(Vec<(Occurrence, Clash)>),
    /// The booking is not pending.
    NotPending {
        booking: BookingId,
    },
    /// Too many wrong passwords: the account takes no sign-in or password change until then.
    Locked {
        until: Timestamp,
    },
    /// The credential that authenticated the request was revoked or ended before it applied.
    Unauthorized,
    /// The school already stores `stored` of `kind`; it may store at most `limit`.
    QuotaExceeded {
        kind: String,
        limit: u64,
        stored: u64,
    },
}
