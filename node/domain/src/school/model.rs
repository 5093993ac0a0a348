//! The school area's entities: the school, its rules, rooms, calendar, periods and lessons.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{CalendarId, DepartmentId, LessonId, Role, RoomId, TenantId};

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

impl Room {
    /// What an admin set: the fields an update starts from.
    pub fn spec(&self) -> RoomSpec {
        RoomSpec {
            name: self.name.clone(),
            category: self.category.clone(),
            capacity: self.capacity,
            location: self.location.clone(),
            description: self.description.clone(),
            bookable: self.bookable,
            allowed_roles: self.allowed_roles.clone(),
            allowed_departments: self.allowed_departments.clone(),
            approval_required: self.approval_required,
            rules: self.rules.clone(),
        }
    }
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
