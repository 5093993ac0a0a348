//! Commands of this area: one struct each, and the enum `Op::School` holds.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

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
