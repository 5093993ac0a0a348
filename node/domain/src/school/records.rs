//! The school area's stored records: tenants, rooms, calendars and lessons.

use crate::apply::{id20, tkey, Bookings};
use crate::model::{Calendar, Lesson, Room, Tenant, TenantId};
use crate::quotas::Kind;
use crate::records::Record;

/// A stored record of the school area; its wire tag is in `records.rs`'s table.
#[derive(Debug, Clone)]
pub(crate) enum SchoolRecord {
    Tenant(Tenant),
    Room(Room),
    Calendar((TenantId, Calendar)),
    Lesson(Lesson),
}

impl SchoolRecord {
    /// Where the record lives: under its school's `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            SchoolRecord::Tenant(t) => tkey(t.id, "tenant", id20(t.id)),
            SchoolRecord::Room(r) => tkey(r.tenant, "room", id20(r.id)),
            SchoolRecord::Calendar((t, _)) => tkey(*t, "calendar", "0"),
            SchoolRecord::Lesson(l) => tkey(l.tenant, "lesson", id20(l.id)),
        }
    }
}

impl From<SchoolRecord> for Record {
    fn from(record: SchoolRecord) -> Record {
        Record::School(record)
    }
}

impl Bookings {
    pub(crate) fn index_school(&mut self, record: SchoolRecord) {
        match record {
            SchoolRecord::Tenant(t) => {
                self.school.slugs.insert(t.slug.clone(), t.id);
                self.school.tenants.insert(t.id, t);
            }
            SchoolRecord::Room(r) => {
                let tenant = r.tenant;
                if self.school.rooms.insert(r.id, r).is_none() {
                    self.count(tenant, Kind::Room, 1);
                }
            }
            SchoolRecord::Calendar((t, c)) => {
                self.school.calendars.insert(t, c);
            }
            SchoolRecord::Lesson(l) => {
                self.school
                    .room_lessons
                    .entry(l.room)
                    .or_default()
                    .insert(l.id);
                let tenant = l.tenant;
                if self.school.lessons.insert(l.id, l).is_none() {
                    self.count(tenant, Kind::Lesson, 1);
                }
            }
        }
    }

    /// Lessons are the school's only records ever deleted.
    pub(crate) fn discard_school(&mut self, record: SchoolRecord) {
        match record {
            SchoolRecord::Lesson(l) => {
                if self.school.lessons.remove(&l.id).is_some() {
                    self.count(l.tenant, Kind::Lesson, -1);
                }
                if let Some(set) = self.school.room_lessons.get_mut(&l.room) {
                    set.remove(&l.id);
                    if set.is_empty() {
                        self.school.room_lessons.remove(&l.room);
                    }
                }
            }
            other => unreachable!("records of this kind are never deleted: {other:?}"),
        }
    }

    pub(crate) fn school_records(&self, out: &mut Vec<Record>) {
        let records = (self
            .school
            .tenants
            .values()
            .cloned()
            .map(SchoolRecord::Tenant))
        .chain(self.school.rooms.values().cloned().map(SchoolRecord::Room))
        .chain((self.school.calendars.iter()).map(|(t, c)| SchoolRecord::Calendar((*t, c.clone()))))
        .chain(
            self.school
                .lessons
                .values()
                .cloned()
                .map(SchoolRecord::Lesson),
        );
        out.extend(records.map(Record::School));
    }
}
