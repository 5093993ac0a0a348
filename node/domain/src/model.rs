use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::analytics::PageView;
use crate::op::Op;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub created_at: Timestamp,
    pub suspended: bool,
    /// Booking rules for every room unless the room sets its own.
    pub rules: Rules,
}

/// Booking rules; `None` means no limit. Admins may override any of them with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// How far ahead a booking may start, in days.
    pub max_days_ahead: Option<u32>,
    /// How long before its start a booking must be made, in minutes.
    pub min_notice_minutes: Option<u32>,
    /// Longest booking, in minutes.
    pub max_length_minutes: Option<u32>,
    /// Most active (future, not cancelled) bookings one user may hold, per role.
    pub max_active_per_user: Vec<(Role, u32)>,
}

impl Rules {
    /// `self` with every limit `over` sets replaced by it.
    pub fn overlaid(&self, over: &Rules) -> Rules {
        Rules {
            max_days_ahead: over.max_days_ahead.or(self.max_days_ahead),
            min_notice_minutes: over.min_notice_minutes.or(self.min_notice_minutes),
            max_length_minutes: over.max_length_minutes.or(self.max_length_minutes),
            max_active_per_user: if over.max_active_per_user.is_empty() {
                self.max_active_per_user.clone()
            } else {
                over.max_active_per_user.clone()
            },
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub tenant: TenantId,
    pub name: String,
    pub category: String,
    pub capacity: u32,
    pub location: String,
    pub description: String,
    pub bookable: bool,
    /// Roles that may book; empty means every role that books.
    pub allowed_roles: Vec<Role>,
    /// Departments whose staff may book; empty means all.
    pub allowed_departments: Vec<DepartmentId>,
    pub approval_required: bool,
    /// Overrides of the tenant's rules for this room.
    pub rules: Rules,
    pub created_at: Timestamp,
}

/// The fields of a room an admin sets (create and update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSpec {
    pub name: String,
    pub category: String,
    pub capacity: u32,
    pub location: String,
    pub description: String,
    pub bookable: bool,
    pub allowed_roles: Vec<Role>,
    pub allowed_departments: Vec<DepartmentId>,
    pub approval_required: bool,
    pub rules: Rules,
}

/// The school's calendar: years, terms, closures, the timetable week cycle and the periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// Labels of the timetable weeks in cycle order, e.g. `["A", "B"]`.
    pub week_labels: Vec<String>,
    pub years: Vec<AcademicYear>,
    pub terms: Vec<Term>,
    pub closures: Vec<Closure>,
    pub periods: Vec<Period>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            week_labels: vec!["A".into()],
            years: Vec::new(),
            terms: Vec::new(),
            closures: Vec::new(),
            periods: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcademicYear {
    pub id: CalendarId,
    pub name: String,
    pub start: Date,
    pub end: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub id: CalendarId,
    pub year: CalendarId,
    pub name: String,
    pub start: Date,
    pub end: Date,
    /// The cycle week (index into `week_labels`) of the term's first week.
    pub first_week: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosureKind {
    Holiday,
    Closure,
}

/// Days with no bookings (unless an admin overrides) and no lessons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub id: CalendarId,
    pub name: String,
    pub kind: ClosureKind,
    pub start: Date,
    /// Inclusive.
    pub end: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Lesson,
    Registration,
    Break,
    Lunch,
    Other,
}

/// A named part of the school day on one weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// ISO weekday, Monday = 1.
    pub weekday: u8,
    pub name: String,
    pub start: Time,
    pub end: Time,
    pub kind: PeriodKind,
}

/// A timetabled lesson: it occupies its room every matching week of term time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lesson {
    pub id: LessonId,
    pub tenant: TenantId,
    pub room: RoomId,
    pub spec: LessonSpec,
    /// Dates on which the room is released (the class is elsewhere).
    pub released: BTreeSet<Date>,
}

/// A lesson as created or imported (room resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonSpec {
    /// ISO weekday, Monday = 1.
    pub weekday: u8,
    pub period: Option<String>,
    pub start: Time,
    pub end: Time,
    pub subject: String,
    pub class_name: String,
    pub teacher: String,
    /// `None`: every week; otherwise the cycle week label it runs in.
    pub week: Option<String>,
    pub from: Date,
    /// Inclusive.
    pub to: Date,
}

/// A lesson to import: the room by name; `row` numbers the CSV line for error reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonImport {
    pub row: u32,
    pub room: String,
    pub lesson: LessonSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Active,
    Cancelled,
    /// Waiting for an approver; holds the slot.
    Pending,
    Declined,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Active => "active",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Pending => "pending",
            BookingStatus::Declined => "declined",
        }
    }

    /// Whether the booking occupies its room.
    pub fn holds_slot(self) -> bool {
        matches!(self, BookingStatus::Active | BookingStatus::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub tenant: TenantId,
    pub room: RoomId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub title: String,
    pub notes: String,
    pub status: BookingStatus,
    pub created_by: String,
    pub created_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
    /// The user the booking is for (the booker, or whom an admin booked for).
    pub user: Option<UserId>,
    /// The period booked, when booked by period.
    pub period: Option<String>,
    pub series: Option<SeriesId>,
    /// Why an admin overrode a rule, closure or lesson.
    pub override_reason: Option<String>,
    pub decided_by: Option<String>,
}

/// What a new booking asks for, beyond room and time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingDetails {
    pub title: String,
    pub notes: String,
    pub period: Option<String>,
    /// Book on behalf of this user (admins only).
    pub on_behalf_of: Option<UserId>,
    /// Admins: override rules, closures and lessons, with this reason.
    pub override_reason: Option<String>,
}

/// A recurring booking: its occurrences are ordinary bookings carrying its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    pub id: SeriesId,
    pub tenant: TenantId,
    pub room: RoomId,
    pub title: String,
    /// Human summary, e.g. "Mon, Wed weekly (week A) until 2026-07-17".
    pub rule: String,
    pub occurrences: Vec<BookingId>,
    pub skipped: Vec<Occurrence>,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// One occurrence of a recurring booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A weekly recurrence in local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyRule {
    pub first: Date,
    /// Inclusive.
    pub until: Date,
    /// ISO weekdays, Monday = 1.
    pub weekdays: Vec<u8>,
    /// Only weeks with this cycle label; every week when `None`.
    pub week: Option<String>,
    pub start: Time,
    pub end: Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesMode {
    /// Refuse the whole series if any occurrence conflicts.
    AllOrNothing,
    /// Book the free occurrences, skip the rest.
    SkipConflicts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelScope {
    One,
    ThisAndFollowing,
    Series,
}

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

/// What an admin sets of the public facilities website.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSpec {
    /// Off until the school publishes it; an unpublished site is a 404 to the public.
    pub published: bool,
    /// The school's description, plain text (paragraphs separated by blank lines).
    pub description: String,
    /// Where hirers write to besides the form.
    pub contact_email: String,
    /// Rooms shown for hire, in this order.
    pub hire_rooms: Vec<RoomId>,
}

/// A school's public facilities website at `/v/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub tenant: TenantId,
    pub spec: SiteSpec,
    pub updated_at: Timestamp,
}

/// What a visitor sends with the enquiry form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnquirySpec {
    pub name: String,
    pub phone: String,
    pub email: String,
    /// The facility asked about; `None` for a general enquiry.
    pub room: Option<RoomId>,
    pub first_date: Date,
    pub last_date: Option<Date>,
    pub message: String,
}

/// A hire enquiry waiting in the school's admin pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enquiry {
    pub id: EnquiryId,
    pub tenant: TenantId,
    pub spec: EnquirySpec,
    pub received_at: Timestamp,
    pub handled_at: Option<Timestamp>,
    pub handled_by: Option<String>,
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
