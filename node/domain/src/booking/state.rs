//! The booking area's state: bookings, series, and the indexes that find clashes fast.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;

use crate::model::{Booking, BookingId, RoomId, Series, SeriesId, UserId};

/// The booking area's part of `Bookings`. Its fields are private to `booking/`: only this area's
/// apply and `index_booking` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingState {
    /// Shared: a change stores a new booking rather than editing one in place, so copying the
    /// state (for a backup or a snapshot, while writes wait) copies a pointer.
    pub(super) bookings: BTreeMap<BookingId, Arc<Booking>>,
    pub(super) series: BTreeMap<SeriesId, Series>,
    /// Bookings holding each room's slots, by start: disjoint intervals, so overlap is a range probe.
    pub(super) room_schedule: BTreeMap<RoomId, BTreeMap<(Timestamp, BookingId), Timestamp>>,
    /// Each user's bookings.
    pub(super) user_bookings: BTreeMap<UserId, BTreeSet<BookingId>>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl BookingState {
    pub(crate) fn bookings(&self) -> &BTreeMap<BookingId, Arc<Booking>> {
        &self.bookings
    }

    pub(crate) fn series(&self) -> &BTreeMap<SeriesId, Series> {
        &self.series
    }

    pub(crate) fn user_bookings(&self) -> &BTreeMap<UserId, BTreeSet<BookingId>> {
        &self.user_bookings
    }
}
