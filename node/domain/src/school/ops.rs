//! Commands of this area: one struct each, and the enum `Op::School` holds.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::model::{Calendar, Lesson, Room, Tenant};
use crate::op::replies;

use crate::model::{
    CalendarId, ClosureKind, LessonId, LessonImport, LessonSpec, Period, RoomId, RoomSpec, Rules,
    TenantId,
};

/// The school itself: creating and suspending it, its booking rules, rooms, calendar and timetable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchoolOp {
    CreateTenant(CreateTenant),
    SetTenantSuspended(SetTenantSuspended),
    SetTenantRules(SetTenantRules),
    CreateRoom(CreateRoom),
    UpdateRoom(UpdateRoom),
    SetWeekCycle(SetWeekCycle),
    CreateYear(CreateYear),
    CreateTerm(CreateTerm),
    CreateClosure(CreateClosure),
    DeleteCalendarItem(DeleteCalendarItem),
    SetPeriods(SetPeriods),
    CreateLesson(CreateLesson),
    DeleteLesson(DeleteLesson),
    ImportLessons(ImportLessons),
    SetLessonRelease(SetLessonRelease),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTenant {
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub admin_token_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTenantSuspended {
    pub tenant: TenantId,
    pub suspended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTenantRules {
    pub tenant: TenantId,
    pub rules: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    pub tenant: TenantId,
    pub spec: RoomSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRoom {
    pub tenant: TenantId,
    pub room: RoomId,
    pub spec: RoomSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWeekCycle {
    pub tenant: TenantId,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateYear {
    pub tenant: TenantId,
    pub name: String,
    pub start: Date,
    pub end: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTerm {
    pub tenant: TenantId,
    pub year: CalendarId,
    pub name: String,
    pub start: Date,
    pub end: Date,
    pub first_week: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateClosure {
    pub tenant: TenantId,
    pub name: String,
    pub kind: ClosureKind,
    pub start: Date,
    pub end: Date,
}

/// Deletes a year (with its terms), a term or a closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteCalendarItem {
    pub tenant: TenantId,
    pub id: CalendarId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPeriods {
    pub tenant: TenantId,
    pub periods: Vec<Period>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLesson {
    pub tenant: TenantId,
    pub room: RoomId,
    pub lesson: LessonSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLesson {
    pub tenant: TenantId,
    pub lesson: LessonId,
}

/// All or nothing; `replace` first removes every existing lesson of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLessons {
    pub tenant: TenantId,
    pub lessons: Vec<LessonImport>,
    pub replace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLessonRelease {
    pub tenant: TenantId,
    pub lesson: LessonId,
    pub date: Date,
    pub released: bool,
}

replies! {
    CreateTenant: Tenant { Outcome::TenantCreated(t) => t }
    SetTenantSuspended: Tenant { Outcome::Tenant(t) => t }
    SetTenantRules: Tenant { Outcome::Tenant(t) => t }
    CreateRoom: Room { Outcome::RoomCreated(r) => r }
    UpdateRoom: Room { Outcome::Room(r) => r }
    SetWeekCycle: Calendar { Outcome::Calendar(c) => c }
    CreateYear: Calendar { Outcome::Calendar(c) => c }
    CreateTerm: Calendar { Outcome::Calendar(c) => c }
    CreateClosure: Calendar { Outcome::Calendar(c) => c }
    DeleteCalendarItem: Calendar { Outcome::Calendar(c) => c }
    SetPeriods: Calendar { Outcome::Calendar(c) => c }
    CreateLesson: Lesson { Outcome::Lesson(l) => l }
    DeleteLesson: () { Outcome::Done => () }
    ImportLessons: Imported {
        Outcome::TimetableImported { imported, unchanged } => Imported { imported, unchanged },
        // Version 1 of the command counted only what it added.
        Outcome::LessonsImported { count } => Imported { imported: count, unchanged: 0 },
    }
    SetLessonRelease: Lesson { Outcome::Lesson(l) => l }
}

/// What a timetable import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub imported: usize,
    /// Rows the timetable already held exactly (uploading a file again changes nothing).
    pub unchanged: usize,
}
