//! The booking area's entities: bookings, their details and statuses, and series.

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{BookingId, RoomId, SeriesId, TenantId, UserId};

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
