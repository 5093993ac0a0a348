//! Staff pages: sign-in, today, a room's week, all rooms for a day, booking (single and
//! recurring, with a preview), my bookings.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use jiff::civil::{Date, Time};
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use serde_json::json;

use super::{
    booked_by, clock, date_param, form, html, html_status, local_path, long_date, notice, poster,
    see_other, status_text, viewer, zone, AppError, Booking, BookingDetails, BookingStatus,
    Calendar, Chrome, FieldErrors, Occupation, Opt, PageError, Path, Query, Role, Room, RoomFilter,
    St, Tenant, TenantView, TimeZone, User, Viewer,
};
use crate::app::bookings::{self, plan, series_mode, NewSeries, When};
use crate::app::people::{change_own_password, start_session};
use crate::app::{clash_text, Caller, CsrfProof};
use crate::domain::calendar::{instant, weekday_name, weekday_number};
use crate::http::observe::ClientAddr;
use crate::http::session_cookie;

pub async fn home(State(s): St, headers: HeaderMap) -> Response {
    match viewer(&s, &headers, "/today", CsrfProof::NotNeeded).await {
        Ok(_) => see_other("/today"),
        Err(e) => e.into_response(),
    }
}

// ---- sign-in -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    school: String,
    login: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
    school: Option<String>,
}

pub async fn sign_in_form(Query(q): Query<SignInQuery>) -> Response {
    html(&SignInPage {
        school: q.school.unwrap_or_default(),
        login: String::new(),
        next: local_path(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    school: String,
    login: String,
    password: String,
    next: Option<String>,
}

pub async fn sign_in(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: SignInForm = form(&body)?;
    let next = local_path(f.next.as_deref());
    let again = |status: StatusCode, error: String| {
        html_status(
            status,
            &SignInPage {
                school: f.school.clone(),
                login: f.login.clone(),
                next: next.clone(),
                error: Some(error),
            },
        )
    };
    match start_session(
        &s,
        client,
        f.school.trim(),
        f.login.trim(),
        f.password.clone(),
    )
    .await
    {
        Ok(started) => {
            let mut resp = see_other(&next);
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&started.token, s.sessions.absolute.as_secs()),
            );
            Ok(resp)
        }
        Err(e @ AppError::BadCredentials) => Ok(again(
            StatusCode::UNAUTHORIZED,
            format!("{e}. Check the school's short name too."),
        )),
        Err(AppError::RateLimited {
            retry_after_secs, ..
        }) => {
            let mut r = again(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many sign-in attempts. Wait {retry_after_secs} seconds and try again."
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_out(
    State(s): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/today", &body).await?;
    if v.auth.session.is_some() {
        crate::app::people::sign_out(&s, &v.auth).await?;
    }
    let mut resp = see_other(&format!("/sign-in?school={}", v.tenant.slug));
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    errors: FieldErrors,
}

pub async fn password_form(v: Viewer, Query(q): Query<DoneQuery>) -> Response {
    let mut chrome = v.chrome("Change password", "account");
    chrome.notice = notice(q.done.as_deref());
    html(&PasswordPage {
        chrome,
        errors: FieldErrors::default(),
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn change_password(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/account/password", &body).await?;
    let f: PasswordForm = form(&body)?;
    let chrome = v.chrome("Change password", "account");
    let result = if f.new_password != f.confirm_password {
        Err(AppError::invalid(
            "confirm_password",
            "does not match the new password",
        ))
    } else {
        change_own_password(&s, v.auth, client, f.current_password, f.new_password).await
    };
    match result {
        Ok(_) => Ok(see_other("/account/password?done=password")),
        Err(e @ (AppError::Invalid { .. } | AppError::BadRequest { .. })) => Ok(html_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                chrome,
                errors: FieldErrors::of(&e),
            },
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

// ---- occupancy cells shared by the week view and the day grid ------------------------------

/// One slot of a room: what is in it, as text (never colour alone), and how to book it.
pub struct Cell {
    /// `free`, `busy`, `closed`, `quiet` (nothing outside the periods) or `none` (no such
    /// period that day): a CSS class.
    pub state: &'static str,
    pub label: &'static str,
    /// What a screen reader says instead of the label, when the label is only a mark.
    pub note: String,
    pub items: Vec<String>,
    pub book_href: Option<String>,
    /// What the Book link says after "Book" to a screen reader.
    pub book_what: String,
}

impl Cell {
    fn new(state: &'static str, label: &'static str, times: String) -> Cell {
        Cell {
            state,
            label,
            note: String::new(),
            items: Vec::new(),
            book_what: times,
            book_href: None,
        }
    }
}

/// A slot to show: a period of the day, or an hour when the school has no periods.
struct Slot {
    period: Option<String>,
    start: Time,
    end: Time,
}

impl Slot {
    /// The row a slot belongs to in the week grid: its period's name, or its hour.
    fn row(&self) -> String {
        self.period.clone().unwrap_or_else(|| hm(self.start))
    }
}

/// Who looks at a grid: it offers Book links only where they may book.
pub struct Looker<'a> {
    pub user: &'a User,
    pub role: Role,
    pub now: Timestamp,
}

/// The slots of `date`: its periods; or, when it has none, hours from 08:00 to 18:00 if
/// `hours_if_none` (a school with no periods, or a single day's grid), else none (the week
/// grid of a school with periods: a weekend day shows its bookings under "Other times").
fn slots_on(cal: &Calendar, date: Date, hours_if_none: bool) -> Vec<Slot> {
    let periods: Vec<Slot> = cal
        .periods_on(weekday_number(date))
        .map(|p| Slot {
            period: Some(p.name.clone()),
            start: p.start,
            end: p.end,
        })
        .collect();
    if !periods.is_empty() || !hours_if_none {
        return periods;
    }
    (8..18)
        .map(|h| Slot {
            period: None,
            start: Time::constant(h, 0, 0, 0),
            end: Time::constant(h + 1, 0, 0, 0),
        })
        .collect()
}

fn hm(t: Time) -> String {
    t.strftime("%H:%M").to_string()
}

/// What occupies a room, as a grid line says it.
fn occupation_text(school: TenantView<'_>, o: &Occupation) -> String {
    match o {
        Occupation::Booking(b) => {
            let pending = if b.status == BookingStatus::Pending {
                " (waiting for approval)"
            } else {
                ""
            };
            format!("{} — {}{pending}", b.title, booked_by(school, b))
        }
        Occupation::Lesson { lesson, .. } => {
            let l = &lesson.spec;
            let mut s = format!("Lesson: {}", l.subject);
            for part in [&l.class_name, &l.teacher] {
                if !part.is_empty() {
                    s.push_str(&format!(", {part}"));
                }
            }
            s
        }
    }
}

/// The instants of local `date` from midnight to midnight.
fn whole_day(tz: &TimeZone, date: Date) -> (Timestamp, Timestamp) {
    let from = instant(tz, date, Time::midnight());
    let to = instant(tz, date.tomorrow().unwrap_or(date), Time::midnight());
    (from, to)
}

/// What the cells of one grid share: the state, the school, its calendar and the viewer.
struct Grid<'a> {
    school: TenantView<'a>,
    t: &'a Tenant,
    cal: &'a Calendar,
    who: &'a Looker<'a>,
}

impl Grid<'_> {
    /// The cell of `room` for `slot` on `date`.
    fn cell(&self, room: &Room, date: Date, slot: &Slot) -> Cell {
        let (school, t, cal, who) = (self.school, self.t, self.cal, self.who);
        let tz = zone(&t.time_zone);
        let (start, end) = (instant(&tz, date, slot.start), instant(&tz, date, slot.end));
        let times = format!("{}–{}", hm(slot.start), hm(slot.end));
        if let Some(c) = cal.closure_on(date) {
            let mut cell = Cell::new("closed", "Closed", times);
            cell.items.push(c.name.clone());
            return cell;
        }
        let items: Vec<String> = school
            .occupancy(room.id, start, end)
            .iter()
            .map(|o| occupation_text(school, o))
            .collect();
        if !items.is_empty() {
            let mut cell = Cell::new("busy", "Busy", times);
            cell.items = items;
            return cell;
        }
        let mut cell = Cell::new("free", "Free", times);
        if school.may_book(room, who.user, who.role, who.now, start, end) {
            let mut h = format!("/book?room={}&date={date}", room.id);
            match &slot.period {
                Some(p) => h.push_str(&format!(
                    "&period={}",
                    url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
                )),
                None => h.push_str(&format!(
                    "&start_time={}&end_time={}",
                    hm(slot.start),
                    hm(slot.end)
                )),
            }
            cell.book_href = Some(h);
        }
        cell
    }

    /// What occupies `room` on `date` outside every one of `slots` (an evening letting, a
    /// Saturday club, a lunchtime rehearsal between periods), with its times; `None` when nothing
    /// does. Every occupation is in some cell of every grid.
    fn other_times(&self, room: &Room, date: Date, slots: &[Slot]) -> Option<Cell> {
        let (school, t) = (self.school, self.t);
        let tz = zone(&t.time_zone);
        let (from, to) = whole_day(&tz, date);
        let spans: Vec<(Timestamp, Timestamp)> = slots
            .iter()
            .map(|s| (instant(&tz, date, s.start), instant(&tz, date, s.end)))
            .collect();
        let items: Vec<String> = school
            .occupancy(room.id, from, to)
            .iter()
            .filter(|o| {
                let (s, e) = match o {
                    Occupation::Booking(b) => (b.start, b.end),
                    Occupation::Lesson { start, end, .. } => (*start, *end),
                };
                !spans.iter().any(|(a, b)| s < *b && *a < e)
            })
            .map(|o| {
                let (s, e) = match o {
                    Occupation::Booking(b) => (b.start, b.end),
                    Occupation::Lesson { start, end, .. } => (*start, *end),
                };
                format!(
                    "{}–{} {}",
                    clock(&tz, s.max(from)),
                    clock(&tz, e.min(to)),
                    occupation_text(school, o)
                )
            })
            .collect();
        if items.is_empty() {
            return None;
        }
        let mut cell = Cell::new("busy", "Booked", String::new());
        cell.items = items;
        self.offer_other_time(room, date, &mut cell);
        Some(cell)
    }

    /// A link to book `room` at a time of one's own on `date`, when the rules let the viewer book
    /// some time that day (early or late: the rules count from now).
    fn offer_other_time(&self, room: &Room, date: Date, cell: &mut Cell) {
        let (school, t, cal, who) = (self.school, self.t, self.cal, self.who);
        let (from, to) = whole_day(&zone(&t.time_zone), date);
        let minute = jiff::SignedDuration::from_mins(1);
        let early = from.max(who.now);
        let late = to - minute;
        let some_time = [early, late]
            .into_iter()
            .any(|s| s < to && school.may_book(room, who.user, who.role, who.now, s, s + minute));
        if cal.closure_on(date).is_none() && some_time {
            cell.book_href = Some(format!("/book?room={}&date={date}", room.id));
            cell.book_what = "another time this day".into();
        }
    }

    /// The week's "Other times" row: everything outside the rows of the periods (or hours),
    /// so an evening letting or a Saturday club is never hidden from staff; `None` when
    /// nothing is.
    fn other_times_row(
        &self,
        room: &Room,
        days: &[Date],
        week: &[Vec<Slot>],
        hours: bool,
    ) -> Option<WeekRow> {
        let others: Vec<Option<Cell>> = (days.iter().zip(week))
            .map(|(d, slots)| self.other_times(room, *d, slots))
            .collect();
        if others.iter().all(Option::is_none) {
            return None;
        }
        Some(WeekRow {
            label: "Other times".into(),
            times: if hours {
                "before 08:00, after 18:00".into()
            } else {
                "outside the periods".into()
            },
            cells: (others.into_iter().zip(days))
                .map(|(c, d)| c.unwrap_or_else(|| self.nothing_else(room, *d)))
                .collect(),
        })
    }

    /// The "Other times" cell of a day with nothing outside its periods.
    fn nothing_else(&self, room: &Room, date: Date) -> Cell {
        let mut cell = Cell::new("quiet", "–", String::new());
        cell.note = "nothing outside the periods".into();
        self.offer_other_time(room, date, &mut cell);
        cell
    }
}

/// The cell for a day without the row's period.
fn no_period(name: &str, date: Date) -> Cell {
    let mut cell = Cell::new("none", "–", String::new());
    cell.note = format!("no {name} on {}", weekday_name(weekday_number(date)));
    cell
}

fn monday_of(d: Date) -> Date {
    d.checked_sub((weekday_number(d) as i64 - 1).days())
        .unwrap_or(d)
}

// ---- today ---------------------------------------------------------------------------------

/// A booking as a list line.
pub struct Line {
    pub id: u64,
    pub date: String,
    pub times: String,
    pub room: String,
    pub room_id: u64,
    pub title: String,
    pub who: String,
    pub status: &'static str,
    pub series: Option<String>,
}

fn line(school: TenantView<'_>, tz: &TimeZone, b: &Booking) -> Line {
    let date = crate::domain::calendar::local_date(tz, b.start);
    Line {
        id: b.id,
        date: long_date(date),
        times: format!("{}–{}", clock(tz, b.start), clock(tz, b.end)),
        room: school
            .room(b.room)
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        room_id: b.room,
        title: b.title.clone(),
        who: booked_by(school, b),
        status: status_text(b.status),
        series: b
            .series
            .and_then(|id| school.series(id))
            .map(|s| s.rule.clone()),
    }
}

#[derive(Template)]
#[template(path = "today.html")]
struct TodayPage {
    chrome: Chrome,
    date: String,
    week: String,
    closure: String,
    mine: Vec<Line>,
    today: Vec<Line>,
    approvals: Vec<Line>,
}

pub async fn today(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let tz = v.tz();
    let date = v.today();
    let (user, admin) = (v.user.id, v.user.role == Role::Admin);
    let now = Timestamp::now();
    let from = instant(&tz, date, Time::midnight());
    let to = instant(&tz, date.tomorrow().unwrap_or(date), Time::midnight());
    let page = v
        .read(|school| {
            let cal = school.calendar();
            let mine = school
                .bookings_of_user(user, now)
                .into_iter()
                .filter(|b| b.status.holds_slot())
                .take(10)
                .map(|b| line(school, &tz, b))
                .collect();
            let mut today: Vec<&Booking> = school
                .rooms_by_name()
                .into_iter()
                .flat_map(|r| school.bookings_in(r.id, from, to))
                .collect();
            today.sort_by_key(|b| (b.start, b.room));
            let approvals = if admin {
                school
                    .bookings()
                    .filter(|b| b.status == BookingStatus::Pending)
                    .map(|b| line(school, &tz, b))
                    .collect()
            } else {
                Vec::new()
            };
            (
                cal.week_label(date).map(str::to_string).unwrap_or_default(),
                cal.closure_on(date)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                mine,
                today.into_iter().map(|b| line(school, &tz, b)).collect(),
                approvals,
            )
        })
        .await?;
    let mut chrome = v.chrome("Today", "today");
    chrome.notice = notice(q.done.as_deref());
    Ok(html(&TodayPage {
        chrome,
        date: long_date(date),
        week: page.0,
        closure: page.1,
        mine: page.2,
        today: page.3,
        approvals: page.4,
    }))
}

// ---- a room's week -------------------------------------------------------------------------

pub struct WeekRow {
    pub label: String,
    pub times: String,
    pub cells: Vec<Cell>,
}

pub struct DayHead {
    pub name: String,
    pub date: String,
    pub iso: String,
}

#[derive(Template)]
#[template(path = "week.html")]
struct WeekPage {
    chrome: Chrome,
    room: Room,
    rooms: Vec<Opt>,
    week_of: String,
    week_label: String,
    prev: String,
    next: String,
    days: Vec<DayHead>,
    rows: Vec<WeekRow>,
}

#[derive(Deserialize, Default)]
pub struct DateQuery {
    date: Option<String>,
    done: Option<String>,
}

/// The rows of a week's grid: every slot name of the week, in order of its earliest start,
/// with the first slot's times.
fn week_rows(week: &[Vec<Slot>]) -> Vec<(String, Time, Time)> {
    let mut rows: Vec<(String, Time, Time)> = Vec::new();
    for slots in week {
        for s in slots {
            let name = s.row();
            match rows.iter_mut().find(|r| r.0 == name) {
                Some(r) => r.1 = r.1.min(s.start),
                None => rows.push((name, s.start, s.end)),
            }
        }
    }
    rows.sort_by_key(|r| r.1);
    rows
}

pub async fn week(
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Response, PageError> {
    let room_id: u64 = id.parse().map_err(|_| AppError::not_found("room", &id))?;
    let monday = monday_of(date_param(q.date.as_deref(), v.today())?);
    let tenant = v.tenant.clone();
    let (user, role) = (v.user.clone(), v.auth.actor.role);
    let found = v
        .read(|school| {
            let room = school.room(room_id)?;
            let cal = school.calendar();
            let who = Looker {
                user: &user,
                role,
                now: Timestamp::now(),
            };
            let grid = Grid {
                school,
                t: &tenant,
                cal: &cal,
                who: &who,
            };
            let tz = zone(&tenant.time_zone);
            let mut days: Vec<Date> = (0..7)
                .filter_map(|i| monday.checked_add(i.days()).ok())
                .collect();
            // Weekends only when the school teaches then or something occupies the room.
            days.retain(|d| {
                weekday_number(*d) <= 5 || cal.periods_on(weekday_number(*d)).next().is_some() || {
                    let (from, to) = whole_day(&tz, *d);
                    !school.occupancy(room.id, from, to).is_empty()
                }
            });
            // Rows: every slot name of the week, in order of its earliest start. A school with
            // periods shows periods only (a day without them has none); one without, hours.
            let hours = cal.periods.is_empty();
            let week: Vec<Vec<Slot>> = days.iter().map(|d| slots_on(&cal, *d, hours)).collect();
            let mut table: Vec<WeekRow> = week_rows(&week)
                .iter()
                .map(|(name, start, end)| WeekRow {
                    label: name.clone(),
                    times: format!("{}–{}", hm(*start), hm(*end)),
                    cells: days
                        .iter()
                        .zip(&week)
                        .map(|(d, slots)| match slots.iter().find(|s| s.row() == *name) {
                            Some(s) => grid.cell(room, *d, s),
                            None => no_period(name, *d),
                        })
                        .collect(),
                })
                .collect();
            table.extend(grid.other_times_row(room, &days, &week, hours));
            let heads = days
                .iter()
                .map(|d| DayHead {
                    name: weekday_name(weekday_number(*d)).to_string(),
                    date: d.strftime("%-d %b").to_string(),
                    iso: d.to_string(),
                })
                .collect();
            let rooms = school
                .rooms_by_name()
                .into_iter()
                .map(|r| (r.id, r.name.clone()))
                .collect();
            Some((
                room.clone(),
                rooms,
                cal.week_label(monday)
                    .map(str::to_string)
                    .unwrap_or_default(),
                heads,
                table,
            ))
        })
        .await?;
    let (room, rooms, week_label, days, rows) =
        found.ok_or_else(|| AppError::not_found("room", room_id))?;
    let mut chrome = v.chrome(
        format!("{} — week of {}", room.name, long_date(monday)),
        "rooms",
    );
    chrome.notice = notice(q.done.as_deref());
    let shift = |n: i64| monday.checked_add(n.weeks()).unwrap_or(monday).to_string();
    Ok(html(&WeekPage {
        chrome,
        rooms: Opt::list(rooms, &room.id.to_string()),
        week_of: monday.to_string(),
        week_label,
        prev: shift(-1),
        next: shift(1),
        days,
        rows,
        room,
    }))
}

// ---- all rooms for a day -------------------------------------------------------------------

pub struct DayRow {
    pub room_id: u64,
    pub name: String,
    pub detail: String,
    pub cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "day.html")]
struct DayPage {
    chrome: Chrome,
    date: String,
    iso: String,
    prev: String,
    next: String,
    week_label: String,
    closure: String,
    categories: Vec<String>,
    category: String,
    min_capacity: String,
    slots: Vec<(String, String)>,
    rows: Vec<DayRow>,
}

#[derive(Deserialize, Default)]
pub struct DayQuery {
    date: Option<String>,
    category: Option<String>,
    min_capacity: Option<String>,
}

pub async fn day(v: Viewer, Query(q): Query<DayQuery>) -> Result<Response, PageError> {
    let date = date_param(q.date.as_deref(), v.today())?;
    let min_capacity =
        match q.min_capacity.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(n) => Some(n.parse::<u32>().map_err(|_| {
                AppError::invalid("min_capacity", "must be a whole number of people")
            })?),
        };
    let filter = RoomFilter {
        category: q.category.clone().filter(|c| !c.is_empty()),
        min_capacity,
    };
    let tenant = v.tenant.clone();
    let (user, role) = (v.user.clone(), v.auth.actor.role);
    let (categories, week_label, closure, slots, rows) = v
        .read(|school| {
            let cal = school.calendar();
            let who = Looker {
                user: &user,
                role,
                now: Timestamp::now(),
            };
            let grid = Grid {
                school,
                t: &tenant,
                cal: &cal,
                who: &who,
            };
            let slots = slots_on(&cal, date, true);
            let mut categories: Vec<String> = school
                .rooms_by_name()
                .iter()
                .map(|r| r.category.clone())
                .collect();
            categories.sort_by_key(|c| c.to_lowercase());
            categories.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            let rooms: Vec<&Room> = school
                .rooms_by_name()
                .into_iter()
                .filter(|r| filter.matches(r))
                .collect();
            // A column for what lies outside every slot, when anything in these rooms does.
            let others: Vec<Option<Cell>> = rooms
                .iter()
                .map(|r| grid.other_times(r, date, &slots))
                .collect();
            let other_column = others.iter().any(Option::is_some);
            let rows: Vec<DayRow> = rooms
                .iter()
                .zip(others)
                .map(|(r, other)| {
                    let mut cells: Vec<Cell> =
                        slots.iter().map(|s| grid.cell(r, date, s)).collect();
                    if other_column {
                        cells.push(other.unwrap_or_else(|| grid.nothing_else(r, date)));
                    }
                    DayRow {
                        room_id: r.id,
                        name: r.name.clone(),
                        detail: format!("{}, {} places", r.category, r.capacity),
                        cells,
                    }
                })
                .collect();
            let mut heads: Vec<(String, String)> = slots
                .iter()
                .map(|s| {
                    (
                        s.period.clone().unwrap_or_else(|| hm(s.start)),
                        format!("{}–{}", hm(s.start), hm(s.end)),
                    )
                })
                .collect();
            if other_column {
                heads.push(("Other times".into(), "outside these".into()));
            }
            (
                categories,
                cal.week_label(date).map(str::to_string).unwrap_or_default(),
                cal.closure_on(date)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                heads,
                rows,
            )
        })
        .await?;
    let shift = |n: i64| date.checked_add(n.days()).unwrap_or(date).to_string();
    Ok(html(&DayPage {
        chrome: v.chrome(format!("All rooms — {}", long_date(date)), "day"),
        date: long_date(date),
        iso: date.to_string(),
        prev: shift(-1),
        next: shift(1),
        week_label,
        closure,
        categories,
        category: filter.category.unwrap_or_default(),
        min_capacity: min_capacity.map(|n| n.to_string()).unwrap_or_default(),
        slots,
        rows,
    }))
}

// ---- booking -------------------------------------------------------------------------------

/// The booking form's fields, as posted (and as prefilled from a free slot's link).
#[derive(Deserialize, Default, Clone)]
pub struct BookFields {
    room: Option<String>,
    date: Option<String>,
    period: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    notes: String,
    repeat: Option<String>,
    mon: Option<String>,
    tue: Option<String>,
    wed: Option<String>,
    thu: Option<String>,
    fri: Option<String>,
    sat: Option<String>,
    sun: Option<String>,
    week: Option<String>,
    until: Option<String>,
    until_end_of_term: Option<String>,
    mode: Option<String>,
    action: Option<String>,
    /// Generated with the form: a resubmission is the same request (Idempotency-Key).
    key: Option<String>,
}

impl BookFields {
    fn days(&self) -> [(u8, &'static str, bool); 7] {
        let on = |v: &Option<String>| v.is_some();
        [
            (1, "mon", on(&self.mon)),
            (2, "tue", on(&self.tue)),
            (3, "wed", on(&self.wed)),
            (4, "thu", on(&self.thu)),
            (5, "fri", on(&self.fri)),
            (6, "sat", on(&self.sat)),
            (7, "sun", on(&self.sun)),
        ]
    }

    fn weekly(&self) -> bool {
        self.repeat.as_deref() == Some("weekly") || self.action.as_deref() == Some("preview")
    }

    /// A text field's value for the form, or empty.
    fn get(&self, name: &str) -> &str {
        let v = match name {
            "room" => &self.room,
            "date" => &self.date,
            "period" => &self.period,
            "start_time" => &self.start_time,
            "end_time" => &self.end_time,
            "week" => &self.week,
            "until" => &self.until,
            _ => return "",
        };
        v.as_deref().unwrap_or("")
    }

    fn room_id(&self) -> Result<u64, AppError> {
        self.room
            .as_deref()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| AppError::invalid("room", "choose a room"))
    }

    fn nonempty(v: &Option<String>) -> Option<String> {
        v.clone().filter(|s| !s.trim().is_empty())
    }

    fn when(&self) -> When {
        let period = Self::nonempty(&self.period);
        When {
            start: None,
            end: None,
            date: Self::nonempty(&self.date),
            start_time: period
                .is_none()
                .then(|| Self::nonempty(&self.start_time))
                .flatten(),
            end_time: period
                .is_none()
                .then(|| Self::nonempty(&self.end_time))
                .flatten(),
            period,
        }
    }

    fn series(&self) -> Result<NewSeries, AppError> {
        let when = self.when();
        let first_date = when
            .date
            .clone()
            .ok_or_else(|| AppError::invalid("date", "choose the first date"))?;
        let to_term = self.until_end_of_term.is_some();
        Ok(NewSeries {
            room_id: self.room_id()?,
            first_date,
            until: (!to_term).then(|| Self::nonempty(&self.until)).flatten(),
            until_end_of_term: to_term,
            weekdays: self
                .days()
                .iter()
                .filter(|d| d.2)
                .map(|d| json!(d.0))
                .collect(),
            week: Self::nonempty(&self.week),
            period: when.period,
            start_time: when.start_time,
            end_time: when.end_time,
            title: self.title.trim().to_string(),
            notes: self.notes.clone(),
            mode: Self::nonempty(&self.mode),
            on_behalf_of: None,
            override_reason: None,
        })
    }
}

pub struct DayBox {
    pub name: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub struct PreviewLine {
    pub date: String,
    pub times: String,
    pub clash: String,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPage {
    chrome: Chrome,
    f: BookFields,
    key: String,
    rooms: Vec<Opt>,
    periods: Vec<Opt>,
    week_labels: Vec<Opt>,
    days: Vec<DayBox>,
    errors: FieldErrors,
    preview: Option<Vec<PreviewLine>>,
    preview_rule: String,
    clashes: usize,
}

/// Renders the booking form for `f` (and a preview, when there is one).
async fn book_page(
    v: &Viewer,
    f: BookFields,
    errors: FieldErrors,
    preview: Option<(String, Vec<PreviewLine>)>,
) -> Result<BookPage, PageError> {
    let date = f
        .date
        .as_deref()
        .and_then(|d| d.parse::<Date>().ok())
        .unwrap_or_else(|| v.today());
    let (rooms, periods, week_labels) = v
        .read(|school| {
            let cal = school.calendar();
            let rooms: Vec<(u64, String)> = school
                .rooms_by_name()
                .into_iter()
                .filter(|r| r.bookable)
                .map(|r| {
                    (
                        r.id,
                        format!("{} ({}, {} places)", r.name, r.category, r.capacity),
                    )
                })
                .collect();
            let mut periods: Vec<String> = cal
                .periods_on(weekday_number(date))
                .map(|p| p.name.clone())
                .collect();
            if periods.is_empty() {
                for p in &cal.periods {
                    if !periods.contains(&p.name) {
                        periods.push(p.name.clone());
                    }
                }
            }
            (rooms, periods, cal.week_labels.clone())
        })
        .await?;
    let labels = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let mut days: Vec<DayBox> = f
        .days()
        .iter()
        .map(|(n, name, checked)| DayBox {
            name,
            label: labels[*n as usize - 1],
            checked: *checked,
        })
        .collect();
    if !days.iter().any(|d| d.checked) {
        days[weekday_number(date) as usize - 1].checked = true;
    }
    let clashes = preview
        .as_ref()
        .map(|p| p.1.iter().filter(|l| !l.clash.is_empty()).count())
        .unwrap_or(0);
    let (preview_rule, preview) = match preview {
        Some((rule, list)) => (rule, Some(list)),
        None => (String::new(), None),
    };
    Ok(BookPage {
        chrome: v.chrome(
            if preview.is_some() {
                "Check the recurring booking"
            } else {
                "Book a room"
            },
            "book",
        ),
        key: f
            .key
            .clone()
            .filter(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>())),
        rooms: Opt::list(rooms, f.get("room")),
        periods: Opt::list(
            periods.into_iter().map(|p| (p.clone(), p)).collect(),
            f.get("period"),
        ),
        week_labels: Opt::list(
            week_labels.into_iter().map(|w| (w.clone(), w)).collect(),
            f.get("week"),
        ),
        f,
        days,
        errors,
        preview,
        preview_rule,
        clashes,
    })
}

pub async fn book_form(v: Viewer, Query(f): Query<BookFields>) -> Result<Response, PageError> {
    let mut f = f;
    f.key = None;
    if f.date.is_none() {
        f.date = Some(v.today().to_string());
    }
    Ok(html(&book_page(&v, f, FieldErrors::default(), None).await?))
}

/// A form's idempotency key (a hidden field of 32 hex digits), as the command's key.
fn form_key(key: &Option<String>) -> Option<String> {
    key.as_deref()
        .filter(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|k| format!("web-{k}"))
}

/// The form again with what went wrong, or the error page when it is not about the form.
async fn book_again(v: &Viewer, f: BookFields, e: AppError) -> Result<Response, PageError> {
    let status = e.status();
    let errors = match &e {
        AppError::Conflict(c) => FieldErrors::message(format!(
            "That slot is taken: it clashes with {}. Choose another period or room.",
            clash_text(c)
        )),
        AppError::SeriesConflicts(list) => FieldErrors::message(format!(
            "{} occurrences clash (someone may have booked meanwhile); nothing was booked. \
             Preview again, or choose to skip the clashes.",
            list.len()
        )),
        AppError::Invalid { .. } | AppError::Rule { .. } | AppError::Forbidden { .. } => {
            FieldErrors::of(&e)
        }
        AppError::NotFound { what, .. } if what == "room" => FieldErrors::of(&e),
        _ => return Err(e.into()),
    };
    Ok(html_status(status, &book_page(v, f, errors, None).await?))
}

pub async fn book(State(s): St, headers: HeaderMap, body: Bytes) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/book", &body).await?;
    let f: BookFields = form(&body)?;
    let tenant = v.tenant.id;
    if f.action.as_deref() == Some("edit") {
        return Ok(html(&book_page(&v, f, FieldErrors::default(), None).await?));
    }
    if f.title.trim().is_empty() {
        return book_again(&v, f, AppError::invalid("title", "must not be empty")).await;
    }
    if !f.weekly() {
        let room = match f.room_id() {
            Ok(r) => r,
            Err(e) => return book_again(&v, f, e).await,
        };
        let details = BookingDetails {
            title: f.title.trim().to_string(),
            notes: f.notes.clone(),
            period: None,
            on_behalf_of: None,
            override_reason: None,
        };
        let caller = Caller::of(&v.auth).idempotent(form_key(&f.key).as_deref())?;
        return match bookings::book(&s, caller, tenant, room, &f.when(), details).await {
            Ok(b) => {
                let date = crate::domain::calendar::local_date(&v.tz(), b.start);
                let done = if b.status == BookingStatus::Pending {
                    "pending"
                } else {
                    "booked"
                };
                Ok(see_other(&format!(
                    "/rooms/{room}/week?date={date}&done={done}"
                )))
            }
            Err(e) => book_again(&v, f, e).await,
        };
    }
    let req = match f.series() {
        Ok(r) => r,
        Err(e) => return book_again(&v, f, e).await,
    };
    if let Err(e) = series_mode(req.mode.as_deref()) {
        return book_again(&v, f, e).await;
    }
    if f.action.as_deref() != Some("confirm") {
        // Preview: every occurrence with what it would clash with; books nothing.
        let tz = v.tz();
        let room = req.room_id;
        let planned = v
            .read(|school| {
                let t = school.tenant()?;
                school.room(room)?;
                let cal = school.calendar();
                Some(plan(t, &cal, &req).map(|(occ, rule)| {
                    let lines = occ
                        .iter()
                        .map(|o| PreviewLine {
                            date: long_date(o.date),
                            times: format!("{}–{}", clock(&tz, o.start), clock(&tz, o.end)),
                            clash: school
                                .clash(room, o.start, o.end, false)
                                .map(|c| clash_text(&c))
                                .unwrap_or_default(),
                        })
                        .collect::<Vec<_>>();
                    (rule, lines)
                }))
            })
            .await?;
        return match planned {
            None => book_again(&v, f, AppError::not_found("room", room)).await,
            Some(Err(e)) => book_again(&v, f, e).await,
            Some(Ok((rule, lines))) if lines.is_empty() => {
                let e = AppError::invalid(
                    "until",
                    format!("{rule}: no school days match; check the dates and weekdays"),
                );
                book_again(&v, f, e).await
            }
            Some(Ok(preview)) => Ok(html(
                &book_page(&v, f, FieldErrors::default(), Some(preview)).await?,
            )),
        };
    }
    let caller = Caller::of(&v.auth).idempotent(form_key(&f.key).as_deref())?;
    match bookings::book_series(&s, caller, tenant, req).await {
        Ok(_) => Ok(see_other("/my/bookings?done=series")),
        Err(e) => book_again(&v, f, e).await,
    }
}

// ---- my bookings ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "my_bookings.html")]
struct MyBookingsPage {
    chrome: Chrome,
    lines: Vec<Line>,
}

pub async fn my_bookings(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let (user, tz, now) = (v.user.id, v.tz(), Timestamp::now());
    let lines = v
        .read(|school| {
            school
                .bookings_of_user(user, now)
                .into_iter()
                .filter(|b| b.status.holds_slot())
                .map(|b| line(school, &tz, b))
                .collect()
        })
        .await?;
    let mut chrome = v.chrome("My bookings", "mine");
    chrome.notice = notice(q.done.as_deref());
    Ok(html(&MyBookingsPage { chrome, lines }))
}

#[derive(Deserialize)]
pub struct CancelForm {
    scope: Option<String>,
}

pub async fn cancel(
    State(s): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/my/bookings", &body).await?;
    let f: CancelForm = form(&body)?;
    let booking: u64 = id
        .parse()
        .map_err(|_| AppError::not_found("booking", &id))?;
    let scope = bookings::cancel_scope(f.scope.as_deref())?;
    match bookings::cancel(&s, Caller::of(&v.auth), v.tenant.id, booking, scope).await {
        Ok(_) | Err(AppError::AlreadyCancelled { .. }) => {
            Ok(see_other("/my/bookings?done=cancelled"))
        }
        Err(e) => Err(e.into()),
    }
}
