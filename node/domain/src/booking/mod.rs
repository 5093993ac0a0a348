//! Bookings and series: conflicts against bookings, lessons and closures, the school's rules,
//! approvals, recurring series and cancellation. Every decision here happens inside apply.

mod apply;
mod model;
mod ops;
mod records;
mod state;

pub use model::{
    Booking, BookingDetails, BookingStatus, CancelScope, Occurrence, Series, SeriesMode, WeeklyRule,
};
pub use ops::{BookingOp, CancelBooking, CreateBooking, CreateSeries, DecideBooking};
pub(crate) use records::BookingRecord;
pub(crate) use state::BookingState;

use roomraft_replicated::WriteSet;

use crate::apply::{Bookings, Ctx, Res};

impl Bookings {
    pub(crate) fn apply_booking(
        &mut self,
        ctx: &mut Ctx,
        op: &BookingOp,
        writes: &mut WriteSet,
    ) -> Res {
        match op {
            BookingOp::CreateSeries(op) => self.create_series(ctx, op, writes),
            BookingOp::CreateBooking(CreateBooking {
                tenant,
                room,
                start,
                end,
                details,
            }) => self.create_booking(ctx, *tenant, *room, *start, *end, details, writes),
            BookingOp::CancelBooking(CancelBooking {
                tenant,
                booking,
                scope,
            }) => self.cancel_booking(ctx, *tenant, *booking, *scope, writes),
            BookingOp::DecideBooking(DecideBooking {
                tenant,
                booking,
                approve,
            }) => self.decide_booking(ctx, *tenant, *booking, *approve, writes),
        }
    }
}
