//! One school's records, and nothing of another's: what the use cases read through, so a query
//! cannot forget the tenant check. Every accessor filters by the view's tenant, and a query
//! given an id of another school's room or user answers as if it did not exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::Timestamp;

use crate::analytics::Report;
use crate::{
    ApiToken, AuditEntry, Booking, BookingId, Bookings, Calendar, Clash, DatedPeriod, Department,
    DepartmentId, Enquiry, Feed, Lesson, Occupation, Role, Room, RoomFilter, RoomId, Series,
    SeriesId, Site, SiteSpec, Tenant, TenantId, User, UserId,
};

/// A read-only view of one tenant's part of the state.
#[derive(Clone, Copy)]
pub struct TenantView<'a> {
    state: &'a Bookings,
    tenant: TenantId,
}

/// Values of `map` that belong to `tenant`.
fn owned<'a, K, V: 'a>(
    map: impl IntoIterator<Item = (&'a K, &'a V)>,
    tenant: TenantId,
    of: impl Fn(&V) -> TenantId,
) -> impl Iterator<Item = &'a V>
where
    K: 'a,
{
    map.into_iter()
        .map(|(_, v)| v)
        .filter(move |v| of(v) == tenant)
}

/// A map one record is looked up in: the areas' ordered maps, plain or structurally shared.
trait Lookup<K, V> {
    fn lookup(&self, key: &K) -> Option<&V>;
}

impl<K: Ord, V> Lookup<K, V> for BTreeMap<K, V> {
    fn lookup(&self, key: &K) -> Option<&V> {
        self.get(key)
    }
}

impl<K: Ord + Clone, V: Clone> Lookup<K, V> for imbl::OrdMap<K, V> {
    fn lookup(&self, key: &K) -> Option<&V> {
        self.get(key)
    }
}

fn one<'a, K, V: 'a>(
    map: &'a impl Lookup<K, V>,
    key: &K,
    tenant: TenantId,
    of: impl Fn(&V) -> TenantId,
) -> Option<&'a V> {
    map.lookup(key).filter(|v| of(v) == tenant)
}

impl Bookings {
    /// The view of `tenant`'s records.
    pub fn for_tenant(&self, tenant: TenantId) -> TenantView<'_> {
        TenantView {
            state: self,
            tenant,
        }
    }
}

impl<'a> TenantView<'a> {
    pub fn id(&self) -> TenantId {
        self.tenant
    }

    /// The tenant itself; None if it does not exist.
    pub fn tenant(&self) -> Option<&'a Tenant> {
        self.state.school.tenants().get(&self.tenant)
    }

    pub fn calendar(&self) -> Calendar {
        self.state.calendar(self.tenant)
    }

    pub fn site(&self) -> Option<&'a Site> {
        self.state.venue.sites().get(&self.tenant)
    }

    /// The site as set, published or not, with defaults when never set.
    pub fn site_spec(&self) -> SiteSpec {
        self.state.site_of(self.tenant)
    }

    /// Enquiries, newest first; only open ones unless `all`.
    pub fn enquiries(&self, all: bool) -> Vec<&'a Enquiry> {
        self.state.enquiries_of(self.tenant, all)
    }

    pub fn room(&self, id: RoomId) -> Option<&'a Room> {
        one(self.state.school.rooms(), &id, self.tenant, |r| r.tenant)
    }

    /// Rooms in id order.
    pub fn rooms(&self) -> impl Iterator<Item = &'a Room> {
        owned(self.state.school.rooms(), self.tenant, |r| r.tenant)
    }

    /// Rooms in name order.
    pub fn rooms_by_name(&self) -> Vec<&'a Room> {
        self.state.rooms_of(self.tenant)
    }

    pub fn booking(&self, id: BookingId) -> Option<&'a Booking> {
        one(self.state.booking.bookings(), &id, self.tenant, |b| {
            b.tenant
        })
        .map(Arc::as_ref)
    }

    pub fn bookings(&self) -> impl Iterator<Item = &'a Booking> {
        owned(self.state.booking.bookings(), self.tenant, |b| b.tenant).map(Arc::as_ref)
    }

    pub fn series(&self, id: SeriesId) -> Option<&'a Series> {
        one(self.state.booking.series(), &id, self.tenant, |s| s.tenant)
    }

    pub fn user(&self, id: UserId) -> Option<&'a User> {
        one(self.state.people.users(), &id, self.tenant, |u| u.tenant)
    }

    pub fn users(&self) -> impl Iterator<Item = &'a User> {
        owned(self.state.people.users(), self.tenant, |u| u.tenant)
    }

    pub fn department(&self, id: DepartmentId) -> Option<&'a Department> {
        one(self.state.people.departments(), &id, self.tenant, |d| {
            d.tenant
        })
    }

    pub fn departments(&self) -> impl Iterator<Item = &'a Department> {
        owned(self.state.people.departments(), self.tenant, |d| d.tenant)
    }

    pub fn lessons(&self) -> impl Iterator<Item = &'a Lesson> {
        owned(self.state.school.lessons(), self.tenant, |l| l.tenant)
    }

    pub fn tokens(&self) -> impl Iterator<Item = &'a ApiToken> {
        owned(self.state.people.tokens(), self.tenant, |t| t.tenant)
    }

    pub fn feeds(&self) -> impl Iterator<Item = &'a Feed> {
        owned(self.state.feeds.feeds(), self.tenant, |f| f.tenant)
    }

    /// Audit entries, oldest first.
    pub fn audit(&self) -> impl Iterator<Item = AuditEntry> + 'a {
        self.state
            .audit
            .of_tenant(self.tenant)
            .map(Arc::unwrap_or_clone)
    }

    /// The kinds of object the school's audit history mentions, in order.
    pub fn audit_kinds(&self) -> Vec<String> {
        self.state.audit.kinds(self.tenant)
    }

    /// Audit entries newest first, optionally for one object or one user, at most `limit`.
    pub fn audit_of(
        &self,
        object: Option<(&str, u64)>,
        user: Option<UserId>,
        limit: usize,
    ) -> Vec<AuditEntry> {
        self.state.audit_of(self.tenant, object, user, limit)
    }

    /// Audit entries newest first that `keep` accepts, at most `limit`: read block by block, so
    /// a search that fills its page early decompresses only the newest entries.
    pub fn audit_where(&self, limit: usize, keep: impl Fn(&AuditEntry) -> bool) -> Vec<AuditEntry> {
        self.state
            .audit
            .newest(self.tenant, None, None, limit, keep)
    }

    /// Bookings holding `room`'s slots between `from` and `to`, by start; none for a room of
    /// another school.
    pub fn bookings_in(&self, room: RoomId, from: Timestamp, to: Timestamp) -> Vec<&'a Booking> {
        match self.room(room) {
            Some(_) => self.state.bookings_in(room, from, to),
            None => Vec::new(),
        }
    }

    /// The lesson instances in `room` between `from` and `to`: each lesson with its start and end.
    pub fn lessons_in(
        &self,
        room: RoomId,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(&'a Lesson, Timestamp, Timestamp)> {
        match (self.tenant(), self.room(room)) {
            (Some(t), Some(_)) => self.state.lessons_in(t, room, from, to),
            _ => Vec::new(),
        }
    }

    /// What occupies `room` between `from` and `to`: bookings and lesson instances, by start.
    pub fn occupancy(&self, room: RoomId, from: Timestamp, to: Timestamp) -> Vec<Occupation<'a>> {
        match (self.tenant(), self.room(room)) {
            (Some(t), Some(_)) => self.state.occupancy(t, room, from, to),
            _ => Vec::new(),
        }
    }

    /// The first thing `room` clashes with between `start` and `end` (only other bookings
    /// when `bookings_only`, as an admin's override sees it).
    pub fn clash(
        &self,
        room: RoomId,
        start: Timestamp,
        end: Timestamp,
        bookings_only: bool,
    ) -> Option<Clash> {
        let t = self.tenant()?;
        self.room(room)?;
        self.state.clash(t, room, start, end, bookings_only)
    }

    /// Whether `user` acting as `role` may book `room` from `start` to `end` at `now`: the
    /// rules and the room's own restrictions, free or not. False for another school's room.
    pub fn may_book(
        &self,
        room: &Room,
        user: &User,
        role: Role,
        now: Timestamp,
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        match self.tenant() {
            Some(t) if room.tenant == t.id && user.tenant == t.id => {
                self.state.may_book(t, room, user, role, now, start, end)
            }
            _ => false,
        }
    }

    /// Bookable rooms matching `filter` with no clash between `from` and `to`, by name.
    pub fn free_rooms(&self, from: Timestamp, to: Timestamp, filter: &RoomFilter) -> Vec<&'a Room> {
        match self.tenant() {
            Some(t) => self.state.free_rooms(t, from, to, filter),
            None => Vec::new(),
        }
    }

    /// The periods of `date` in the school's zone.
    pub fn periods_on<'c>(&self, cal: &'c Calendar, date: Date) -> Vec<DatedPeriod<'c>> {
        match self.tenant() {
            Some(t) => self.state.periods_on(t, cal, date),
            None => Vec::new(),
        }
    }

    /// `user`'s bookings ending after `from`, by start; none for a user of another school.
    pub fn bookings_of_user(&self, user: UserId, from: Timestamp) -> Vec<&'a Booking> {
        match self.user(user) {
            Some(_) => self.state.bookings_of_user(user, from),
            None => Vec::new(),
        }
    }

    /// The school's visitor statistics for the local days `from` to `to`.
    pub fn analytics_report(&self, from: Date, to: Date, limit: usize) -> Report {
        self.state.analytics_report(self.tenant, from, to, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_sees_its_own_tenant_only() {
        let mut st = Bookings::default();
        for (id, tenant) in [(1, 10), (2, 20), (3, 10)] {
            st.index_school(crate::school::SchoolRecord::Room(Room {
                id,
                tenant,
                name: format!("room {id}"),
                category: String::new(),
                capacity: 30,
                location: String::new(),
                description: String::new(),
                bookable: true,
                allowed_roles: Vec::new(),
                allowed_departments: Vec::new(),
                approval_required: false,
                rules: Default::default(),
                created_at: jiff::Timestamp::UNIX_EPOCH,
            }));
        }
        let v = st.for_tenant(10);
        assert_eq!(v.rooms().map(|r| r.id).collect::<Vec<_>>(), vec![1, 3]);
        assert!(v.room(2).is_none());
        assert_eq!(v.room(3).map(|r| r.id), Some(3));
        assert!(st.for_tenant(30).rooms().next().is_none());
    }
}
