//! The booking domain: pure, deterministic, no I/O. `apply` takes time and identity from the
//! command and the log index, never from the clock.

pub mod analytics;
mod apply;
mod audit;
pub mod booking;
pub mod calendar;
pub mod codec;
pub mod feeds;
mod model;
mod op;
pub mod people;
pub mod quotas;
mod records;
pub mod school;
pub mod system;
mod tenant_view;
pub mod venue;
mod views;
mod wire;

pub use apply::{Bookings, IDS_PER_ENTRY};
pub use model::{
    AcademicYear, Actor, ApiToken, AuditEntry, BackupDone, BackupSlot, Booking, BookingDetails,
    BookingId, BookingStatus, Calendar, CalendarId, CancelScope, Clash, Closure, ClosureKind,
    ClusterIdentity, Command, Credential, Department, DepartmentId, Enquiry, EnquiryId,
    EnquirySpec, Feed, FeedId, FeedTarget, Lesson, LessonId, LessonImport, LessonSpec, LogCommand,
    Occurrence, Outcome, PageView, Period, PeriodKind, Quotas, Rejection, RestoredFrom, Role, Room,
    RoomId, RoomSpec, RowError, Rules, Series, SeriesId, SeriesMode, Session, SignInGuard,
    SignInPolicy, Signed, Site, SiteSpec, Tenant, TenantId, Term, TokenId, User, UserId,
    WeeklyRule,
};
pub use op::{Op, Request};
pub use records::STATE_FORMAT;
pub use school::{lessons_overlap, ImportPlan, MAX_IMPORT_ROWS};
pub use system::reidentify;
pub use tenant_view::TenantView;
pub use views::{DatedPeriod, Occupation, RoomFilter};
