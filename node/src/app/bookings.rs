//! Booking use cases shared by the API and the pages: when a booking is (instants, a period or
//! local times in the school's zone), series planned against the calendar, and the metric of
//! what booking requests came to.

use jiff::civil::Time;
use jiff::Timestamp;
use roomraft_cluster::Consistency;
use serde::Deserialize;
use serde_json::Value;

use super::{parse_clock, parse_date, parse_time, AppError, AppState, Caller};
use crate::domain::booking::{CancelBooking, CreateBooking, CreateSeries, DecideBooking};
use crate::domain::calendar::{expand_weekly, instant, weekday_name, weekday_number, zone};
use crate::domain::{
    Booking, BookingDetails, BookingId, Calendar, CancelScope, Occurrence, RoomId, Series,
    SeriesMode, Tenant, TenantId, WeeklyRule,
};

/// When a booking is: instants, or a local date with a period or local clock times.
#[derive(Deserialize, Default, Clone)]
pub struct When {
    pub start: Option<String>,
    pub end: Option<String>,
    pub date: Option<String>,
    pub period: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

/// Resolves `w` in the tenant's zone: `(start, end, period name)`.
pub fn resolve(
    tenant: &Tenant,
    cal: &Calendar,
    w: &When,
) -> Result<(Timestamp, Timestamp, Option<String>), AppError> {
    if let (Some(s), Some(e)) = (&w.start, &w.end) {
        return Ok((parse_time("start", s)?, parse_time("end", e)?, None));
    }
    let date = w.date.as_deref().ok_or_else(|| {
        AppError::invalid(
            "date",
            "give start and end, or a date with a period or times",
        )
    })?;
    let date = parse_date("date", date)?;
    let tz = zone(&tenant.time_zone);
    if let Some(p) = &w.period {
        let period = cal.period_on(weekday_number(date), p).ok_or_else(|| {
            AppError::invalid(
                "period",
                format!("no period {p:?} on {}", weekday_name(weekday_number(date))),
            )
        })?;
        return Ok((
            instant(&tz, date, period.start),
            instant(&tz, date, period.end),
            Some(period.name.clone()),
        ));
    }
    let (Some(s), Some(e)) = (&w.start_time, &w.end_time) else {
        return Err(AppError::invalid(
            "period",
            "give a period, or start_time and end_time",
        ));
    };
    let (s, e) = (parse_clock("start_time", s)?, parse_clock("end_time", e)?);
    if e <= s {
        return Err(AppError::invalid(
            "end_time",
            "must be after start_time; a booking past midnight needs start and end instants",
        ));
    }
    Ok((instant(&tz, date, s), instant(&tz, date, e), None))
}

/// The tenant and its calendar, once `room` is known to be the tenant's (404 otherwise, before
/// any question about the calendar).
pub async fn tenant_and_calendar(
    s: &AppState,
    tenant: TenantId,
    room: RoomId,
) -> Result<(Tenant, Calendar), AppError> {
    s.read_tenant(tenant, Consistency::Linearizable, |v| {
        v.room(room)?;
        v.tenant().map(|t| (t.clone(), v.calendar()))
    })
    .await?
    .ok_or_else(|| AppError::not_found("room", room))
}

/// Counts what a booking request came to in `roomraft_bookings_total`: `done` for each of the
/// `n` bookings a reply holds, `conflicted` for each clash that refused it.
fn count_bookings<T>(
    s: &AppState,
    r: Result<T, AppError>,
    done: &str,
    n: impl Fn(&T) -> usize,
) -> Result<T, AppError> {
    let (outcome, n) = match &r {
        Ok(reply) => (done, n(reply)),
        Err(AppError::Conflict(_)) => ("conflicted", 1),
        Err(AppError::SeriesConflicts(list)) => ("conflicted", list.len()),
        Err(_) => return r,
    };
    s.metrics
        .bookings
        .with_label_values(&[outcome])
        .inc_by(n as u64);
    r
}

/// Instants need no calendar: the hot path of booking skips the extra read.
pub fn resolve_plain(w: &When) -> Result<(Timestamp, Timestamp, Option<String>), AppError> {
    let s = w.start.as_deref().unwrap_or_default();
    let e = w.end.as_deref().unwrap_or_default();
    Ok((parse_time("start", s)?, parse_time("end", e)?, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSeries {
    pub room_id: u64,
    pub first_date: String,
    pub until: Option<String>,
    #[serde(default)]
    pub until_end_of_term: bool,
    pub weekdays: Vec<Value>,
    pub week: Option<String>,
    pub period: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub title: String,
    #[serde(default)]
    pub notes: String,
    pub mode: Option<String>,
    pub on_behalf_of: Option<u64>,
    pub override_reason: Option<String>,
}

/// Expands a series request against the tenant's calendar: occurrences and a summary.
pub fn plan(
    tenant: &Tenant,
    cal: &Calendar,
    req: &NewSeries,
) -> Result<(Vec<Occurrence>, String), AppError> {
    let first = parse_date("first_date", &req.first_date)?;
    let until = match (&req.until, req.until_end_of_term) {
        (Some(u), false) => parse_date("until", u)?,
        (None, true) => cal.term_of(first).map(|t| t.end).ok_or_else(|| {
            AppError::invalid("until_end_of_term", format!("{first} is not in a term"))
        })?,
        _ => {
            return Err(AppError::invalid(
                "until",
                "give until (a date) or until_end_of_term: true, not both",
            ))
        }
    };
    if until < first {
        return Err(AppError::invalid("until", "must not be before first_date"));
    }
    if (until - first).get_days() > 800 {
        return Err(AppError::invalid(
            "until",
            "a series may span at most 800 days",
        ));
    }
    let mut days = Vec::new();
    for d in &req.weekdays {
        let n = super::school::weekday_value("weekdays", d)?;
        if !days.contains(&n) {
            days.push(n);
        }
    }
    if days.is_empty() {
        return Err(AppError::invalid("weekdays", "choose at least one weekday"));
    }
    days.sort();
    if let Some(w) = &req.week {
        if !cal.week_labels.contains(w) {
            return Err(AppError::invalid(
                "week",
                format!("use one of the week labels {:?}", cal.week_labels),
            ));
        }
    }
    let tz = zone(&tenant.time_zone);
    let mut occurrences = Vec::new();
    for day in &days {
        let (start, end): (Time, Time) = match (&req.period, &req.start_time, &req.end_time) {
            (Some(p), None, None) => cal
                .period_on(*day, p)
                .map(|x| (x.start, x.end))
                .ok_or_else(|| {
                    AppError::invalid(
                        "period",
                        format!("no period {p:?} on {}", weekday_name(*day)),
                    )
                })?,
            (None, Some(s), Some(e)) => {
                (parse_clock("start_time", s)?, parse_clock("end_time", e)?)
            }
            _ => {
                return Err(AppError::invalid(
                    "period",
                    "give a period, or start_time and end_time",
                ))
            }
        };
        if end <= start {
            return Err(AppError::invalid("end_time", "must be after start_time"));
        }
        let rule = WeeklyRule {
            first,
            until,
            weekdays: vec![*day],
            week: req.week.clone(),
            start,
            end,
        };
        occurrences.extend(expand_weekly(cal, &tz, &rule));
    }
    occurrences.sort_by_key(|o| o.start);
    let names: Vec<&str> = days.iter().map(|d| weekday_name(*d)).collect();
    let mut summary = format!("{} weekly", names.join(", "));
    if let Some(w) = &req.week {
        summary.push_str(&format!(" (week {w})"));
    }
    summary.push_str(&format!(" until {until}"));
    if let Some(p) = &req.period {
        summary.push_str(&format!(", {p}"));
    }
    Ok((occurrences, summary))
}

pub fn series_mode(m: Option<&str>) -> Result<SeriesMode, AppError> {
    match m {
        None | Some("all_or_nothing") => Ok(SeriesMode::AllOrNothing),
        Some("skip_conflicts") => Ok(SeriesMode::SkipConflicts),
        Some(_) => Err(AppError::invalid(
            "mode",
            "use all_or_nothing or skip_conflicts",
        )),
    }
}

/// The command that books `req` as a series, planned against the tenant's calendar as it is now.
async fn series_command(
    s: &AppState,
    tenant: TenantId,
    req: NewSeries,
) -> Result<CreateSeries, AppError> {
    let mode = series_mode(req.mode.as_deref())?;
    let (t, cal) = tenant_and_calendar(s, tenant, req.room_id).await?;
    let (occurrences, rule) = plan(&t, &cal, &req)?;
    Ok(CreateSeries {
        tenant,
        room: req.room_id,
        rule,
        occurrences,
        mode,
        details: BookingDetails {
            title: req.title,
            notes: req.notes,
            period: req.period,
            on_behalf_of: req.on_behalf_of,
            override_reason: req.override_reason,
        },
    })
}

/// Books `room` for `tenant` at `when`: instants as they are, a period or local times in the
/// school's zone and calendar.
pub async fn book(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    room: RoomId,
    when: &When,
    details: BookingDetails,
) -> Result<Booking, AppError> {
    let (start, end, period) = if when.start.is_some() && when.end.is_some() {
        resolve_plain(when)?
    } else {
        let (t, cal) = tenant_and_calendar(s, tenant, room).await?;
        resolve(&t, &cal, when)?
    };
    if end <= start {
        return Err(AppError::invalid("end", "must be after start"));
    }
    if details.title.trim().is_empty() {
        return Err(AppError::invalid("title", "must not be empty"));
    }
    let command = CreateBooking {
        tenant,
        room,
        start,
        end,
        details: BookingDetails { period, ..details },
    };
    count_bookings(s, s.submit(caller, command).await, "created", |_| 1)
}

/// Books `req` as a series: every occurrence, or those without a clash.
pub async fn book_series(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    req: NewSeries,
) -> Result<(Series, Vec<Booking>), AppError> {
    let command = series_command(s, tenant, req).await?;
    count_bookings(
        s,
        s.submit(caller, command).await,
        "created",
        |(_, list)| list.len(),
    )
}

/// A cancellation's scope as the API's query and the pages' form name it.
pub fn cancel_scope(v: Option<&str>) -> Result<CancelScope, AppError> {
    match v {
        None | Some("one") => Ok(CancelScope::One),
        Some("following") => Ok(CancelScope::ThisAndFollowing),
        Some("series") => Ok(CancelScope::Series),
        Some(_) => Err(AppError::invalid("scope", "use one, following or series")),
    }
}

/// Cancels `booking`, or it and the rest of its series: every booking the cancellation changed.
pub async fn cancel(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    booking: BookingId,
    scope: CancelScope,
) -> Result<Vec<Booking>, AppError> {
    let command = CancelBooking {
        tenant,
        booking,
        scope,
    };
    count_bookings(s, s.submit(caller, command).await, "cancelled", Vec::len)
}

/// An admin's decision on a booking waiting for approval.
pub async fn decide(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    booking: BookingId,
    approve: bool,
) -> Result<Booking, AppError> {
    let command = DecideBooking {
        tenant,
        booking,
        approve,
    };
    s.submit(caller, command).await
}
