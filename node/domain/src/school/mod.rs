//! The school itself: creating and suspending it, its booking rules, its rooms, its term
//! calendar and periods, and its timetable of lessons.

mod apply;
mod model;
mod ops;
mod records;
mod state;
mod tenant;
mod timetable;

pub use model::{
    AcademicYear, Calendar, Closure, ClosureKind, Lesson, LessonImport, LessonSpec, Period,
    PeriodKind, Room, RoomSpec, Rules, Tenant, Term,
};
pub use ops::{
    CreateClosure, CreateLesson, CreateRoom, CreateTenant, CreateTerm, CreateYear,
    DeleteCalendarItem, DeleteLesson, ImportLessons, Imported, SchoolOp, SetLessonRelease,
    SetPeriods, SetTenantRules, SetTenantSuspended, SetWeekCycle, UpdateRoom,
};
pub(crate) use records::SchoolRecord;
pub(crate) use state::SchoolState;
pub use timetable::{lessons_overlap, ImportPlan, MAX_IMPORT_ROWS};

use roomraft_replicated::WriteSet;

use crate::apply::{Bookings, Ctx, Res};

impl Bookings {
    pub(crate) fn apply_school(
        &mut self,
        ctx: &mut Ctx,
        op: &SchoolOp,
        writes: &mut WriteSet,
    ) -> Res {
        match op {
            SchoolOp::CreateYear(op) => self.create_year(ctx, op, writes),
            SchoolOp::CreateTerm(op) => self.create_term(ctx, op, writes),
            SchoolOp::CreateClosure(op) => self.create_closure(ctx, op, writes),
            SchoolOp::DeleteCalendarItem(op) => self.delete_calendar_item(ctx, op, writes),
            SchoolOp::SetPeriods(op) => self.set_periods(ctx, op, writes),
            SchoolOp::CreateTenant(CreateTenant {
                slug,
                name,
                time_zone,
                admin_token_sha256,
            }) => self.create_tenant(ctx, slug, name, time_zone, admin_token_sha256, writes),
            SchoolOp::SetTenantSuspended(SetTenantSuspended { tenant, suspended }) => {
                self.set_suspended(ctx, *tenant, *suspended, writes)
            }
            SchoolOp::SetTenantRules(SetTenantRules { tenant, rules }) => {
                self.set_rules(ctx, *tenant, rules, writes)
            }
            SchoolOp::CreateRoom(CreateRoom { tenant, spec }) => {
                self.save_room(ctx, *tenant, None, spec, writes)
            }
            SchoolOp::UpdateRoom(UpdateRoom { tenant, room, spec }) => {
                self.save_room(ctx, *tenant, Some(*room), spec, writes)
            }
            SchoolOp::SetWeekCycle(SetWeekCycle { tenant, labels }) => {
                self.set_week_cycle(ctx, *tenant, labels, writes)
            }
            SchoolOp::CreateLesson(CreateLesson {
                tenant,
                room,
                lesson,
            }) => self.create_lesson(ctx, *tenant, *room, lesson, writes),
            SchoolOp::DeleteLesson(DeleteLesson { tenant, lesson }) => {
                self.delete_lesson(ctx, *tenant, *lesson, writes)
            }
            SchoolOp::ImportLessons(ImportLessons {
                tenant,
                lessons,
                replace,
            }) => self.import_lessons(ctx, *tenant, lessons, *replace, writes),
            SchoolOp::SetLessonRelease(SetLessonRelease {
                tenant,
                lesson,
                date,
                released,
            }) => self.release_lesson(ctx, *tenant, *lesson, *date, *released, writes),
        }
    }
}
