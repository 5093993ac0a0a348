//! The booking area's state: bookings, series, and the indexes that find clashes fast.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};

use jiff::Timestamp;

use crate::model::{Booking, BookingId, RoomId, Series, SeriesId, UserId};

/// The booking area's part of `Bookings`. Its fields are private to `booking/`: only this area's
/// apply and `index_booking` change them, so its indexes cannot drift from its records.
///
/// Its maps are structurally shared (`imbl`): copying the state, which a snapshot build or a
/// backup does while applies wait, copies their roots, not their millions of entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingState {
    /// Shared: a change stores a new booking rather than editing one in place.
    pub(super) bookings: OrdMap<BookingId, Arc<Booking>>,
    pub(super) series: OrdMap<SeriesId, Series>,
    /// Bookings holding each room's slots, by start: disjoint intervals, so overlap is a range probe.
    pub(super) room_schedule: OrdMap<RoomId, OrdMap<(Timestamp, BookingId), Timestamp>>,
    /// Each user's bookings.
    pub(super) user_bookings: OrdMap<UserId, OrdSet<BookingId>>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl BookingState {
    pub(crate) fn bookings(&self) -> &OrdMap<BookingId, Arc<Booking>> {
        &self.bookings
    }

    pub(crate) fn series(&self) -> &OrdMap<SeriesId, Series> {
        &self.series
    }

    pub(crate) fn user_bookings(&self) -> &OrdMap<UserId, OrdSet<BookingId>> {
        &self.user_bookings
    }
}
