//! The timetable: a room's lessons, one at a time or imported whole, and lessons released for
//! one date.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::model::{
    Clash, Lesson, LessonId, LessonImport, LessonSpec, Outcome, Rejection, RoomId, RowError,
    TenantId,
};
use crate::quotas::Kind;
use crate::school::SchoolRecord;

/// Most lessons one import may carry (commands of version 2 on): a whole school's timetable
/// fits many times over, and apply's work stays bounded.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// What an import adds, and how many of its rows the timetable already holds exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    pub add: Vec<(RoomId, LessonSpec)>,
    pub unchanged: usize,
}

/// Whether two lessons of one room would hold it at once on some date: the same weekday,
/// overlapping times and date ranges, and weeks of the cycle that can coincide (a lesson of
/// every week coincides with all; week A never with week B).
pub fn lessons_overlap(a: &LessonSpec, b: &LessonSpec) -> bool {
    a.weekday == b.weekday
        && a.start < b.end
        && b.start < a.end
        && a.from <= b.to
        && b.from <= a.to
        && match (&a.week, &b.week) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

fn overlap_message(what: &str, other: &LessonSpec) -> String {
    let mut lesson = other.subject.clone();
    if !other.class_name.is_empty() {
        lesson.push(' ');
        lesson.push_str(&other.class_name);
    }
    let week = other
        .week
        .as_deref()
        .map(|w| format!(", week {w}"))
        .unwrap_or_default();
    format!(
        "overlaps {what} ({lesson}, {}–{}{week}) in the same room; lessons that alternate need different weeks of the cycle",
        other.start.strftime("%H:%M"),
        other.end.strftime("%H:%M"),
    )
}

fn check_lesson(l: &LessonSpec) -> Result<(), Rejection> {
    if !(1..=7).contains(&l.weekday) {
        return Err(invalid("weekday", "use 1 (Monday) to 7 (Sunday)"));
    }
    if l.end <= l.start {
        return Err(invalid("end", "must be after start"));
    }
    if l.to < l.from {
        return Err(invalid("to", "must not be before from"));
    }
    text("subject", &l.subject, 100, true)?;
    text("class_name", &l.class_name, 100, false)?;
    text("teacher", &l.teacher, 100, false)?;
    Ok(())
}

impl Bookings {
    pub(crate) fn create_lesson(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        room: RoomId,
        spec: &LessonSpec,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        if self
            .school
            .rooms
            .get(&room)
            .is_none_or(|r| r.tenant != tenant)
        {
            return Err(invalid("room_id", format!("no room {room}")));
        }
        check_lesson(spec)?;
        self.check_week(tenant, spec)?;
        if ctx.since(2) {
            let others = self.school.room_lessons.get(&room).into_iter().flatten();
            if let Some(l) = others
                .map(|id| &self.school.lessons[id])
                .find(|l| lessons_overlap(&l.spec, spec))
            {
                return Err(invalid(
                    "start",
                    overlap_message(&format!("lesson {}", l.id), &l.spec),
                ));
            }
        }
        self.check_quota(ctx, tenant, Kind::Lesson, 1)?;
        let lesson = Lesson {
            id: ctx.new_id(),
            tenant,
            room,
            spec: spec.clone(),
            released: BTreeSet::new(),
        };
        self.store(SchoolRecord::Lesson(lesson.clone()), writes);
        self.audit(
            ctx,
            tenant,
            ("lesson", lesson.id),
            "created",
            None,
            Some(to_json(&lesson)),
            writes,
        );
        Ok(Outcome::Lesson(lesson))
    }

    fn check_week(&self, tenant: TenantId, spec: &LessonSpec) -> Result<(), Rejection> {
        if let Some(w) = &spec.week {
            let cal = self.school.calendars.get(&tenant);
            let labels = cal
                .map(|c| c.week_labels.clone())
                .unwrap_or_else(|| vec!["A".into()]);
            if !labels.iter().any(|l| l == w) {
                return Err(invalid(
                    "week",
                    format!(
                        "use one of the week labels {labels:?}, or leave it empty for every week"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn delete_lesson(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: LessonId,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        let l = self
            .school
            .lessons
            .get(&id)
            .filter(|l| l.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("lesson", id))?;
        let before = to_json(&l);
        self.discard(SchoolRecord::Lesson(l), writes);
        self.audit(
            ctx,
            tenant,
            ("lesson", id),
            "deleted",
            Some(before),
            None,
            writes,
        );
        Ok(Outcome::Done)
    }

    /// What an import would do, checked as apply checks it: the lessons it adds and how many
    /// rows are already in the timetable exactly, or every row's problem at once. With `v2`
    /// (commands of version 2 on) a lesson may not overlap another in its room (lessons in
    /// different weeks of the cycle never do), and a row the timetable already holds is left
    /// as it is, so uploading the same file twice gives the same timetable.
    pub fn plan_import(
        &self,
        tenant: TenantId,
        rows: &[LessonImport],
        replace: bool,
        v2: bool,
    ) -> Result<ImportPlan, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut plan = ImportPlan::default();
        // This import's lessons so far, by room and weekday, with their rows.
        let mut added: BTreeMap<(RoomId, u8), Vec<(u32, LessonSpec)>> = BTreeMap::new();
        // By name, ignoring ASCII case; the first room in id order wins, as it always has.
        let mut rooms: BTreeMap<String, RoomId> = BTreeMap::new();
        for x in self.school.rooms.values().filter(|x| x.tenant == tenant) {
            rooms.entry(x.name.to_ascii_lowercase()).or_insert(x.id);
        }
        for r in rows {
            let mut row_error = |field: String, message: String| {
                errors.push(RowError {
                    row: r.row,
                    field,
                    message,
                })
            };
            let room = rooms.get(&r.room.trim().to_ascii_lowercase()).copied();
            let checked = match room {
                None => Err(invalid("room", format!("no room named {:?}", r.room))),
                Some(room) => check_lesson(&r.lesson)
                    .and_then(|_| self.check_week(tenant, &r.lesson))
                    .map(|_| room),
            };
            let room = match checked {
                Ok(room) => room,
                Err(Rejection::Invalid { field, message }) => {
                    row_error(field, message);
                    continue;
                }
                Err(other) => {
                    row_error("row".into(), format!("{other:?}"));
                    continue;
                }
            };
            if !v2 {
                plan.add.push((room, r.lesson.clone()));
                continue;
            }
            let same_slot = added.entry((room, r.lesson.weekday)).or_default();
            if let Some((row, _)) = same_slot.iter().find(|(_, l)| *l == r.lesson) {
                row_error("row".into(), format!("repeats row {row}"));
                continue;
            }
            if let Some((row, l)) = same_slot
                .iter()
                .find(|(_, l)| lessons_overlap(l, &r.lesson))
            {
                row_error("start".into(), overlap_message(&format!("row {row}"), l));
                continue;
            }
            if !replace {
                let existing = self.school.room_lessons.get(&room).into_iter().flatten();
                let mut clash = None;
                let mut same = false;
                for l in existing.map(|id| &self.school.lessons[id]) {
                    if l.spec == r.lesson {
                        same = true;
                        break;
                    }
                    if clash.is_none() && lessons_overlap(&l.spec, &r.lesson) {
                        clash = Some(l);
                    }
                }
                if same {
                    plan.unchanged += 1;
                    same_slot.push((r.row, r.lesson.clone()));
                    continue;
                }
                if let Some(l) = clash {
                    row_error(
                        "start".into(),
                        overlap_message(&format!("lesson {}", l.id), &l.spec),
                    );
                    continue;
                }
            }
            same_slot.push((r.row, r.lesson.clone()));
            plan.add.push((room, r.lesson.clone()));
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    pub(crate) fn import_lessons(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        rows: &[LessonImport],
        replace: bool,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        if ctx.since(2) && rows.len() > MAX_IMPORT_ROWS {
            return Err(invalid(
                "lessons",
                format!("import at most {MAX_IMPORT_ROWS} lessons at once"),
            ));
        }
        let plan = self
            .plan_import(tenant, rows, replace, ctx.since(2))
            .map_err(Rejection::Rows)?;
        if plan.add.len() as u64 + 2 >= ctx.ids_left() {
            return Err(invalid("lessons", "import at most 999,999 lessons at once"));
        }
        let removed = if replace {
            self.stored(tenant, Kind::Lesson)
        } else {
            0
        };
        let adding = (plan.add.len() as u64).saturating_sub(removed);
        self.check_quota(ctx, tenant, Kind::Lesson, adding)?;
        if replace {
            let old: Vec<Lesson> = self
                .school
                .lessons
                .values()
                .filter(|l| l.tenant == tenant)
                .cloned()
                .collect();
            for l in old {
                self.discard(SchoolRecord::Lesson(l), writes);
            }
        }
        let count = plan.add.len();
        for (room, spec) in plan.add {
            let lesson = Lesson {
                id: ctx.new_id(),
                tenant,
                room,
                spec,
                released: BTreeSet::new(),
            };
            self.store(SchoolRecord::Lesson(lesson), writes);
        }
        self.audit(
            ctx,
            tenant,
            ("timetable", tenant),
            if replace { "replaced" } else { "imported" },
            None,
            Some(if ctx.since(2) {
                format!("{{\"lessons\":{count},\"unchanged\":{}}}", plan.unchanged)
            } else {
                format!("{{\"lessons\":{count}}}")
            }),
            writes,
        );
        Ok(if ctx.since(2) {
            Outcome::TimetableImported {
                imported: count,
                unchanged: plan.unchanged,
            }
        } else {
            Outcome::LessonsImported { count }
        })
    }

    pub(crate) fn release_lesson(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: LessonId,
        date: Date,
        released: bool,
        writes: &mut WriteSet,
    ) -> Res {
        self.member(ctx, tenant)?;
        if !ctx.actor.role.can_book() {
            return Err(forbidden("only staff and admins release lessons"));
        }
        let mut l = self
            .school
            .lessons
            .get(&id)
            .filter(|l| l.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("lesson", id))?;
        let cal = self.calendar(tenant);
        if released && !l.occurs_on(&cal, date) {
            return Err(invalid(
                "date",
                format!("lesson {id} does not run on {date}"),
            ));
        }
        if !released {
            // Taking a release back re-occupies the room: refuse it if someone booked meanwhile.
            let t = &self.school.tenants[&tenant];
            let tz = crate::calendar::zone(&t.time_zone);
            let start = crate::calendar::instant(&tz, date, l.spec.start);
            let end = crate::calendar::instant(&tz, date, l.spec.end);
            if let Some(b) = self.bookings_in(l.room, start, end).first() {
                return Err(Rejection::Conflict(Clash::Booking {
                    id: b.id,
                    start: b.start,
                    end: b.end,
                    title: b.title.clone(),
                }));
            }
        }
        let before = to_json(&l);
        if released {
            l.released.insert(date);
        } else {
            l.released.remove(&date);
        }
        self.store(SchoolRecord::Lesson(l.clone()), writes);
        self.audit(
            ctx,
            tenant,
            ("lesson", id),
            if released { "released" } else { "unreleased" },
            Some(before),
            Some(to_json(&l)),
            writes,
        );
        Ok(Outcome::Lesson(l))
    }
}
