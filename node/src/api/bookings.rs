//! Bookings (one-off and recurring), approvals, the room and day views, the free-room finder,
//! audit history and CSV exports.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::civil::{Date, Time};
use jiff::{Timestamp, ToSpan};
use roomraft_cluster::Consistency;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    caller, consistency, created, opt, parse_date, parse_id, parse_json, parse_time, AppError,
    AuditEntry, Auth, Booking, BookingDetails, BookingStatus, Calendar, Occupation, Path, Query,
    ReadParams, RoomFilter, RoomId, Series, St, Tenant,
};
use crate::app::bookings::{
    book, book_series, cancel, cancel_scope, decide, plan, resolve, series_mode, NewSeries, When,
};
use crate::app::AppState;
use crate::domain::calendar::{instant, local_date, weekday_number, zone};
use crate::domain::{
    BookingId, Clash, ClosureKind, LessonId, Occurrence, PeriodKind, SeriesId, UserId,
};
use crate::http::{ClashBody, OccurrenceBody};

/// A booking as the API shows it.
#[derive(Serialize)]
pub(super) struct BookingBody {
    id: BookingId,
    room_id: RoomId,
    start: Timestamp,
    end: Timestamp,
    title: String,
    notes: String,
    status: &'static str,
    created_by: String,
    created_at: Timestamp,
    cancelled_at: Option<Timestamp>,
    user_id: Option<UserId>,
    period: Option<String>,
    series_id: Option<SeriesId>,
    override_reason: Option<String>,
    decided_by: Option<String>,
}

impl From<&Booking> for BookingBody {
    fn from(b: &Booking) -> BookingBody {
        BookingBody {
            id: b.id,
            room_id: b.room,
            start: b.start,
            end: b.end,
            title: b.title.clone(),
            notes: b.notes.clone(),
            status: b.status.as_str(),
            created_by: b.created_by.clone(),
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
            user_id: b.user,
            period: b.period.clone(),
            series_id: b.series,
            override_reason: b.override_reason.clone(),
            decided_by: b.decided_by.clone(),
        }
    }
}

/// What occupies a room for a while, in a room's or a day's view.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum OccupationBody {
    Booking {
        id: BookingId,
        start: Timestamp,
        end: Timestamp,
        title: String,
        status: &'static str,
        booked_by: String,
        user_id: Option<UserId>,
        period: Option<String>,
    },
    Lesson {
        id: LessonId,
        start: Timestamp,
        end: Timestamp,
        title: String,
        subject: String,
        class_name: String,
        teacher: String,
        period: Option<String>,
    },
}

impl From<&Occupation<'_>> for OccupationBody {
    fn from(o: &Occupation) -> OccupationBody {
        match o {
            Occupation::Booking(b) => OccupationBody::Booking {
                id: b.id,
                start: b.start,
                end: b.end,
                title: b.title.clone(),
                status: b.status.as_str(),
                booked_by: b.created_by.clone(),
                user_id: b.user,
                period: b.period.clone(),
            },
            Occupation::Lesson { lesson, start, end } => OccupationBody::Lesson {
                id: lesson.id,
                start: *start,
                end: *end,
                title: lesson.spec.subject.clone(),
                subject: lesson.spec.subject.clone(),
                class_name: lesson.spec.class_name.clone(),
                teacher: lesson.spec.teacher.clone(),
                period: lesson.spec.period.clone(),
            },
        }
    }
}

/// A recurring booking with its occurrences.
#[derive(Serialize)]
pub(super) struct SeriesBody {
    id: SeriesId,
    room_id: RoomId,
    title: String,
    rule: String,
    occurrence_ids: Vec<BookingId>,
    skipped: Vec<Occurrence>,
    created_by: String,
    created_at: Timestamp,
    bookings: Vec<BookingBody>,
}

impl SeriesBody {
    fn new<'a>(s: &Series, bookings: impl IntoIterator<Item = &'a Booking>) -> SeriesBody {
        SeriesBody {
            id: s.id,
            room_id: s.room,
            title: s.title.clone(),
            rule: s.rule.clone(),
            occurrence_ids: s.occurrences.clone(),
            skipped: s.skipped.clone(),
            created_by: s.created_by.clone(),
            created_at: s.created_at,
            bookings: bookings.into_iter().map(BookingBody::from).collect(),
        }
    }
}

/// A cancellation: the booking asked for, and every booking it cancelled.
#[derive(Serialize)]
pub(super) struct CancelledBody {
    #[serde(flatten)]
    booking: Option<BookingBody>,
    cancelled: Vec<BookingId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBooking {
    room_id: u64,
    start: Option<String>,
    end: Option<String>,
    date: Option<String>,
    period: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    title: String,
    #[serde(default)]
    notes: String,
    on_behalf_of: Option<u64>,
    override_reason: Option<String>,
}

pub(super) async fn create_booking(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let req: NewBooking = parse_json(&body)?;
    let when = When {
        start: req.start,
        end: req.end,
        date: req.date,
        period: req.period,
        start_time: req.start_time,
        end_time: req.end_time,
    };
    let details = BookingDetails {
        title: req.title,
        notes: req.notes,
        period: None,
        on_behalf_of: req.on_behalf_of,
        override_reason: req.override_reason,
    };
    let b = book(
        &s,
        caller(&headers, &auth)?,
        tenant,
        req.room_id,
        &when,
        details,
    )
    .await?;
    Ok(created(BookingBody::from(&b)))
}

pub(super) async fn get_booking(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<BookingBody>, AppError> {
    let tenant = auth.tenant()?;
    let id = parse_id("booking", &id)?;
    let b = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school.booking(id).map(BookingBody::from)
        })
        .await?;
    b.map(Json)
        .ok_or_else(|| AppError::not_found("booking", id))
}

#[derive(Deserialize)]
pub(super) struct CancelQuery {
    scope: Option<String>,
}

/// `DELETE /api/v1/bookings/{id}?scope=one|following|series`.
pub(super) async fn cancel_booking(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<CancelQuery>,
) -> Result<Json<CancelledBody>, AppError> {
    let tenant = auth.tenant()?;
    let booking = parse_id("booking", &id)?;
    let scope = cancel_scope(q.scope.as_deref())?;
    let list = cancel(&s, caller(&headers, &auth)?, tenant, booking, scope).await?;
    Ok(Json(CancelledBody {
        booking: list
            .iter()
            .find(|b| b.id == booking)
            .or(list.first())
            .map(BookingBody::from),
        cancelled: list.iter().map(|b| b.id).collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    approve: bool,
}

pub(super) async fn decide_booking(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<BookingBody>, AppError> {
    let tenant = auth.require_admin()?;
    let booking = parse_id("booking", &id)?;
    let req: Decision = parse_json(&body)?;
    let b = decide(&s, caller(&headers, &auth)?, tenant, booking, req.approve).await?;
    Ok(Json(BookingBody::from(&b)))
}

pub(super) async fn my_bookings(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<BookingBody>>, AppError> {
    let user = auth.actor.user.ok_or_else(|| AppError::BadRequest {
        message: "sign in as a user: a token has no bookings of its own".into(),
    })?;
    let now = Timestamp::now();
    let list = s
        .read_tenant(auth.tenant()?, q.consistency()?, |school| {
            school
                .bookings_of_user(user, now)
                .into_iter()
                .map(BookingBody::from)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(list))
}

pub(super) async fn approvals(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<BookingBody>>, AppError> {
    let tenant = auth.require_admin()?;
    let list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .bookings()
                .filter(|b| b.status == BookingStatus::Pending)
                .map(BookingBody::from)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(list))
}

/// `POST /api/v1/series/preview`: every occurrence with what it would clash with; books nothing.
pub(super) async fn preview_series(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    // A POST that only reads: its credential is checked as a read's is (linearizably), since no
    // command will carry it to apply.
    crate::http::authenticate(&s, &Method::GET, &headers).await?;
    let tenant = auth.tenant()?;
    let req: NewSeries = parse_json(&body)?;
    series_mode(req.mode.as_deref())?;
    let room = req.room_id;
    let overriding = req.override_reason.is_some();
    let result = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            let t = school.tenant()?;
            school.room(room)?;
            let cal = school.calendar();
            Some(plan(t, &cal, &req).map(|(occ, rule)| {
                let clashes: Vec<Option<Clash>> = (occ.iter())
                    .map(|o| school.clash(room, o.start, o.end, overriding))
                    .collect();
                let occurrences: Vec<OccurrenceBody> = (occ.iter().zip(&clashes))
                    .map(|(o, c)| OccurrenceBody {
                        date: o.date,
                        start: o.start,
                        end: o.end,
                        conflicts_with: c.as_ref().map(ClashBody::from),
                    })
                    .collect();
                let body = PreviewBody {
                    rule,
                    count: occurrences.len(),
                    conflicts: clashes.iter().filter(|c| c.is_some()).count(),
                    occurrences,
                };
                Json(body).into_response()
            }))
        })
        .await?
        .ok_or_else(|| AppError::not_found("room", room))??;
    Ok(result)
}

pub(super) async fn create_series(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let req: NewSeries = parse_json(&body)?;
    let (series, bookings) = book_series(&s, caller(&headers, &auth)?, tenant, req).await?;
    Ok(created(SeriesBody::new(&series, &bookings)))
}

pub(super) async fn get_series(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<SeriesBody>, AppError> {
    let tenant = auth.tenant()?;
    let id = parse_id("series", &id)?;
    let v = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school.series(id).map(|x| {
                let bookings = x.occurrences.iter().filter_map(|b| school.booking(*b));
                SeriesBody::new(x, bookings)
            })
        })
        .await?;
    v.map(Json).ok_or_else(|| AppError::not_found("series", id))
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    consistency: Option<String>,
}

pub(super) async fn room_bookings(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<RoomBookingsBody>, AppError> {
    let tenant = auth.tenant()?;
    let room = parse_id("room", &id)?;
    let from = opt("from", &q.from, parse_time)?.unwrap_or(Timestamp::MIN);
    let to = opt("to", &q.to, parse_time)?.unwrap_or(Timestamp::MAX);
    if to <= from {
        return Err(AppError::invalid("to", "must be after from"));
    }
    let found = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            school.room(room)?;
            Some(
                school
                    .bookings_in(room, from, to)
                    .into_iter()
                    .map(BookingBody::from)
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    let bookings = found.ok_or_else(|| AppError::not_found("room", room))?;
    Ok(Json(RoomBookingsBody {
        room_id: room,
        bookings,
    }))
}

/// A series planned but not booked: its rule, its occurrences and what each clashes with.
#[derive(Serialize)]
struct PreviewBody<'a> {
    rule: String,
    count: usize,
    conflicts: usize,
    occurrences: Vec<OccurrenceBody<'a>>,
}

/// A room's bookings over a window.
#[derive(Serialize)]
pub(super) struct RoomBookingsBody {
    room_id: RoomId,
    bookings: Vec<BookingBody>,
}

/// One room's day: its periods (free or not), closure, lessons and bookings.
#[derive(Serialize)]
struct DayBody<'a> {
    date: Date,
    weekday: u8,
    week: Option<&'a str>,
    term: Option<&'a str>,
    closure: Option<ClosureBody<'a>>,
    periods: Vec<PeriodSlotBody<'a>>,
    occupations: Vec<OccupationBody>,
}

#[derive(Serialize)]
struct ClosureBody<'a> {
    id: crate::domain::CalendarId,
    name: &'a str,
    kind: ClosureKind,
}

/// A period of a day as instants, and whether the room is free for all of it.
#[derive(Serialize)]
struct PeriodSlotBody<'a> {
    name: &'a str,
    kind: PeriodKind,
    start: Timestamp,
    end: Timestamp,
    free: bool,
}

/// A room and its days (one, or Monday to Sunday).
#[derive(Serialize)]
struct RoomDaysBody<'a> {
    room: super::school::RoomBody,
    days: Vec<DayBody<'a>>,
}

/// Every room's day in the day grid: the room's summary beside its day.
#[derive(Serialize)]
struct GridRoomBody<'a> {
    room: RoomSummaryBody<'a>,
    #[serde(flatten)]
    day: DayBody<'a>,
}

#[derive(Serialize)]
struct RoomSummaryBody<'a> {
    id: RoomId,
    name: &'a str,
    category: &'a str,
    capacity: u32,
    bookable: bool,
}

#[derive(Serialize)]
struct DayGridBody<'a> {
    date: Date,
    week: Option<&'a str>,
    closure: Option<&'a str>,
    rooms: Vec<GridRoomBody<'a>>,
}

/// The rooms free for a time, and the time as resolved.
#[derive(Serialize)]
pub(super) struct FreeRoomsBody {
    start: Timestamp,
    end: Timestamp,
    period: Option<String>,
    rooms: Vec<super::school::RoomBody>,
}

/// An audit entry as the API shows it: the objects before and after as JSON, not text.
#[derive(Serialize)]
struct AuditBody<'a> {
    id: u64,
    at: Timestamp,
    actor: &'a str,
    user_id: Option<UserId>,
    object: &'a str,
    object_id: u64,
    action: &'a str,
    before: Option<Value>,
    after: Option<Value>,
}

/// One room's day: its periods (free or not), lessons and bookings.
fn day_body<'a>(
    school: &crate::domain::TenantView<'a>,
    t: &Tenant,
    cal: &'a Calendar,
    room: RoomId,
    date: Date,
) -> DayBody<'a> {
    let tz = zone(&t.time_zone);
    let from = instant(&tz, date, Time::midnight());
    let to = instant(&tz, date.tomorrow().unwrap_or(date), Time::midnight());
    let occ = school.occupancy(room, from, to);
    let closure = cal.closure_on(date);
    let periods = (school.periods_on(cal, date).into_iter())
        .map(|p| {
            let busy = occ.iter().any(|o| match o {
                Occupation::Booking(b) => b.start < p.end && p.start < b.end,
                Occupation::Lesson { start, end, .. } => *start < p.end && p.start < *end,
            });
            PeriodSlotBody {
                name: &p.period.name,
                kind: p.period.kind,
                start: p.start,
                end: p.end,
                free: !busy && closure.is_none(),
            }
        })
        .collect();
    DayBody {
        date,
        weekday: weekday_number(date),
        week: cal.week_label(date),
        term: cal.term_of(date).map(|x| x.name.as_str()),
        closure: closure.map(|c| ClosureBody {
            id: c.id,
            name: &c.name,
            kind: c.kind,
        }),
        periods,
        occupations: occ.iter().map(OccupationBody::from).collect(),
    }
}

#[derive(Deserialize)]
pub(super) struct DayQuery {
    date: Option<String>,
    category: Option<String>,
    min_capacity: Option<u32>,
    consistency: Option<String>,
}

fn date_or_today(t: &Tenant, d: &Option<String>) -> Result<Date, AppError> {
    match d {
        Some(d) => parse_date("date", d),
        None => Ok(local_date(&zone(&t.time_zone), Timestamp::now())),
    }
}

async fn room_view(
    s: &AppState,
    auth: &Auth,
    id: &str,
    q: &DayQuery,
    days: i64,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let room = parse_id("room", id)?;
    let v = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            let t = school.tenant()?;
            let r = school.room(room)?;
            let cal = school.calendar();
            Some(date_or_today(t, &q.date).map(|date| {
                let first = if days == 1 {
                    date
                } else {
                    date.checked_sub((weekday_number(date) as i64 - 1).days())
                        .unwrap_or(date)
                };
                let days = (0..days)
                    .filter_map(|i| first.checked_add(i.days()).ok())
                    .map(|d| day_body(&school, t, &cal, room, d))
                    .collect();
                let body = RoomDaysBody {
                    room: super::school::RoomBody::from(r),
                    days,
                };
                Json(body).into_response()
            }))
        })
        .await?
        .ok_or_else(|| AppError::not_found("room", room))??;
    Ok(v)
}

/// `GET /api/v1/rooms/{id}/day?date=`.
pub(super) async fn room_day(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> Result<Response, AppError> {
    room_view(&s, &auth, &id, &q, 1).await
}

/// `GET /api/v1/rooms/{id}/week?date=`: Monday to Sunday of the week containing `date`.
pub(super) async fn room_week(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> Result<Response, AppError> {
    room_view(&s, &auth, &id, &q, 7).await
}

/// `GET /api/v1/day?date=`: every room's free/busy for a day.
pub(super) async fn day_grid(
    State(s): St,
    auth: Auth,
    Query(q): Query<DayQuery>,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let filter = RoomFilter {
        category: q.category.clone(),
        min_capacity: q.min_capacity,
    };
    let v = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            let t = school.tenant()?;
            let cal = school.calendar();
            Some(date_or_today(t, &q.date).map(|date| {
                let rooms = (school.rooms_by_name().into_iter())
                    .filter(|r| filter.matches(r))
                    .map(|r| GridRoomBody {
                        room: RoomSummaryBody {
                            id: r.id,
                            name: &r.name,
                            category: &r.category,
                            capacity: r.capacity,
                            bookable: r.bookable,
                        },
                        day: day_body(&school, t, &cal, r.id, date),
                    })
                    .collect();
                let body = DayGridBody {
                    date,
                    week: cal.week_label(date),
                    closure: cal.closure_on(date).map(|c| c.name.as_str()),
                    rooms,
                };
                Json(body).into_response()
            }))
        })
        .await?
        .ok_or_else(|| AppError::not_found("tenant", tenant))??;
    Ok(v)
}

#[derive(Deserialize)]
pub(super) struct FreeQuery {
    start: Option<String>,
    end: Option<String>,
    date: Option<String>,
    period: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    category: Option<String>,
    min_capacity: Option<u32>,
    consistency: Option<String>,
}

/// `GET /api/v1/free-rooms`: bookable rooms with nothing on at that time.
pub(super) async fn free_rooms(
    State(s): St,
    auth: Auth,
    Query(q): Query<FreeQuery>,
) -> Result<Json<FreeRoomsBody>, AppError> {
    let tenant = auth.tenant()?;
    let filter = RoomFilter {
        category: q.category.clone(),
        min_capacity: q.min_capacity,
    };
    let when = When {
        start: q.start.clone(),
        end: q.end.clone(),
        date: q.date.clone(),
        period: q.period.clone(),
        start_time: q.start_time.clone(),
        end_time: q.end_time.clone(),
    };
    let v = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            let t = school.tenant()?;
            let cal = school.calendar();
            Some(resolve(t, &cal, &when).and_then(|(from, to, period)| {
                if to <= from {
                    return Err(AppError::invalid("end", "must be after start"));
                }
                let rooms: Vec<super::school::RoomBody> = school
                    .free_rooms(from, to, &filter)
                    .into_iter()
                    .map(super::school::RoomBody::from)
                    .collect();
                Ok(FreeRoomsBody {
                    start: from,
                    end: to,
                    period,
                    rooms,
                })
            }))
        })
        .await?
        .ok_or_else(|| AppError::not_found("tenant", tenant))??;
    Ok(Json(v))
}

/// A CSV document: the header row, then `rows`.
fn csv_body<R, C>(header: &[&str], rows: impl IntoIterator<Item = R>) -> Result<Vec<u8>, AppError>
where
    R: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let failed = |e: String| {
        AppError::Cluster(roomraft_cluster::ClusterError::Codec {
            what: "csv",
            reason: e,
        })
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| failed(e.to_string()))?;
    for r in rows {
        w.write_record(r).map_err(|e| failed(e.to_string()))?;
    }
    w.into_inner().map_err(|e| failed(e.to_string()))
}

fn csv_response(name: &str, body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// CSV cells are exported with a leading quote when a spreadsheet would run them as formulas.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    object: Option<String>,
    object_id: Option<u64>,
    user_id: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `GET /api/v1/audit`: newest first; per object, per user; `format=csv` to export.
pub(super) async fn audit(
    State(s): St,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let limit = q.limit.unwrap_or(500).min(100_000);
    let object = match (&q.object, q.object_id) {
        (Some(o), Some(id)) => Some((o.clone(), id)),
        (None, None) => None,
        _ => {
            return Err(AppError::invalid(
                "object_id",
                "give object and object_id together",
            ))
        }
    };
    let entries: Vec<AuditEntry> = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.audit_of(
                object.as_ref().map(|(o, id)| (o.as_str(), *id)),
                q.user_id,
                limit,
            )
        })
        .await?;
    if q.format.as_deref() == Some("csv") {
        let header = [
            "id",
            "at",
            "actor",
            "user_id",
            "object",
            "object_id",
            "action",
            "before",
            "after",
        ];
        let rows = entries.iter().map(|e| {
            [
                e.id.to_string(),
                e.at.to_string(),
                cell(&e.actor),
                e.user.map(|u| u.to_string()).unwrap_or_default(),
                e.object.clone(),
                e.object_id.to_string(),
                e.action.clone(),
                cell(e.before.as_deref().unwrap_or_default()),
                cell(e.after.as_deref().unwrap_or_default()),
            ]
        });
        return Ok(csv_response("audit.csv", csv_body(&header, rows)?));
    }
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|x| serde_json::from_str::<Value>(x).ok())
    };
    let list: Vec<AuditBody> = (entries.iter())
        .map(|e| AuditBody {
            id: e.id,
            at: e.at,
            actor: &e.actor,
            user_id: e.user,
            object: &e.object,
            object_id: e.object_id,
            action: &e.action,
            before: parse(&e.before),
            after: parse(&e.after),
        })
        .collect();
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    from: String,
    to: String,
}

/// `GET /api/v1/bookings/export?from=&to=`: the tenant's bookings on those local dates, as CSV.
pub(super) async fn export_bookings(
    State(s): St,
    auth: Auth,
    Query(q): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let (from, to) = (parse_date("from", &q.from)?, parse_date("to", &q.to)?);
    if to < from {
        return Err(AppError::invalid("to", "must not be before from"));
    }
    let rows: Vec<[String; 10]> = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            let Some(t) = school.tenant() else {
                return Vec::new();
            };
            let tz = zone(&t.time_zone);
            let start = instant(&tz, from, Time::midnight());
            let end = instant(&tz, to.tomorrow().unwrap_or(to), Time::midnight());
            let local = |ts: Timestamp| ts.to_zoned(tz.clone()).datetime().to_string();
            school
                .bookings()
                .filter(|b| b.start < end && start < b.end)
                .map(|b| {
                    let room = school
                        .room(b.room)
                        .map(|r| r.name.clone())
                        .unwrap_or_default();
                    [
                        b.id.to_string(),
                        cell(&room),
                        local(b.start),
                        local(b.end),
                        cell(&b.title),
                        b.status.as_str().to_string(),
                        cell(&b.created_by),
                        b.period.clone().unwrap_or_default(),
                        b.series.map(|x| x.to_string()).unwrap_or_default(),
                        cell(&b.notes),
                    ]
                })
                .collect()
        })
        .await?;
    let header = [
        "id",
        "room",
        "start",
        "end",
        "title",
        "status",
        "booked_by",
        "period",
        "series_id",
        "notes",
    ];
    Ok(csv_response("bookings.csv", csv_body(&header, rows)?))
}
