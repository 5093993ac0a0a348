//! Commands of this area: one struct each, and the enum `Op::Booking` holds.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::model::{Booking, Series};
use crate::op::replies;

use crate::model::{
    BookingDetails, BookingId, CancelScope, Occurrence, RoomId, SeriesMode, TenantId,
};

/// Bookings and series: booking, cancelling and deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingOp {
    CreateBooking(CreateBooking),
    CancelBooking(CancelBooking),
    CreateSeries(CreateSeries),
    DecideBooking(DecideBooking),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBooking {
    pub tenant: TenantId,
    pub room: RoomId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub details: BookingDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelBooking {
    pub tenant: TenantId,
    pub booking: BookingId,
    pub scope: CancelScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSeries {
    pub tenant: TenantId,
    pub room: RoomId,
    pub rule: String,
    pub occurrences: Vec<Occurrence>,
    pub mode: SeriesMode,
    pub details: BookingDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecideBooking {
    pub tenant: TenantId,
    pub booking: BookingId,
    pub approve: bool,
}

replies! {
    CreateBooking: Booking { Outcome::BookingCreated(b) => b }
    /// Every booking the cancellation changed.
    CancelBooking: Vec<Booking> { Outcome::BookingsCancelled(list) => list }
    CreateSeries: (Series, Vec<Booking>) {
        Outcome::SeriesCreated { series, bookings } => (series, bookings),
    }
    DecideBooking: Booking { Outcome::BookingDecided(b) => b }
}
