//! The handlers of booking commands: conflicts against bookings, lessons and closures, rules,
//! approvals, recurring series and cancellation. Every decision here happens inside apply.

use jiff::{SignedDuration, Timestamp};
use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::booking::BookingRecord;
use crate::calendar::{dates_between, instant, zone, MAX_OCCURRENCES};
use crate::model::{
    Booking, BookingDetails, BookingId, BookingStatus, Calendar, CancelScope, Clash, DepartmentId,
    Lesson, Occurrence, Outcome, Rejection, Role, Room, RoomId, Series, SeriesId, SeriesMode,
    Tenant, TenantId, User, UserId,
};
use crate::quotas::Kind;

use super::CreateSeries;

/// Longest booking accepted, whatever the rules say.
const MAX_BOOKING: SignedDuration = SignedDuration::from_hours(24 * 14);

fn rule(rule: &str, message: String) -> Rejection {
    Rejection::Rule {
        rule: rule.into(),
        message,
    }
}

impl Bookings {
    /// Bookings holding `room`'s slots within `[from, to)`, by start.
    pub(crate) fn bookings_in(
        &self,
        room: RoomId,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<&Booking> {
        let Some(schedule) = self.booking.room_schedule.get(&room) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // The one booking starting before `from` may still run into the window.
        if let Some(((_, id), end)) = schedule.range(..(from, 0)).next_back() {
            if *end > from {
                out.push(&*self.booking.bookings[id]);
            }
        }
        for ((start, id), _) in schedule.range((from, 0)..) {
            if *start >= to {
                break;
            }
            out.push(&*self.booking.bookings[id]);
        }
        out
    }

    /// Lessons occupying `room` within `[from, to)`, with their instants, by start.
    pub(crate) fn lessons_in(
        &self,
        tenant: &Tenant,
        room: RoomId,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(&Lesson, Timestamp, Timestamp)> {
        let Some(ids) = self.school.room_lessons().get(&room) else {
            return Vec::new();
        };
        let default = Calendar::default();
        let cal = self.school.calendars().get(&tenant.id).unwrap_or(&default);
        let tz = zone(&tenant.time_zone);
        let mut out = Vec::new();
        for d in dates_between(&tz, from, to) {
            for l in ids.iter().map(|id| &self.school.lessons()[id]) {
                if l.occurs_on(cal, d) {
                    let (s, e) = (instant(&tz, d, l.spec.start), instant(&tz, d, l.spec.end));
                    if s < to && from < e {
                        out.push((l, s, e));
                    }
                }
            }
        }
        out.sort_by_key(|(l, s, _)| (*s, l.id));
        out
    }

    /// The first thing `[start, end)` in `room` clashes with: a booking, always; a closure or a
    /// lesson unless `bookings_only` (an admin's override).
    pub(crate) fn clash(
        &self,
        tenant: &Tenant,
        room: RoomId,
        start: Timestamp,
        end: Timestamp,
        bookings_only: bool,
    ) -> Option<Clash> {
        if let Some(b) = self.bookings_in(room, start, end).first() {
            return Some(Clash::Booking {
                id: b.id,
                start: b.start,
                end: b.end,
                title: b.title.clone(),
            });
        }
        if bookings_only {
            return None;
        }
        if let Some(cal) = self.school.calendars().get(&tenant.id) {
            let tz = zone(&tenant.time_zone);
            for d in dates_between(&tz, start, end) {
                if let Some(c) = cal.closure_on(d) {
                    return Some(Clash::Closure {
                        id: c.id,
                        name: c.name.clone(),
                        date: d,
                    });
                }
            }
        }
        self.lessons_in(tenant, room, start, end)
            .first()
            .map(|(l, s, e)| Clash::Lesson {
                id: l.id,
                start: *s,
                end: *e,
                subject: l.spec.subject.clone(),
                class_name: l.spec.class_name.clone(),
            })
    }

    /// Active future bookings held by `user`.
    fn active_count(&self, user: UserId, now: Timestamp) -> usize {
        self.booking.user_bookings.get(&user).map_or(0, |ids| {
            ids.iter()
                .filter(|id| {
                    let b = &self.booking.bookings[id];
                    b.status.holds_slot() && b.end > now
                })
                .count()
        })
    }

    /// Who may book `room` and on whose behalf; returns the user the booking is for.
    fn check_booker(
        &self,
        ctx: &Ctx,
        tenant: TenantId,
        room: &Room,
        details: &BookingDetails,
    ) -> Result<Option<UserId>, Rejection> {
        let role = ctx.actor.role;
        if !role.can_book() {
            return Err(forbidden("view-only users cannot book"));
        }
        let admin = role == Role::Admin;
        if let Some(reason) = &details.override_reason {
            if !admin {
                return Err(forbidden("only an admin may override booking rules"));
            }
            text("override_reason", reason, 500, true)?;
        }
        let user = match details.on_behalf_of {
            Some(u) if !admin => {
                return Err(forbidden(&format!(
                    "only an admin may book on behalf of user {u}"
                )))
            }
            Some(u) => {
                if !self
                    .people
                    .users()
                    .get(&u)
                    .is_some_and(|x| x.tenant == tenant && x.active)
                {
                    return Err(invalid("on_behalf_of", format!("no active user {u}")));
                }
                Some(u)
            }
            None => ctx.actor.user,
        };
        let overriding = details.override_reason.is_some();
        if !room.bookable && !overriding {
            return Err(forbidden(&format!("{} is not bookable", room.name)));
        }
        if !admin {
            let dept = user
                .and_then(|u| self.people.users().get(&u))
                .and_then(|u| u.department);
            Self::room_allows(room, role, dept)?;
        }
        text("title", &details.title, 200, true)?;
        text("notes", &details.notes, 4000, false)?;
        if let Some(p) = &details.period {
            text("period", p, 32, false)?;
        }
        Ok(user)
    }

    /// Whether `room` takes bookings from `role` (not an admin) in department `dept`.
    fn room_allows(room: &Room, role: Role, dept: Option<DepartmentId>) -> Result<(), Rejection> {
        if !room.allowed_roles.is_empty() && !room.allowed_roles.contains(&role) {
            return Err(forbidden(&format!(
                "{} is booked by {} only",
                room.name,
                room.allowed_roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !room.allowed_departments.is_empty()
            && !dept.is_some_and(|d| room.allowed_departments.contains(&d))
        {
            return Err(forbidden(&format!(
                "{} is booked by its departments only",
                room.name
            )));
        }
        Ok(())
    }

    /// Whether `user`, booking as `role`, may book `[start, end)` in `room` at `now` by the
    /// rules alone (who books the room, its booking rules, the past), leaving clashes aside:
    /// what a grid checks before it offers a slot.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn may_book(
        &self,
        tenant: &Tenant,
        room: &Room,
        user: &User,
        role: Role,
        now: Timestamp,
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        role.can_book()
            && room.bookable
            && end > now
            && (role == Role::Admin || Self::room_allows(room, role, user.department).is_ok())
            && self
                .check_rules(tenant, room, Some(user.id), role, now, start, end, 1)
                .is_ok()
    }

    /// Refuses a booking that has already ended, for commands of version 2 on (an admin may
    /// still record one, overriding with a reason). One under way may be booked: the rest of
    /// this period.
    fn check_not_past(ctx: &Ctx, end: Timestamp, what: &str) -> Result<(), Rejection> {
        if ctx.since(2) && end <= ctx.time {
            return Err(rule(
                "not_in_past",
                format!(
                    "{what} has already passed; choose a time still to come (an admin can record a past booking with a reason)"
                ),
            ));
        }
        Ok(())
    }

    /// The rules of `room` for a booking of `[start, end)` made at `now`; `adding` bookings
    /// would be added to `user`'s active ones.
    #[allow(clippy::too_many_arguments)]
    fn check_rules(
        &self,
        tenant: &Tenant,
        room: &Room,
        user: Option<UserId>,
        role: Role,
        now: Timestamp,
        start: Timestamp,
        end: Timestamp,
        adding: usize,
    ) -> Result<(), Rejection> {
        let rules = tenant.rules.overlaid(&room.rules);
        let minutes = end.duration_since(start).as_mins();
        if let Some(max) = rules.max_length_minutes {
            if minutes > max as i64 {
                return Err(rule(
                    "max_length_minutes",
                    format!("{} may be booked for at most {max} minutes", room.name),
                ));
            }
        }
        if let Some(days) = rules.max_days_ahead {
            if start.duration_since(now) > SignedDuration::from_hours(24 * days as i64) {
                return Err(rule(
                    "max_days_ahead",
                    format!("{} may be booked at most {days} days ahead", room.name),
                ));
            }
        }
        if let Some(mins) = rules.min_notice_minutes {
            if start.duration_since(now) < SignedDuration::from_mins(mins as i64) {
                return Err(rule(
                    "min_notice_minutes",
                    format!("{} must be booked at least {mins} minutes ahead", room.name),
                ));
            }
        }
        if let (Some(u), Some((_, limit))) = (
            user,
            rules.max_active_per_user.iter().find(|(r, _)| *r == role),
        ) {
            if self.active_count(u, now) + adding > *limit as usize {
                return Err(rule(
                    "max_active_per_user",
                    format!("you may hold at most {limit} active bookings"),
                ));
            }
        }
        Ok(())
    }

    fn room_of(&self, tenant: TenantId, room: RoomId) -> Result<Room, Rejection> {
        self.school
            .rooms()
            .get(&room)
            .filter(|r| r.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("room", room))
    }

    fn check_interval(start: Timestamp, end: Timestamp) -> Result<(), Rejection> {
        if end <= start {
            return Err(invalid("end", "must be after start"));
        }
        if end.duration_since(start) > MAX_BOOKING {
            return Err(invalid("end", "a booking may last at most 14 days"));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn new_booking(
        &self,
        ctx: &mut Ctx,
        tenant: TenantId,
        room: &Room,
        user: Option<UserId>,
        start: Timestamp,
        end: Timestamp,
        details: &BookingDetails,
        series: Option<SeriesId>,
    ) -> Booking {
        let pending = room.approval_required && ctx.actor.role != Role::Admin;
        Booking {
            id: ctx.new_id(),
            tenant,
            room: room.id,
            start,
            end,
            title: details.title.clone(),
            notes: details.notes.clone(),
            status: if pending {
                BookingStatus::Pending
            } else {
                BookingStatus::Active
            },
            created_by: ctx.actor.name.clone(),
            created_at: ctx.time,
            cancelled_at: None,
            user,
            period: details.period.clone(),
            series,
            override_reason: details.override_reason.clone(),
            decided_by: None,
        }
    }

    fn record_booking(
        &mut self,
        ctx: &mut Ctx,
        b: Booking,
        action: &str,
        before: Option<String>,
        writes: &mut WriteSet,
    ) {
        let after = to_json(&b);
        let (tenant, id) = (b.tenant, b.id);
        self.store(BookingRecord::Booking(b), writes);
        self.audit(
            ctx,
            tenant,
            ("booking", id),
            action,
            before,
            Some(after),
            writes,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_booking(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        room: RoomId,
        start: Timestamp,
        end: Timestamp,
        details: &BookingDetails,
        writes: &mut WriteSet,
    ) -> Res {
        let t = self.member(ctx, tenant)?.clone();
        let room = self.room_of(tenant, room)?;
        Self::check_interval(start, end)?;
        let user = self.check_booker(ctx, tenant, &room, details)?;
        let overriding = details.override_reason.is_some();
        if !overriding {
            Self::check_not_past(ctx, end, "that time")?;
            self.check_rules(&t, &room, user, ctx.actor.role, ctx.time, start, end, 1)?;
        }
        if let Some(c) = self.clash(&t, room.id, start, end, overriding) {
            return Err(Rejection::Conflict(c));
        }
        self.check_quota(ctx, tenant, Kind::Booking, 1)?;
        let b = self.new_booking(ctx, tenant, &room, user, start, end, details, None);
        self.record_booking(ctx, b.clone(), "created", None, writes);
        Ok(Outcome::BookingCreated(b))
    }

    /// A series' dates: at least one, at most `MAX_OCCURRENCES`, each a valid interval, in
    /// order and not overlapping.
    fn check_occurrences(occurrences: &[Occurrence]) -> Result<(), Rejection> {
        if occurrences.is_empty() {
            return Err(invalid(
                "occurrences",
                "the recurrence has no dates: check the weekdays, weeks and end date",
            ));
        }
        if occurrences.len() > MAX_OCCURRENCES {
            return Err(invalid(
                "occurrences",
                format!("a recurring booking has at most {MAX_OCCURRENCES} occurrences"),
            ));
        }
        for (i, o) in occurrences.iter().enumerate() {
            Self::check_interval(o.start, o.end)?;
            if i > 0 && occurrences[i - 1].end > o.start {
                return Err(invalid(
                    "occurrences",
                    "occurrences must be in order and must not overlap",
                ));
            }
        }
        Ok(())
    }

    /// The occurrences `room` is free for, and those that clash with what they clash with.
    fn free_and_clashing(
        &self,
        t: &Tenant,
        room: RoomId,
        occurrences: &[Occurrence],
        overriding: bool,
    ) -> (Vec<Occurrence>, Vec<(Occurrence, Clash)>) {
        let mut free = Vec::new();
        let mut clashes = Vec::new();
        for o in occurrences {
            match self.clash(t, room, o.start, o.end, overriding) {
                Some(c) => clashes.push((o.clone(), c)),
                None => free.push(o.clone()),
            }
        }
        (free, clashes)
    }

    pub(crate) fn create_series(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateSeries,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateSeries {
            tenant,
            room,
            rule: summary,
            occurrences,
            mode,
            details,
        } = op;
        let t = self.member(ctx, *tenant)?.clone();
        let room = self.room_of(*tenant, *room)?;
        let user = self.check_booker(ctx, *tenant, &room, details)?;
        text("rule", summary, 300, false)?;
        Self::check_occurrences(occurrences)?;
        let overriding = details.override_reason.is_some();
        if !overriding {
            let first = &occurrences[0];
            Self::check_not_past(
                ctx,
                first.end,
                &format!("the first occurrence ({})", first.date),
            )?;
        }
        let (free, clashes) = self.free_and_clashing(&t, room.id, occurrences, overriding);
        if free.is_empty() || (*mode == SeriesMode::AllOrNothing && !clashes.is_empty()) {
            return Err(Rejection::SeriesConflicts(clashes));
        }
        if !overriding {
            for (i, o) in free.iter().enumerate() {
                let adding = if i == 0 { free.len() } else { 0 };
                self.check_rules(
                    &t,
                    &room,
                    user,
                    ctx.actor.role,
                    ctx.time,
                    o.start,
                    o.end,
                    adding,
                )?;
            }
        }
        self.check_quota(ctx, *tenant, Kind::Booking, free.len() as u64)?;
        let series_id = ctx.new_id();
        let mut created = Vec::with_capacity(free.len());
        for o in &free {
            let b = self.new_booking(
                ctx,
                *tenant,
                &room,
                user,
                o.start,
                o.end,
                details,
                Some(series_id),
            );
            self.store(BookingRecord::Booking(b.clone()), writes);
            created.push(b);
        }
        let series = Series {
            id: series_id,
            tenant: *tenant,
            room: room.id,
            title: details.title.clone(),
            rule: summary.clone(),
            occurrences: created.iter().map(|b| b.id).collect(),
            skipped: clashes.into_iter().map(|(o, _)| o).collect(),
            created_by: ctx.actor.name.clone(),
            created_at: ctx.time,
        };
        self.store(BookingRecord::Series(series.clone()), writes);
        self.audit(
            ctx,
            *tenant,
            ("series", series_id),
            "created",
            None,
            Some(to_json(&series)),
            writes,
        );
        Ok(Outcome::SeriesCreated {
            series,
            bookings: created,
        })
    }

    pub(crate) fn cancel_booking(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: BookingId,
        scope: CancelScope,
        writes: &mut WriteSet,
    ) -> Res {
        self.member(ctx, tenant)?;
        let b = self
            .booking
            .bookings
            .get(&id)
            .filter(|b| b.tenant == tenant)
            .map(|b| Booking::clone(b))
            .ok_or_else(|| not_found("booking", id))?;
        let own = (b.user.is_some() && b.user == ctx.actor.user) || b.created_by == ctx.actor.name;
        if !own && ctx.actor.role != Role::Admin {
            return Err(forbidden(
                "only the booker or an admin may cancel a booking",
            ));
        }
        let targets: Vec<Booking> =
            match (scope, b.series.and_then(|s| self.booking.series.get(&s))) {
                (CancelScope::One, _) | (_, None) => {
                    if !b.status.holds_slot() {
                        return Err(Rejection::AlreadyCancelled { booking: id });
                    }
                    vec![b]
                }
                (scope, Some(series)) => series
                    .occurrences
                    .iter()
                    .map(|o| &*self.booking.bookings[o])
                    .filter(|o| o.status.holds_slot())
                    .filter(|o| match scope {
                        CancelScope::ThisAndFollowing => o.start >= b.start,
                        _ => o.end > ctx.time || o.id == id,
                    })
                    .cloned()
                    .collect(),
            };
        if targets.is_empty() {
            return Err(Rejection::AlreadyCancelled { booking: id });
        }
        let mut out = Vec::with_capacity(targets.len());
        for mut t in targets {
            let before = to_json(&t);
            t.status = BookingStatus::Cancelled;
            t.cancelled_at = Some(ctx.time);
            self.record_booking(ctx, t.clone(), "cancelled", Some(before), writes);
            out.push(t);
        }
        Ok(Outcome::BookingsCancelled(out))
    }

    pub(crate) fn decide_booking(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: BookingId,
        approve: bool,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        let mut b = self
            .booking
            .bookings
            .get(&id)
            .filter(|b| b.tenant == tenant)
            .map(|b| Booking::clone(b))
            .ok_or_else(|| not_found("booking", id))?;
        if b.status != BookingStatus::Pending {
            return Err(Rejection::NotPending { booking: id });
        }
        let before = to_json(&b);
        b.status = if approve {
            BookingStatus::Active
        } else {
            BookingStatus::Declined
        };
        b.decided_by = Some(ctx.actor.name.clone());
        let action = if approve { "approved" } else { "declined" };
        self.record_booking(ctx, b.clone(), action, Some(before), writes);
        Ok(Outcome::BookingDecided(b))
    }
}
