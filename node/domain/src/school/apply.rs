//! Rooms, the term calendar, the A/B week cycle and the school day's periods.

use std::collections::BTreeSet;

use roomraft_replicated::WriteSet;

use crate::apply::{invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::model::{
    AcademicYear, Calendar, CalendarId, Closure, Outcome, Rejection, Room, RoomId, RoomSpec,
    TenantId, Term,
};
use crate::quotas::Kind;
use crate::school::SchoolRecord;

use super::tenant::check_rules;
use super::{CreateClosure, CreateTerm, CreateYear, DeleteCalendarItem, SetPeriods};

impl Bookings {
    pub(crate) fn save_room(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        existing: Option<RoomId>,
        spec: &RoomSpec,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        text("name", &spec.name, 200, true)?;
        text("category", &spec.category, 64, true)?;
        text("location", &spec.location, 200, false)?;
        text("description", &spec.description, 4000, false)?;
        check_rules(&spec.rules)?;
        if spec.allowed_roles.iter().any(|r| !r.can_book()) {
            return Err(invalid("allowed_roles", "use admin or staff"));
        }
        for d in &spec.allowed_departments {
            if self
                .people
                .departments()
                .get(d)
                .is_none_or(|x| x.tenant != tenant)
            {
                return Err(invalid("allowed_departments", format!("no department {d}")));
            }
        }
        let duplicate = self.school.rooms.values().any(|r| {
            r.tenant == tenant && r.name.eq_ignore_ascii_case(&spec.name) && Some(r.id) != existing
        });
        if duplicate {
            return Err(Rejection::AlreadyExists {
                what: "room".into(),
                key: spec.name.clone(),
            });
        }
        let (before, id, created_at) = match existing {
            Some(id) => {
                let r = self
                    .school
                    .rooms
                    .get(&id)
                    .filter(|r| r.tenant == tenant)
                    .ok_or_else(|| not_found("room", id))?;
                (Some(to_json(r)), id, r.created_at)
            }
            None => {
                self.check_quota(ctx, tenant, Kind::Room, 1)?;
                (None, ctx.new_id(), ctx.time)
            }
        };
        let room = Room {
            id,
            tenant,
            name: spec.name.clone(),
            category: spec.category.clone(),
            capacity: spec.capacity,
            location: spec.location.clone(),
            description: spec.description.clone(),
            bookable: spec.bookable,
            allowed_roles: spec.allowed_roles.clone(),
            allowed_departments: spec.allowed_departments.clone(),
            approval_required: spec.approval_required,
            rules: spec.rules.clone(),
            created_at,
        };
        self.store(SchoolRecord::Room(room.clone()), writes);
        let action = if before.is_some() {
            "updated"
        } else {
            "created"
        };
        self.audit(
            ctx,
            tenant,
            ("room", id),
            action,
            before,
            Some(to_json(&room)),
            writes,
        );
        Ok(if existing.is_some() {
            Outcome::Room(room)
        } else {
            Outcome::RoomCreated(room)
        })
    }

    /// The start of every edit of the term calendar (years, terms, closures, periods): it takes
    /// one id, used or not, before anything can be refused, because ids are part of what a
    /// replay repeats; then only a tenant admin may go on.
    fn begin_calendar_edit(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
    ) -> Result<CalendarId, Rejection> {
        let id = ctx.new_id();
        self.admin(ctx, tenant)?;
        Ok(id)
    }

    fn store_calendar(&mut self, tenant: TenantId, cal: Calendar, writes: &mut WriteSet) -> Res {
        self.store(SchoolRecord::Calendar((tenant, cal.clone())), writes);
        Ok(Outcome::Calendar(cal))
    }

    pub(crate) fn set_week_cycle(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        labels: &[String],
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        if labels.is_empty() || labels.len() > 8 {
            return Err(invalid(
                "labels",
                "give 1 to 8 week labels, like [\"A\", \"B\"]",
            ));
        }
        let mut seen = BTreeSet::new();
        for l in labels {
            text("labels", l, 16, true)?;
            if !seen.insert(l.to_lowercase()) {
                return Err(invalid("labels", format!("week {l:?} appears twice")));
            }
        }
        let mut cal = self.calendar(tenant);
        if let Some(t) = cal
            .terms
            .iter()
            .find(|t| t.first_week as usize >= labels.len())
        {
            return Err(invalid(
                "labels",
                format!("term {:?} starts in a week the new cycle lacks", t.name),
            ));
        }
        cal.week_labels = labels.to_vec();
        self.store_calendar(tenant, cal, writes)
    }

    pub(crate) fn create_year(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateYear,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateYear {
            tenant,
            name,
            start,
            end,
        } = op;
        let id = self.begin_calendar_edit(ctx, *tenant)?;
        text("name", name, 100, true)?;
        if end < start {
            return Err(invalid("end", "must not be before start"));
        }
        let mut cal = self.calendar(*tenant);
        if let Some(y) = cal
            .years
            .iter()
            .find(|y| y.start <= *end && *start <= y.end)
        {
            return Err(invalid("start", format!("overlaps year {:?}", y.name)));
        }
        cal.years.push(AcademicYear {
            id,
            name: name.clone(),
            start: *start,
            end: *end,
        });
        cal.years.sort_by_key(|y| y.start);
        self.store_calendar(*tenant, cal, writes)
    }

    pub(crate) fn create_term(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateTerm,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateTerm {
            tenant,
            year,
            name,
            start,
            end,
            first_week,
        } = op;
        let id = self.begin_calendar_edit(ctx, *tenant)?;
        text("name", name, 100, true)?;
        let mut cal = self.calendar(*tenant);
        let y = cal
            .years
            .iter()
            .find(|y| y.id == *year)
            .ok_or_else(|| invalid("year_id", format!("no academic year {year}")))?;
        if end < start {
            return Err(invalid("end", "must not be before start"));
        }
        if *start < y.start || *end > y.end {
            return Err(invalid(
                "start",
                format!("must lie within {} ({} to {})", y.name, y.start, y.end),
            ));
        }
        if let Some(t) = cal
            .terms
            .iter()
            .find(|t| t.start <= *end && *start <= t.end)
        {
            return Err(invalid("start", format!("overlaps term {:?}", t.name)));
        }
        let first = cal
            .week_labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(first_week))
            .ok_or_else(|| {
                invalid(
                    "first_week",
                    format!("use one of the week labels {:?}", cal.week_labels),
                )
            })?;
        cal.terms.push(Term {
            id,
            year: *year,
            name: name.clone(),
            start: *start,
            end: *end,
            first_week: first as u8,
        });
        cal.terms.sort_by_key(|t| t.start);
        self.store_calendar(*tenant, cal, writes)
    }

    pub(crate) fn create_closure(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateClosure,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateClosure {
            tenant,
            name,
            kind,
            start,
            end,
        } = op;
        let id = self.begin_calendar_edit(ctx, *tenant)?;
        text("name", name, 100, true)?;
        if end < start {
            return Err(invalid("end", "must not be before start"));
        }
        if (*end - *start).get_days() > 400 {
            return Err(invalid("end", "a closure lasts at most 400 days"));
        }
        let mut cal = self.calendar(*tenant);
        cal.closures.push(Closure {
            id,
            name: name.clone(),
            kind: *kind,
            start: *start,
            end: *end,
        });
        cal.closures.sort_by_key(|c| c.start);
        self.store_calendar(*tenant, cal, writes)
    }

    pub(crate) fn delete_calendar_item(
        &mut self,
        ctx: &mut Ctx,
        op: &DeleteCalendarItem,
        writes: &mut WriteSet,
    ) -> Res {
        let DeleteCalendarItem { tenant, id } = op;
        self.begin_calendar_edit(ctx, *tenant)?;
        let mut cal = self.calendar(*tenant);
        let before = (cal.years.len(), cal.terms.len(), cal.closures.len());
        cal.years.retain(|y| y.id != *id);
        cal.terms.retain(|t| t.id != *id && t.year != *id);
        cal.closures.retain(|c| c.id != *id);
        if before == (cal.years.len(), cal.terms.len(), cal.closures.len()) {
            return Err(not_found("calendar item", id));
        }
        self.store_calendar(*tenant, cal, writes)
    }

    pub(crate) fn set_periods(
        &mut self,
        ctx: &mut Ctx,
        op: &SetPeriods,
        writes: &mut WriteSet,
    ) -> Res {
        let SetPeriods { tenant, periods } = op;
        self.begin_calendar_edit(ctx, *tenant)?;
        let mut sorted = periods.clone();
        sorted.sort_by_key(|p| (p.weekday, p.start));
        for (i, p) in sorted.iter().enumerate() {
            if !(1..=7).contains(&p.weekday) {
                return Err(invalid("weekday", "use 1 (Monday) to 7 (Sunday)"));
            }
            text("name", &p.name, 32, true)?;
            if p.end <= p.start {
                return Err(invalid(
                    "end",
                    format!("period {:?} ends before it starts", p.name),
                ));
            }
            if let Some(next) = sorted.get(i + 1) {
                if next.weekday == p.weekday && next.start < p.end {
                    return Err(invalid(
                        "start",
                        format!("periods {:?} and {:?} overlap", p.name, next.name),
                    ));
                }
            }
            if sorted[..i]
                .iter()
                .any(|q| q.weekday == p.weekday && q.name.eq_ignore_ascii_case(&p.name))
            {
                return Err(invalid(
                    "name",
                    format!("period {:?} appears twice on one day", p.name),
                ));
            }
        }
        let mut cal = self.calendar(*tenant);
        cal.periods = sorted;
        self.store_calendar(*tenant, cal, writes)
    }
}
