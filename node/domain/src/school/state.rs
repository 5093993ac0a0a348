//! The school area's state: schools, rooms, calendars, lessons and their indexes.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Calendar, Lesson, LessonId, Room, RoomId, Tenant, TenantId};

/// The school area's part of `Bookings`. Its fields are private to `school/`: only this area's
/// apply and `index_school` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolState {
    pub(super) tenants: BTreeMap<TenantId, Tenant>,
    pub(super) rooms: BTreeMap<RoomId, Room>,
    pub(super) calendars: BTreeMap<TenantId, Calendar>,
    pub(super) lessons: BTreeMap<LessonId, Lesson>,
    /// Each room's lessons.
    pub(super) room_lessons: BTreeMap<RoomId, BTreeSet<LessonId>>,
    /// Schools by short name.
    pub(super) slugs: BTreeMap<String, TenantId>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl SchoolState {
    pub(crate) fn tenants(&self) -> &BTreeMap<TenantId, Tenant> {
        &self.tenants
    }

    pub(crate) fn rooms(&self) -> &BTreeMap<RoomId, Room> {
        &self.rooms
    }

    pub(crate) fn calendars(&self) -> &BTreeMap<TenantId, Calendar> {
        &self.calendars
    }

    pub(crate) fn lessons(&self) -> &BTreeMap<LessonId, Lesson> {
        &self.lessons
    }

    pub(crate) fn room_lessons(&self) -> &BTreeMap<RoomId, BTreeSet<LessonId>> {
        &self.room_lessons
    }

    pub(crate) fn slugs(&self) -> &BTreeMap<String, TenantId> {
        &self.slugs
    }
}
