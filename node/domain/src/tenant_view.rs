//! One school's records, and nothing of another's: what the use cases read through, so a query
//! cannot forget the tenant check. Every accessor filters by the view's tenant; the rooms it
//! returns are the only ids a caller can pass on to the state-wide queries.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{
    ApiToken, AuditEntry, Booking, BookingId, Bookings, Calendar, Department, DepartmentId,
    Enquiry, Feed, Lesson, Room, RoomId, Series, SeriesId, Site, SiteSpec, Tenant, TenantId, User,
    UserId,
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

fn one<'a, K: Ord, V>(
    map: &'a BTreeMap<K, V>,
    key: &K,
    tenant: TenantId,
    of: impl Fn(&V) -> TenantId,
) -> Option<&'a V> {
    map.get(key).filter(|v| of(v) == tenant)
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
        self.state.tenants.get(&self.tenant)
    }

    pub fn calendar(&self) -> Calendar {
        self.state.calendar(self.tenant)
    }

    pub fn site(&self) -> Option<&'a Site> {
        self.state.sites.get(&self.tenant)
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
        one(&self.state.rooms, &id, self.tenant, |r| r.tenant)
    }

    /// Rooms in id order.
    pub fn rooms(&self) -> impl Iterator<Item = &'a Room> {
        owned(&self.state.rooms, self.tenant, |r| r.tenant)
    }

    /// Rooms in name order.
    pub fn rooms_by_name(&self) -> Vec<&'a Room> {
        self.state.rooms_of(self.tenant)
    }

    pub fn booking(&self, id: BookingId) -> Option<&'a Booking> {
        one(&self.state.bookings, &id, self.tenant, |b| b.tenant).map(Arc::as_ref)
    }

    pub fn bookings(&self) -> impl Iterator<Item = &'a Booking> {
        owned(&self.state.bookings, self.tenant, |b| b.tenant).map(Arc::as_ref)
    }

    pub fn series(&self, id: SeriesId) -> Option<&'a Series> {
        one(&self.state.series, &id, self.tenant, |s| s.tenant)
    }

    pub fn user(&self, id: UserId) -> Option<&'a User> {
        one(&self.state.users, &id, self.tenant, |u| u.tenant)
    }

    pub fn users(&self) -> impl Iterator<Item = &'a User> {
        owned(&self.state.users, self.tenant, |u| u.tenant)
    }

    pub fn department(&self, id: DepartmentId) -> Option<&'a Department> {
        one(&self.state.departments, &id, self.tenant, |d| d.tenant)
    }

    pub fn departments(&self) -> impl Iterator<Item = &'a Department> {
        owned(&self.state.departments, self.tenant, |d| d.tenant)
    }

    pub fn lessons(&self) -> impl Iterator<Item = &'a Lesson> {
        owned(&self.state.lessons, self.tenant, |l| l.tenant)
    }

    pub fn tokens(&self) -> impl Iterator<Item = &'a ApiToken> {
        owned(&self.state.tokens, self.tenant, |t| t.tenant)
    }

    pub fn feeds(&self) -> impl Iterator<Item = &'a Feed> {
        owned(&self.state.feeds, self.tenant, |f| f.tenant)
    }

    /// Audit entries, oldest first.
    pub fn audit(&self) -> impl Iterator<Item = &'a AuditEntry> {
        owned(&self.state.audit, self.tenant, |a| a.tenant).map(Arc::as_ref)
    }

    /// Audit entries newest first, optionally for one object or one user, at most `limit`.
    pub fn audit_of(
        &self,
        object: Option<(&str, u64)>,
        user: Option<UserId>,
        limit: usize,
    ) -> Vec<&'a AuditEntry> {
        self.state.audit_of(self.tenant, object, user, limit)
    }

    /// The whole state, for the domain's queries that take ids: pass them only ids this view
    /// returned (a room from [`TenantView::room`], a user from [`TenantView::user`]).
    pub fn state(&self) -> &'a Bookings {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_sees_its_own_tenant_only() {
        let mut st = Bookings::default();
        for (id, tenant) in [(1, 10), (2, 20), (3, 10)] {
            st.rooms.insert(
                id,
                Room {
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
                },
            );
        }
        let v = st.for_tenant(10);
        assert_eq!(v.rooms().map(|r| r.id).collect::<Vec<_>>(), vec![1, 3]);
        assert!(v.room(2).is_none());
        assert_eq!(v.room(3).map(|r| r.id), Some(3));
        assert!(st.for_tenant(30).rooms().next().is_none());
    }
}
