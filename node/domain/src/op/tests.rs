//! The nested [`Op`] must encode exactly as the flat enum it replaced: every log entry and
//! remembered fingerprint written before depends on it. `FlatOp` is that enum, frozen.

use jiff::civil::{date, time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Op, NAMES};
use crate::analytics::{Device, PageView, RecordPageViews, SetAnalyticsSalt};
use crate::booking::{CancelBooking, CreateBooking, CreateSeries, DecideBooking};
use crate::feeds::{CreateFeed, RevokeFeed};
use crate::model::{
    BackupDone, BookingDetails, BookingId, CalendarId, CancelScope, ClosureKind, DepartmentId,
    EnquiryId, EnquirySpec, FeedId, FeedTarget, LessonId, LessonImport, LessonSpec, Occurrence,
    Period, PeriodKind, Quotas, Role, RoomId, RoomSpec, Rules, SeriesMode, SignInPolicy, SiteSpec,
    TenantId, TokenId, UserId,
};
use crate::people::{
    CreateDepartment, CreateSession, CreateToken, CreateUser, DeleteDepartment, EndSession,
    EndUserSessions, RecordSignInFailure, RevokeToken, SetPassword, Touch, UpdateUser,
};
use crate::school::{
    CreateClosure, CreateLesson, CreateRoom, CreateTenant, CreateTerm, CreateYear,
    DeleteCalendarItem, DeleteLesson, ImportLessons, SetLessonRelease, SetPeriods, SetTenantRules,
    SetTenantSuspended, SetWeekCycle, UpdateRoom,
};
use crate::system::{ClaimBackup, MarkBackupDone, SetClusterIdentity, SetQuotas};
use crate::venue::{CreateEnquiry, SetEnquiryHandled, SetSite};

use jiff::civil::Date;

/// The command enum as releases up to 0.2 defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlatOp {
    CreateTenant {
        slug: String,
        name: String,
        time_zone: String,
        admin_token_sha256: String,
    },
    CreateRoom {
        tenant: TenantId,
        spec: RoomSpec,
    },
    CreateBooking {
        tenant: TenantId,
        room: RoomId,
        start: Timestamp,
        end: Timestamp,
        details: BookingDetails,
    },
    CancelBooking {
        tenant: TenantId,
        booking: BookingId,
        scope: CancelScope,
    },
    CreateToken {
        tenant: TenantId,
        name: String,
        role: Role,
        sha256: String,
    },
    SetTenantSuspended {
        tenant: TenantId,
        suspended: bool,
    },
    SetTenantRules {
        tenant: TenantId,
        rules: Rules,
    },
    UpdateRoom {
        tenant: TenantId,
        room: RoomId,
        spec: RoomSpec,
    },
    CreateDepartment {
        tenant: TenantId,
        name: String,
    },
    DeleteDepartment {
        tenant: TenantId,
        department: DepartmentId,
    },
    CreateUser {
        tenant: TenantId,
        username: String,
        name: String,
        email: String,
        department: Option<DepartmentId>,
        role: Role,
        password_phc: String,
    },
    UpdateUser {
        tenant: TenantId,
        user: UserId,
        name: String,
        email: String,
        department: Option<DepartmentId>,
        role: Role,
        active: bool,
    },
    /// Admin reset (any user) or the user's own change; ends the user's other sessions.
    SetPassword {
        tenant: TenantId,
        user: UserId,
        password_phc: String,
        /// The session that made the change survives it.
        keep_session: Option<String>,
    },
    CreateSession {
        tenant: TenantId,
        user: UserId,
        sha256: String,
        csrf_sha256: String,
        idle_secs: u32,
        absolute_secs: u32,
    },
    EndSession {
        sha256: String,
    },
    /// Admin-forced sign-out of every session of a user.
    EndUserSessions {
        tenant: TenantId,
        user: UserId,
    },
    /// Records use of a session or token (sent at most every few minutes per credential).
    Touch {
        sha256: String,
    },
    RevokeToken {
        tenant: TenantId,
        token: TokenId,
    },
    SetWeekCycle {
        tenant: TenantId,
        labels: Vec<String>,
    },
    CreateYear {
        tenant: TenantId,
        name: String,
        start: Date,
        end: Date,
    },
    CreateTerm {
        tenant: TenantId,
        year: CalendarId,
        name: String,
        start: Date,
        end: Date,
        first_week: String,
    },
    CreateClosure {
        tenant: TenantId,
        name: String,
        kind: ClosureKind,
        start: Date,
        end: Date,
    },
    /// Deletes a year (with its terms), a term or a closure.
    DeleteCalendarItem {
        tenant: TenantId,
        id: CalendarId,
    },
    SetPeriods {
        tenant: TenantId,
        periods: Vec<Period>,
    },
    CreateLesson {
        tenant: TenantId,
        room: RoomId,
        lesson: LessonSpec,
    },
    DeleteLesson {
        tenant: TenantId,
        lesson: LessonId,
    },
    /// All or nothing; `replace` first removes every existing lesson of the tenant.
    ImportLessons {
        tenant: TenantId,
        lessons: Vec<LessonImport>,
        replace: bool,
    },
    SetLessonRelease {
        tenant: TenantId,
        lesson: LessonId,
        date: Date,
        released: bool,
    },
    CreateSeries {
        tenant: TenantId,
        room: RoomId,
        rule: String,
        occurrences: Vec<Occurrence>,
        mode: SeriesMode,
        details: BookingDetails,
    },
    DecideBooking {
        tenant: TenantId,
        booking: BookingId,
        approve: bool,
    },
    CreateFeed {
        tenant: TenantId,
        target: FeedTarget,
        sha256: String,
    },
    RevokeFeed {
        tenant: TenantId,
        feed: FeedId,
    },
    /// Names the cluster, once: the first proposal wins, later ones change nothing.
    SetClusterIdentity {
        id: String,
    },
    /// The leader of `term` asks to take the scheduled backup of `slot`.
    ClaimBackup {
        slot: Timestamp,
        node: u64,
        term: u64,
    },
    /// The claimed backup of `slot` is written and verified.
    BackupDone {
        slot: Timestamp,
        done: BackupDone,
    },
    /// The secret that keys visitor ids on UTC `day` (hex); the first proposal wins.
    SetAnalyticsSalt {
        day: Date,
        salt: String,
    },
    /// A batch of page views from one node; detail older than `retention_months` is rolled up.
    RecordPageViews {
        views: Vec<PageView>,
        retention_months: u16,
    },
    /// The school's public facilities website: what it says and which rooms it lets.
    SetSite {
        tenant: TenantId,
        site: SiteSpec,
    },
    /// A hire enquiry from the public website (the actor is the anonymous visitor).
    CreateEnquiry {
        tenant: TenantId,
        enquiry: EnquirySpec,
    },
    /// An admin marks an enquiry dealt with, or open again.
    SetEnquiryHandled {
        tenant: TenantId,
        enquiry: EnquiryId,
        handled: bool,
    },
    /// A wrong password for `user` (at sign-in or when changing it): spends the account's
    /// failure budget, cluster-wide.
    RecordSignInFailure {
        tenant: TenantId,
        user: UserId,
        policy: SignInPolicy,
    },
    /// An operator sets the per-school caps.
    SetQuotas {
        quotas: Quotas,
    },
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec() -> RoomSpec {
    RoomSpec {
        name: "Hall".into(),
        category: "Halls".into(),
        capacity: 200,
        location: "Main building".into(),
        description: "With a stage".into(),
        bookable: true,
        allowed_roles: vec![Role::Admin, Role::Staff],
        allowed_departments: vec![7],
        approval_required: true,
        rules: Rules {
            max_days_ahead: Some(60),
            min_notice_minutes: None,
            max_length_minutes: Some(120),
            max_active_per_user: vec![(Role::Staff, 3)],
        },
    }
}

fn details() -> BookingDetails {
    BookingDetails {
        title: "Year 9 assembly".into(),
        notes: "Chairs".into(),
        period: Some("P1".into()),
        on_behalf_of: Some(12),
        override_reason: None,
    }
}

fn lesson() -> LessonSpec {
    LessonSpec {
        weekday: 2,
        period: Some("P3".into()),
        start: time(10, 10, 0, 0),
        end: time(11, 0, 0, 0),
        subject: "Music".into(),
        class_name: "9B".into(),
        teacher: "JPA".into(),
        week: Some("B".into()),
        from: date(2026, 9, 3),
        to: date(2027, 7, 22),
    }
}

/// One of every command, with every field set to something other than its default.
fn every_command() -> Vec<Op> {
    let (tenant, user) = (3, 12);
    vec![
        CreateTenant {
            slug: "demo".into(),
            name: "Demo School".into(),
            time_zone: "Europe/London".into(),
            admin_token_sha256: "ab".repeat(32),
        }
        .into(),
        CreateRoom {
            tenant,
            spec: spec(),
        }
        .into(),
        CreateBooking {
            tenant,
            room: 5,
            start: t("2026-12-04T09:00:00Z"),
            end: t("2026-12-04T10:00:00Z"),
            details: details(),
        }
        .into(),
        CancelBooking {
            tenant,
            booking: 9,
            scope: CancelScope::ThisAndFollowing,
        }
        .into(),
        CreateToken {
            tenant,
            name: "mis".into(),
            role: Role::Viewer,
            sha256: "cd".into(),
        }
        .into(),
        SetTenantSuspended {
            tenant,
            suspended: true,
        }
        .into(),
        SetTenantRules {
            tenant,
            rules: spec().rules,
        }
        .into(),
        UpdateRoom {
            tenant,
            room: 5,
            spec: spec(),
        }
        .into(),
        CreateDepartment {
            tenant,
            name: "Science".into(),
        }
        .into(),
        DeleteDepartment {
            tenant,
            department: 7,
        }
        .into(),
        CreateUser {
            tenant,
            username: "jpatel".into(),
            name: "J Patel".into(),
            email: "j@school.test".into(),
            department: Some(7),
            role: Role::Staff,
            password_phc: "$argon2id$x".into(),
        }
        .into(),
        UpdateUser {
            tenant,
            user,
            name: "J Patel".into(),
            email: "j@school.test".into(),
            department: None,
            role: Role::Admin,
            active: false,
        }
        .into(),
        SetPassword {
            tenant,
            user,
            password_phc: "$argon2id$y".into(),
            keep_session: Some("s".into()),
        }
        .into(),
        CreateSession {
            tenant,
            user,
            sha256: "ef".into(),
            csrf_sha256: "01".into(),
            idle_secs: 1800,
            absolute_secs: 43200,
        }
        .into(),
        EndSession {
            sha256: "ef".into(),
        }
        .into(),
        EndUserSessions { tenant, user }.into(),
        Touch {
            sha256: "ef".into(),
        }
        .into(),
        RevokeToken { tenant, token: 4 }.into(),
        SetWeekCycle {
            tenant,
            labels: vec!["A".into(), "B".into()],
        }
        .into(),
        CreateYear {
            tenant,
            name: "2026-27".into(),
            start: date(2026, 9, 1),
            end: date(2027, 7, 31),
        }
        .into(),
        CreateTerm {
            tenant,
            year: 20,
            name: "Autumn".into(),
            start: date(2026, 9, 3),
            end: date(2026, 12, 18),
            first_week: "B".into(),
        }
        .into(),
        CreateClosure {
            tenant,
            name: "Half term".into(),
            kind: ClosureKind::Holiday,
            start: date(2026, 10, 26),
            end: date(2026, 10, 30),
        }
        .into(),
        DeleteCalendarItem { tenant, id: 21 }.into(),
        SetPeriods {
            tenant,
            periods: vec![Period {
                weekday: 1,
                name: "P1".into(),
                start: time(8, 50, 0, 0),
                end: time(9, 50, 0, 0),
                kind: PeriodKind::Lesson,
            }],
        }
        .into(),
        CreateLesson {
            tenant,
            room: 5,
            lesson: lesson(),
        }
        .into(),
        DeleteLesson { tenant, lesson: 30 }.into(),
        ImportLessons {
            tenant,
            lessons: vec![LessonImport {
                row: 2,
                room: "Hall".into(),
                lesson: lesson(),
            }],
            replace: true,
        }
        .into(),
        SetLessonRelease {
            tenant,
            lesson: 30,
            date: date(2026, 12, 9),
            released: true,
        }
        .into(),
        CreateSeries {
            tenant,
            room: 5,
            rule: "weekly".into(),
            occurrences: vec![Occurrence {
                date: date(2026, 12, 7),
                start: t("2026-12-07T15:30:00Z"),
                end: t("2026-12-07T16:30:00Z"),
            }],
            mode: SeriesMode::SkipConflicts,
            details: details(),
        }
        .into(),
        DecideBooking {
            tenant,
            booking: 9,
            approve: true,
        }
        .into(),
        CreateFeed {
            tenant,
            target: FeedTarget::User(user),
            sha256: "aa".into(),
        }
        .into(),
        RevokeFeed { tenant, feed: 40 }.into(),
        SetClusterIdentity {
            id: "cluster-1".into(),
        }
        .into(),
        ClaimBackup {
            slot: t("2026-12-04T10:00:00Z"),
            node: 2,
            term: 6,
        }
        .into(),
        MarkBackupDone {
            slot: t("2026-12-04T10:00:00Z"),
            done: BackupDone {
                id: "b1".into(),
                index: 99,
                archive_bytes: 4096,
                finished: t("2026-12-04T10:00:05Z"),
            },
        }
        .into(),
        SetAnalyticsSalt {
            day: date(2026, 12, 4),
            salt: "00ff".into(),
        }
        .into(),
        RecordPageViews {
            views: vec![PageView {
                tenant,
                at: t("2026-12-04T11:00:00Z"),
                path: "/v/demo".into(),
                source: Some("newsletter".into()),
                browser: "Firefox".into(),
                os: "Linux".into(),
                device: Device::Tablet,
                country: Some("GB".into()),
                city: Some("Leeds".into()),
                visitor: [7; 16],
            }],
            retention_months: 13,
        }
        .into(),
        SetSite {
            tenant,
            site: SiteSpec {
                published: true,
                description: "Halls to hire".into(),
                contact_email: "lettings@school.test".into(),
                hire_rooms: vec![5],
            },
        }
        .into(),
        CreateEnquiry {
            tenant,
            enquiry: EnquirySpec {
                name: "Chess club".into(),
                phone: "0113 000".into(),
                email: "chess@club.test".into(),
                room: Some(5),
                first_date: date(2027, 1, 9),
                last_date: Some(date(2027, 3, 27)),
                message: "Saturdays".into(),
            },
        }
        .into(),
        SetEnquiryHandled {
            tenant,
            enquiry: 50,
            handled: true,
        }
        .into(),
        RecordSignInFailure {
            tenant,
            user,
            policy: SignInPolicy {
                failures: 5,
                refill_secs: 60,
                lock_max_secs: 3600,
            },
        }
        .into(),
        SetQuotas {
            quotas: Quotas {
                rooms: 1,
                users: 2,
                departments: 3,
                lessons: 4,
                bookings: 5,
                api_tokens: 6,
                feeds: 7,
                enquiries: 8,
            },
        }
        .into(),
    ]
}

#[test]
fn every_command_encodes_byte_for_byte_as_the_flat_enum_did() {
    let mut tags = Vec::new();
    for op in every_command() {
        let bytes = bincode::serialize(&op).unwrap();
        let flat: FlatOp = bincode::deserialize(&bytes).unwrap();
        assert_eq!(bincode::serialize(&flat).unwrap(), bytes, "{op:?}");
        assert_eq!(
            serde_json::to_value(&flat).unwrap(),
            serde_json::to_value(&op).unwrap(),
            "names and fields of {op:?}"
        );
        assert_eq!(bincode::deserialize::<Op>(&bytes).unwrap(), op);
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        tags.push(u32::from_le_bytes(bytes[..4].try_into().unwrap()));
    }
    let expected: Vec<u32> = (0..NAMES.len() as u32).collect();
    assert_eq!(tags, expected, "one sample per command, in tag order");
}

#[test]
fn a_command_from_a_newer_build_is_refused_with_a_reason() {
    let mut bytes = (NAMES.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 16]);
    let err = bincode::deserialize::<Op>(&bytes).unwrap_err().to_string();
    assert!(err.contains("newer Roomraft"), "{err}");
    let err = serde_json::from_str::<Op>(r#"{"ChargeHirer":{}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `ChargeHirer`"), "{err}");
}
