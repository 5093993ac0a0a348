//! The school's calendar and timetable use cases shared by the API and the pages: lesson
//! times, and the timetable import (CSV parsing, the all-or-nothing check, the command).

use jiff::civil::{Date, Time};
use roomraft_cluster::Consistency;
use serde_json::Value;

use super::{parse_clock, parse_date, AppError, AppState, Caller};
use crate::domain::calendar::parse_weekday;
use crate::domain::school::{CreateRoom, ImportLessons, Imported};
use crate::domain::venue::SetSite;
use crate::domain::{
    Calendar, LessonImport, LessonSpec, Room, RoomSpec, RowError, Site, SiteSpec, TenantId,
};

pub fn weekday_value(field: &str, v: &Value) -> Result<u8, AppError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    parse_weekday(&s).ok_or_else(|| AppError::invalid(field, "use 1 (Monday) to 7, or Mon to Sun"))
}

/// The start and end of a lesson on `weekday`: its period's times, or explicit ones.
pub fn lesson_times(
    cal: &Calendar,
    weekday: u8,
    period: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<(jiff::civil::Time, jiff::civil::Time), AppError> {
    match (period, start, end) {
        (_, Some(s), Some(e)) => Ok((parse_clock("start", s)?, parse_clock("end", e)?)),
        (Some(p), None, None) => cal
            .period_on(weekday, p)
            .map(|x| (x.start, x.end))
            .ok_or_else(|| {
                AppError::invalid(
                    "period",
                    format!(
                        "no period {p:?} on {}",
                        crate::domain::calendar::weekday_name(weekday)
                    ),
                )
            }),
        _ => Err(AppError::invalid(
            "period",
            "give a period, or both start and end times",
        )),
    }
}

pub const ALWAYS_FROM: Date = jiff::civil::date(2000, 1, 1);
pub const ALWAYS_TO: Date = jiff::civil::date(2199, 12, 31);

/// The timetable CSV's columns (docs/api.md): a header row naming them, in any order.
const CSV_COLUMNS: [&str; 11] = [
    "room", "day", "period", "start", "end", "subject", "class", "teacher", "week", "from", "to",
];

/// A timetable CSV as read: the rows that parsed, every problem of the others, and the room
/// each row names (so an unknown room is reported even on a row with another problem).
pub struct ParsedTimetable {
    pub lessons: Vec<LessonImport>,
    pub errors: Vec<RowError>,
    pub rooms: Vec<(u32, String)>,
}

/// What is wrong with a timetable's header row: a required column missing, a column unknown.
fn header_errors(headers: &[String]) -> Vec<RowError> {
    let err = |field: &str, message: String| RowError {
        row: 1,
        field: field.into(),
        message,
    };
    let missing = ["room", "day", "subject"]
        .into_iter()
        .filter(|required| !headers.iter().any(|h| h == required))
        .map(|required| {
            err(
                required,
                format!("the header row lacks the {required} column"),
            )
        });
    let unknown = (headers.iter())
        .filter(|h| !CSV_COLUMNS.contains(&h.as_str()))
        .map(|unknown| {
            err(
                unknown,
                format!("unknown column; use {}", CSV_COLUMNS.join(", ")),
            )
        });
    missing.chain(unknown).collect()
}

/// A row's lesson times: its period's, or explicit ones. Without a day no period can be
/// looked up (`None`), but explicit times are still checked.
fn row_times(
    cal: &Calendar,
    weekday: Option<u8>,
    period: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<Option<(Time, Time)>, AppError> {
    match weekday {
        Some(w) => lesson_times(cal, w, period, start, end).map(Some),
        None => match (start, end) {
            (Some(s), Some(e)) => parse_clock("start", s)
                .and_then(|_| parse_clock("end", e))
                .map(|_| None),
            _ => Ok(None),
        },
    }
}

/// Parses a timetable CSV, reporting every problem of every row in one pass.
pub fn parse_timetable(cal: &Calendar, csv_text: &[u8]) -> ParsedTimetable {
    let mut out = ParsedTimetable {
        lessons: Vec::new(),
        errors: Vec::new(),
        rooms: Vec::new(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_text);
    let err = |row: u32, field: &str, message: String| RowError {
        row,
        field: field.into(),
        message,
    };
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => {
            out.errors
                .push(err(1, "header", format!("unreadable CSV: {e}")));
            return out;
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    out.errors = header_errors(&headers);
    if !out.errors.is_empty() {
        return out;
    }
    for (i, record) in reader.records().enumerate() {
        let row = i as u32 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.errors
                    .push(err(row, "row", format!("unreadable row: {e}")));
                continue;
            }
        };
        let get = |name: &str| {
            col(name)
                .and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
        };
        let before = out.errors.len();
        let mut bad = |field: &str, e: AppError| {
            let (field, message) = match e {
                AppError::Invalid { field, message } => (field, message),
                other => (field.to_string(), other.to_string()),
            };
            out.errors.push(err(row, &field, message));
        };
        let room = get("room").unwrap_or_default().to_string();
        if room.is_empty() {
            bad("room", AppError::invalid("room", "name the room"));
        }
        if get("subject").is_none() {
            bad("subject", AppError::invalid("subject", "must not be empty"));
        }
        let weekday = get("day").and_then(parse_weekday);
        if weekday.is_none() {
            bad("day", AppError::invalid("day", "use Mon to Sun, or 1 to 7"));
        }
        let times = match row_times(cal, weekday, get("period"), get("start"), get("end")) {
            Ok(t) => t,
            Err(e) => {
                bad("period", e);
                None
            }
        };
        let mut dates = [(ALWAYS_FROM, "from"), (ALWAYS_TO, "to")];
        for (d, name) in dates.iter_mut() {
            if let Some(v) = get(name) {
                match parse_date(name, v) {
                    Ok(x) => *d = x,
                    Err(e) => bad(name, e),
                }
            }
        }
        out.rooms.push((row, room.clone()));
        let (Some(weekday), Some((start, end))) = (weekday, times) else {
            continue;
        };
        if out.errors.len() > before {
            continue;
        }
        out.lessons.push(LessonImport {
            row,
            room,
            lesson: LessonSpec {
                weekday,
                period: get("period").map(str::to_string),
                start,
                end,
                subject: get("subject").unwrap_or_default().to_string(),
                class_name: get("class").unwrap_or_default().to_string(),
                teacher: get("teacher").unwrap_or_default().to_string(),
                week: get("week").map(str::to_string),
                from: dates[0].0,
                to: dates[1].0,
            },
        });
    }
    out
}

/// Imports a timetable CSV for `tenant`, all or nothing, as the JSON API and the admin page do:
/// every problem of every row is reported at once (the file as read, then what apply would
/// refuse: unknown rooms, week labels, overlapping lessons), and a row already in the
/// timetable is left as it is.
pub async fn import_timetable(
    s: &AppState,
    caller: Caller,
    csv: &[u8],
    replace: bool,
) -> Result<Imported, AppError> {
    let tenant = caller
        .actor
        .tenant
        .ok_or_else(|| AppError::forbidden("sign in to a school"))?;
    let cal = s
        .cluster
        .read(Consistency::Linearizable, |st| st.calendar(tenant))
        .await?;
    let parsed = parse_timetable(&cal, csv);
    let (lessons, mut errors) = (parsed.lessons, parsed.errors);
    if lessons.len() > crate::domain::MAX_IMPORT_ROWS {
        return Err(AppError::invalid(
            "body",
            format!(
                "import at most {} lessons at once; split the file",
                crate::domain::MAX_IMPORT_ROWS
            ),
        ));
    }
    let (planned, unknown_rooms) = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            let planned = st.plan_import(tenant, &lessons, replace, true);
            let unknown: Vec<RowError> = parsed
                .rooms
                .iter()
                .filter(|(row, name)| {
                    !name.is_empty()
                        && !lessons.iter().any(|l| l.row == *row)
                        && !st
                            .for_tenant(tenant)
                            .rooms()
                            .any(|r| r.name.eq_ignore_ascii_case(name.trim()))
                })
                .map(|(row, name)| RowError {
                    row: *row,
                    field: "room".into(),
                    message: format!("no room named {name:?}"),
                })
                .collect();
            (planned, unknown)
        })
        .await?;
    errors.extend(unknown_rooms);
    if let Err(rows) = planned {
        errors.extend(rows);
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        errors.dedup_by(|a, b| a.row == b.row && a.field == b.field);
        return Err(AppError::Rows(errors));
    }
    if lessons.is_empty() {
        return Err(AppError::invalid("body", "the CSV has no lesson rows"));
    }
    let command = ImportLessons {
        tenant,
        lessons,
        replace,
    };
    s.submit(caller, command).await
}

/// Adds a room.
pub async fn create_room(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    spec: RoomSpec,
) -> Result<Room, AppError> {
    s.submit(caller, CreateRoom { tenant, spec }).await
}

/// Sets the school's public facilities website.
pub async fn set_site(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    site: SiteSpec,
) -> Result<Site, AppError> {
    s.submit(caller, SetSite { tenant, site }).await
}
