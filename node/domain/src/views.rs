//! Read-side queries shared by the API and the web pages: what occupies a room, a day's grid
//! across rooms, free rooms, and audit history.

use jiff::civil::Date;
use jiff::Timestamp;

use super::calendar::{instant, weekday_number, zone};
use super::model::{
    AuditEntry, Booking, Calendar, Lesson, Period, Room, RoomId, Tenant, TenantId, UserId,
};
use super::Bookings;

/// Something occupying a room for a while.
#[derive(Debug, Clone, Copy)]
pub enum Occupation<'a> {
    Booking(&'a Booking),
    Lesson {
        lesson: &'a Lesson,
        start: Timestamp,
        end: Timestamp,
    },
}

impl Occupation<'_> {
    pub fn start(&self) -> Timestamp {
        match self {
            Occupation::Booking(b) => b.start,
            Occupation::Lesson { start, .. } => *start,
        }
    }
}

/// A period of one date with its instants.
#[derive(Debug, Clone)]
pub struct DatedPeriod<'a> {
    pub period: &'a Period,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Filters for the free-room finder and the day grid.
#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    pub category: Option<String>,
    pub min_capacity: Option<u32>,
}

impl RoomFilter {
    pub fn matches(&self, r: &Room) -> bool {
        self.category
            .as_deref()
            .is_none_or(|c| r.category.eq_ignore_ascii_case(c))
            && self.min_capacity.is_none_or(|c| r.capacity >= c)
    }
}

impl Bookings {
    /// Bookings (holding a slot) and lessons in `room` within `[from, to)`, by start.
    pub(crate) fn occupancy(
        &self,
        tenant: &Tenant,
        room: RoomId,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<Occupation<'_>> {
        let mut out: Vec<Occupation> = self
            .bookings_in(room, from, to)
            .into_iter()
            .map(Occupation::Booking)
            .collect();
        out.extend(
            self.lessons_in(tenant, room, from, to)
                .into_iter()
                .map(|(lesson, start, end)| Occupation::Lesson { lesson, start, end }),
        );
        out.sort_by_key(|o| o.start());
        out
    }

    /// The tenant's rooms in name order.
    pub(crate) fn rooms_of(&self, tenant: TenantId) -> Vec<&Room> {
        let mut rooms: Vec<&Room> = self
            .school
            .rooms()
            .values()
            .filter(|r| r.tenant == tenant)
            .collect();
        rooms.sort_by_key(|a| a.name.to_lowercase());
        rooms
    }

    /// `date`'s periods with their instants in the tenant's zone.
    pub(crate) fn periods_on<'a>(
        &self,
        tenant: &Tenant,
        cal: &'a Calendar,
        date: Date,
    ) -> Vec<DatedPeriod<'a>> {
        let tz = zone(&tenant.time_zone);
        cal.periods_on(weekday_number(date))
            .map(|p| DatedPeriod {
                period: p,
                start: instant(&tz, date, p.start),
                end: instant(&tz, date, p.end),
            })
            .collect()
    }

    /// Bookable rooms matching `filter` with nothing (booking, lesson, closure) in `[from, to)`.
    pub(crate) fn free_rooms(
        &self,
        tenant: &Tenant,
        from: Timestamp,
        to: Timestamp,
        filter: &RoomFilter,
    ) -> Vec<&Room> {
        self.rooms_of(tenant.id)
            .into_iter()
            .filter(|r| r.bookable && filter.matches(r))
            .filter(|r| self.clash(tenant, r.id, from, to, false).is_none())
            .collect()
    }

    /// Audit entries of a tenant, newest first, optionally for one object or one user, at most
    /// `limit`.
    pub(crate) fn audit_of(
        &self,
        tenant: TenantId,
        object: Option<(&str, u64)>,
        user: Option<UserId>,
        limit: usize,
    ) -> Vec<AuditEntry> {
        self.audit.newest(tenant, object, user, limit, |_| true)
    }

    /// A user's bookings (holding a slot or not) ending after `from`, by start.
    pub(crate) fn bookings_of_user(&self, user: UserId, from: Timestamp) -> Vec<&Booking> {
        let mut out: Vec<&Booking> = self
            .booking
            .user_bookings()
            .get(&user)
            .into_iter()
            .flatten()
            .map(|id| &*self.booking.bookings()[id])
            .filter(|b| b.end > from)
            .collect();
        out.sort_by_key(|b| (b.start, b.id));
        out
    }
}
