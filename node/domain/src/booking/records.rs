//! The booking area's stored records: bookings and series.

use std::sync::Arc;

use crate::apply::{id20, tkey, Bookings};
use crate::model::{Booking, Series};
use crate::quotas::Kind;
use crate::records::Record;

/// A stored record of the booking area; its wire tag is in `records.rs`'s table. Neither kind
/// is ever deleted: a cancelled booking stays as history.
#[derive(Debug, Clone)]
pub(crate) enum BookingRecord {
    Booking(Booking),
    Series(Series),
}

impl BookingRecord {
    /// Where the record lives: under its school's `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            BookingRecord::Booking(b) => tkey(b.tenant, "booking", id20(b.id)),
            BookingRecord::Series(s) => tkey(s.tenant, "series", id20(s.id)),
        }
    }
}

impl From<BookingRecord> for Record {
    fn from(record: BookingRecord) -> Record {
        Record::Booking(record)
    }
}

impl Bookings {
    pub(crate) fn index_booking(&mut self, record: BookingRecord) {
        match record {
            BookingRecord::Booking(b) => {
                let schedule = self.booking.room_schedule.entry(b.room).or_default();
                if b.status.holds_slot() {
                    schedule.insert((b.start, b.id), b.end);
                } else {
                    schedule.remove(&(b.start, b.id));
                }
                if let Some(u) = b.user {
                    self.booking
                        .user_bookings
                        .entry(u)
                        .or_default()
                        .insert(b.id);
                }
                let tenant = b.tenant;
                if self.booking.bookings.insert(b.id, Arc::new(b)).is_none() {
                    self.count(tenant, Kind::Booking, 1);
                }
            }
            BookingRecord::Series(s) => {
                self.booking.series.insert(s.id, s);
            }
        }
    }

    pub(crate) fn booking_records(&self, out: &mut Vec<Record>) {
        let bookings =
            (self.booking.bookings.values()).map(|b| BookingRecord::Booking(Booking::clone(b)));
        let records = bookings.chain(
            self.booking
                .series
                .values()
                .cloned()
                .map(BookingRecord::Series),
        );
        out.extend(records.map(Record::Booking));
    }
}
