//! Rooms, booking rules, the term calendar, periods and the timetable.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use jiff::ToSpan;
use roomraft_cluster::Consistency;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    caller, consistency, created, opt, parse_clock, parse_date, parse_id, parse_json, AppError,
    AppState, Auth, Calendar, ClosureKind, Lesson, LessonSpec, Path, Period, PeriodKind, Query,
    ReadParams, Request, Role, Room, RoomSpec, Rules, St,
};
use crate::app::school::{import_timetable, lesson_times, weekday_value, ALWAYS_FROM, ALWAYS_TO};
use crate::domain::school::{
    AcademicYear, Closure, CreateClosure, CreateLesson, CreateTerm, CreateYear, DeleteCalendarItem,
    DeleteLesson, SetLessonRelease, SetPeriods, SetTenantRules, SetWeekCycle, UpdateRoom,
};
use crate::domain::{DepartmentId, LessonId, RoomId};

/// Rules as JSON; `max_active_per_user` maps a role to its limit.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesDto {
    pub max_days_ahead: Option<u32>,
    pub min_notice_minutes: Option<u32>,
    pub max_length_minutes: Option<u32>,
    #[serde(default)]
    pub max_active_per_user: std::collections::BTreeMap<String, u32>,
}

impl RulesDto {
    fn into_rules(self, field: &str) -> Result<Rules, AppError> {
        let mut per_role = Vec::new();
        for (role, n) in self.max_active_per_user {
            let r = Role::parse_tenant_role(&role)
                .filter(|r| r.can_book())
                .ok_or_else(|| {
                    AppError::invalid(
                        &format!("{field}.max_active_per_user"),
                        "use admin or staff",
                    )
                })?;
            per_role.push((r, n));
        }
        Ok(Rules {
            max_days_ahead: self.max_days_ahead,
            min_notice_minutes: self.min_notice_minutes,
            max_length_minutes: self.max_length_minutes,
            max_active_per_user: per_role,
        })
    }

    fn of(r: &Rules) -> Self {
        RulesDto {
            max_days_ahead: r.max_days_ahead,
            min_notice_minutes: r.min_notice_minutes,
            max_length_minutes: r.max_length_minutes,
            max_active_per_user: r
                .max_active_per_user
                .iter()
                .map(|(role, n)| (role.as_str().to_string(), *n))
                .collect(),
        }
    }
}

pub(super) async fn get_rules(State(s): St, auth: Auth) -> Result<Json<RulesDto>, AppError> {
    let t = s.tenant(auth.tenant()?).await?;
    Ok(Json(RulesDto::of(&t.rules)))
}

pub(super) async fn set_rules(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RulesDto>, AppError> {
    let tenant = auth.require_admin()?;
    let rules = parse_json::<RulesDto>(&body)?.into_rules("rules")?;
    let t = s
        .submit(caller(&headers, &auth)?, SetTenantRules { tenant, rules })
        .await?;
    Ok(Json(RulesDto::of(&t.rules)))
}

/// A room as the API shows it.
#[derive(Serialize)]
pub(super) struct RoomBody {
    id: RoomId,
    name: String,
    category: String,
    capacity: u32,
    location: String,
    description: String,
    bookable: bool,
    allowed_roles: Vec<Role>,
    allowed_department_ids: Vec<DepartmentId>,
    approval_required: bool,
    rules: RulesDto,
    created_at: Timestamp,
}

impl From<&Room> for RoomBody {
    fn from(r: &Room) -> RoomBody {
        RoomBody {
            id: r.id,
            name: r.name.clone(),
            category: r.category.clone(),
            capacity: r.capacity,
            location: r.location.clone(),
            description: r.description.clone(),
            bookable: r.bookable,
            allowed_roles: r.allowed_roles.clone(),
            allowed_department_ids: r.allowed_departments.clone(),
            approval_required: r.approval_required,
            rules: RulesDto::of(&r.rules),
            created_at: r.created_at,
        }
    }
}

/// A room's fields; absent ones keep their current (or default) value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomFields {
    name: Option<String>,
    category: Option<String>,
    capacity: Option<u32>,
    location: Option<String>,
    description: Option<String>,
    bookable: Option<bool>,
    allowed_roles: Option<Vec<String>>,
    allowed_department_ids: Option<Vec<u64>>,
    approval_required: Option<bool>,
    rules: Option<RulesDto>,
}

impl RoomFields {
    fn onto(self, mut spec: RoomSpec) -> Result<RoomSpec, AppError> {
        if let Some(v) = self.name {
            spec.name = v;
        }
        if let Some(v) = self.category {
            spec.category = v;
        }
        if let Some(v) = self.capacity {
            spec.capacity = v;
        }
        if let Some(v) = self.location {
            spec.location = v;
        }
        if let Some(v) = self.description {
            spec.description = v;
        }
        if let Some(v) = self.bookable {
            spec.bookable = v;
        }
        if let Some(v) = self.allowed_roles {
            spec.allowed_roles = v
                .iter()
                .map(|r| {
                    Role::parse_tenant_role(r)
                        .filter(|r| r.can_book())
                        .ok_or_else(|| AppError::invalid("allowed_roles", "use admin or staff"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = self.allowed_department_ids {
            spec.allowed_departments = v;
        }
        if let Some(v) = self.approval_required {
            spec.approval_required = v;
        }
        if let Some(v) = self.rules {
            spec.rules = v.into_rules("rules")?;
        }
        Ok(spec)
    }
}

pub(super) async fn create_room(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: RoomFields = parse_json(&body)?;
    for (field, missing) in [
        ("name", req.name.is_none()),
        ("category", req.category.is_none()),
        ("capacity", req.capacity.is_none()),
    ] {
        if missing {
            return Err(AppError::invalid(field, format!("missing field `{field}`")));
        }
    }
    let base = RoomSpec {
        name: String::new(),
        category: String::new(),
        capacity: 0,
        location: String::new(),
        description: String::new(),
        bookable: true,
        allowed_roles: Vec::new(),
        allowed_departments: Vec::new(),
        approval_required: false,
        rules: Rules::default(),
    };
    let spec = req.onto(base)?;
    let r = crate::app::school::create_room(&s, caller(&headers, &auth)?, tenant, spec).await?;
    Ok(created(RoomBody::from(&r)))
}

pub(super) async fn update_room(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RoomBody>, AppError> {
    let tenant = auth.require_admin()?;
    let room = parse_id("room", &id)?;
    let req: RoomFields = parse_json(&body)?;
    let current = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.room(room).map(Room::spec)
        })
        .await?
        .ok_or_else(|| AppError::not_found("room", room))?;
    let spec = req.onto(current)?;
    let r = s
        .submit(caller(&headers, &auth)?, UpdateRoom { tenant, room, spec })
        .await?;
    Ok(Json(RoomBody::from(&r)))
}

pub(super) async fn list_rooms(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<RoomBody>>, AppError> {
    let tenant = auth.tenant()?;
    let rooms = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .rooms_by_name()
                .into_iter()
                .map(RoomBody::from)
                .collect()
        })
        .await?;
    Ok(Json(rooms))
}

pub(super) async fn get_room(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<RoomBody>, AppError> {
    let tenant = auth.tenant()?;
    let id = parse_id("room", &id)?;
    let room = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school.room(id).map(RoomBody::from)
        })
        .await?;
    room.map(Json)
        .ok_or_else(|| AppError::not_found("room", id))
}

/// The school's calendar as the API shows it: terms name their first cycle week.
#[derive(Serialize)]
pub(super) struct CalendarBody<'a> {
    week_labels: &'a [String],
    years: &'a [AcademicYear],
    terms: Vec<TermBody<'a>>,
    closures: &'a [Closure],
    periods: &'a [Period],
}

#[derive(Serialize)]
struct TermBody<'a> {
    id: crate::domain::CalendarId,
    year_id: crate::domain::CalendarId,
    name: &'a str,
    start: Date,
    end: Date,
    first_week: Option<&'a str>,
}

impl<'a> From<&'a Calendar> for CalendarBody<'a> {
    fn from(c: &'a Calendar) -> Self {
        let terms = (c.terms.iter())
            .map(|t| TermBody {
                id: t.id,
                year_id: t.year,
                name: &t.name,
                start: t.start,
                end: t.end,
                first_week: c.week_labels.get(t.first_week as usize).map(String::as_str),
            })
            .collect();
        CalendarBody {
            week_labels: &c.week_labels,
            years: &c.years,
            terms,
            closures: &c.closures,
            periods: &c.periods,
        }
    }
}

pub(super) async fn get_calendar(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let cal = s
        .read_tenant(tenant, q.consistency()?, |school| school.calendar())
        .await?;
    Ok(Json(CalendarBody::from(&cal)).into_response())
}

/// Submits a change to the calendar and answers with the calendar it made.
async fn change_calendar(
    s: &AppState,
    headers: &HeaderMap,
    auth: Auth,
    command: impl Request<Reply = Calendar>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let c = s.submit(caller(headers, &auth)?, command).await?;
    Ok((status, Json(CalendarBody::from(&c))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WeekCycle {
    labels: Vec<String>,
}

pub(super) async fn set_week_cycle(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: WeekCycle = parse_json(&body)?;
    let command = SetWeekCycle {
        tenant,
        labels: req.labels,
    };
    change_calendar(&s, &headers, auth, command, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewYear {
    name: String,
    start: String,
    end: String,
}

pub(super) async fn create_year(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewYear = parse_json(&body)?;
    let command = CreateYear {
        tenant,
        name: req.name,
        start: parse_date("start", &req.start)?,
        end: parse_date("end", &req.end)?,
    };
    change_calendar(&s, &headers, auth, command, StatusCode::CREATED).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTerm {
    year_id: u64,
    name: String,
    start: String,
    end: String,
    first_week: Option<String>,
}

pub(super) async fn create_term(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewTerm = parse_json(&body)?;
    let command = CreateTerm {
        tenant,
        year: req.year_id,
        name: req.name,
        start: parse_date("start", &req.start)?,
        end: parse_date("end", &req.end)?,
        first_week: req.first_week.unwrap_or_else(|| "A".into()),
    };
    change_calendar(&s, &headers, auth, command, StatusCode::CREATED).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewClosure {
    name: String,
    kind: Option<String>,
    start: String,
    end: Option<String>,
}

pub(super) async fn create_closure(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewClosure = parse_json(&body)?;
    let kind = match req.kind.as_deref() {
        None | Some("holiday") => ClosureKind::Holiday,
        Some("closure") => ClosureKind::Closure,
        Some(_) => return Err(AppError::invalid("kind", "use holiday or closure")),
    };
    let start = parse_date("start", &req.start)?;
    let command = CreateClosure {
        tenant,
        name: req.name,
        kind,
        start,
        end: opt("end", &req.end, parse_date)?.unwrap_or(start),
    };
    change_calendar(&s, &headers, auth, command, StatusCode::CREATED).await
}

pub(super) async fn delete_calendar_item(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let id = parse_id("calendar item", &id)?;
    let command = DeleteCalendarItem { tenant, id };
    change_calendar(&s, &headers, auth, command, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeriodDto {
    weekday: Value,
    name: String,
    start: String,
    end: String,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Periods {
    periods: Vec<PeriodDto>,
}

pub(super) async fn set_periods(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: Periods = parse_json(&body)?;
    let mut periods = Vec::with_capacity(req.periods.len());
    for (i, p) in req.periods.into_iter().enumerate() {
        let field = |f: &str| format!("periods[{i}].{f}");
        let kind = match p.kind.as_deref() {
            None | Some("lesson") => PeriodKind::Lesson,
            Some("registration") => PeriodKind::Registration,
            Some("break") => PeriodKind::Break,
            Some("lunch") => PeriodKind::Lunch,
            Some("other") => PeriodKind::Other,
            Some(_) => {
                return Err(AppError::invalid(
                    &field("kind"),
                    "use lesson, registration, break, lunch or other",
                ))
            }
        };
        periods.push(Period {
            weekday: weekday_value(&field("weekday"), &p.weekday)?,
            name: p.name,
            start: parse_clock(&field("start"), &p.start)?,
            end: parse_clock(&field("end"), &p.end)?,
            kind,
        });
    }
    let command = SetPeriods { tenant, periods };
    change_calendar(&s, &headers, auth, command, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct WeeksQuery {
    from: String,
    to: Option<String>,
}

/// `GET /api/v1/calendar/weeks`: each week's Monday, its cycle label and term.
pub(super) async fn weeks(
    State(s): St,
    auth: Auth,
    Query(q): Query<WeeksQuery>,
) -> Result<Json<Vec<WeekBody>>, AppError> {
    let tenant = auth.tenant()?;
    let from = parse_date("from", &q.from)?;
    let to = match &q.to {
        Some(t) => parse_date("to", t)?,
        None => from.checked_add(364.days()).unwrap_or(from),
    };
    if to < from || (to - from).get_days() > 800 {
        return Err(AppError::invalid(
            "to",
            "must be after from, and at most 800 days later",
        ));
    }
    let cal = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.calendar()
        })
        .await?;
    let mut monday = from
        .checked_sub((from.weekday().to_monday_zero_offset() as i64).days())
        .unwrap_or(from);
    let mut out = Vec::new();
    while monday <= to {
        let teaching = (0..5).find_map(|i| {
            let d: Date = monday.checked_add((i as i64).days()).ok()?;
            cal.is_teaching_day(d).then_some(d)
        });
        let term = teaching
            .and_then(|d| cal.term_of(d))
            .map(|t| t.name.clone());
        let label = teaching.and_then(|d| cal.week_label(d)).map(str::to_string);
        out.push(WeekBody {
            monday,
            week: label,
            term,
        });
        monday = match monday.checked_add(7.days()) {
            Ok(m) => m,
            Err(_) => break,
        };
    }
    Ok(Json(out))
}

/// A week of the calendar: its Monday, cycle label and term (none out of term).
#[derive(Serialize)]
pub(super) struct WeekBody {
    monday: Date,
    week: Option<String>,
    term: Option<String>,
}

/// What a timetable import did.
#[derive(Serialize)]
pub(super) struct ImportedBody {
    imported: usize,
    unchanged: usize,
}

/// A timetabled lesson as the API shows it, with the dates it is released on.
#[derive(Serialize)]
pub(super) struct LessonBody {
    id: LessonId,
    room_id: RoomId,
    weekday: u8,
    period: Option<String>,
    start: Time,
    end: Time,
    subject: String,
    class_name: String,
    teacher: String,
    week: Option<String>,
    from: Date,
    to: Date,
    released: BTreeSet<Date>,
}

impl From<&Lesson> for LessonBody {
    fn from(l: &Lesson) -> LessonBody {
        let s = &l.spec;
        LessonBody {
            id: l.id,
            room_id: l.room,
            weekday: s.weekday,
            period: s.period.clone(),
            start: s.start,
            end: s.end,
            subject: s.subject.clone(),
            class_name: s.class_name.clone(),
            teacher: s.teacher.clone(),
            week: s.week.clone(),
            from: s.from,
            to: s.to,
            released: l.released.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewLesson {
    room_id: u64,
    weekday: Value,
    period: Option<String>,
    start: Option<String>,
    end: Option<String>,
    subject: String,
    #[serde(default)]
    class_name: String,
    #[serde(default)]
    teacher: String,
    week: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn create_lesson(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewLesson = parse_json(&body)?;
    let weekday = weekday_value("weekday", &req.weekday)?;
    let cal = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.calendar()
        })
        .await?;
    let (start, end) = lesson_times(
        &cal,
        weekday,
        req.period.as_deref(),
        req.start.as_deref(),
        req.end.as_deref(),
    )?;
    let lesson = LessonSpec {
        weekday,
        period: req.period,
        start,
        end,
        subject: req.subject,
        class_name: req.class_name,
        teacher: req.teacher,
        week: req.week.filter(|w| !w.trim().is_empty()),
        from: opt("from", &req.from, parse_date)?.unwrap_or(ALWAYS_FROM),
        to: opt("to", &req.to, parse_date)?.unwrap_or(ALWAYS_TO),
    };
    let command = CreateLesson {
        tenant,
        room: req.room_id,
        lesson,
    };
    let l = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(created(LessonBody::from(&l)))
}

#[derive(Deserialize)]
pub(super) struct LessonQuery {
    room_id: Option<u64>,
    consistency: Option<String>,
}

pub(super) async fn list_lessons(
    State(s): St,
    auth: Auth,
    Query(q): Query<LessonQuery>,
) -> Result<Json<Vec<LessonBody>>, AppError> {
    let tenant = auth.tenant()?;
    let list = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            school
                .lessons()
                .filter(|l| q.room_id.is_none_or(|r| l.room == r))
                .map(LessonBody::from)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(list))
}

pub(super) async fn delete_lesson(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let lesson = parse_id("lesson", &id)?;
    s.submit(caller(&headers, &auth)?, DeleteLesson { tenant, lesson })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub(super) struct ImportQuery {
    replace: Option<bool>,
}

/// `POST /api/v1/lessons/import`: a timetable CSV, all or nothing, with a per-row error report.
pub(super) async fn import_lessons(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Json<ImportedBody>, AppError> {
    auth.require_admin()?;
    let done = import_timetable(
        &s,
        caller(&headers, &auth)?,
        &body,
        q.replace.unwrap_or(false),
    )
    .await?;
    Ok(Json(ImportedBody {
        imported: done.imported,
        unchanged: done.unchanged,
    }))
}

async fn set_release(
    s: &AppState,
    auth: Auth,
    headers: &HeaderMap,
    id: &str,
    date: &str,
    released: bool,
) -> Result<Json<LessonBody>, AppError> {
    let tenant = auth.tenant()?;
    let lesson = parse_id("lesson", id)?;
    let date = parse_date("date", date)?;
    let command = SetLessonRelease {
        tenant,
        lesson,
        date,
        released,
    };
    let l = s.submit(caller(headers, &auth)?, command).await?;
    Ok(Json(LessonBody::from(&l)))
}

/// `PUT /api/v1/lessons/{id}/releases/{date}`: the class is elsewhere; the room is free.
pub(super) async fn release_lesson(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path((id, date)): Path<(String, String)>,
) -> Result<Json<LessonBody>, AppError> {
    set_release(&s, auth, &headers, &id, &date, true).await
}

pub(super) async fn unrelease_lesson(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path((id, date)): Path<(String, String)>,
) -> Result<Json<LessonBody>, AppError> {
    set_release(&s, auth, &headers, &id, &date, false).await
}
