//! Admin pages: rooms, users, the calendar, the timetable upload, the approval queue, hire
//! enquiries, the public website, audit history and visitor statistics.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use super::{
    booked_by, clock, form, html, html_status, long_date, notice, poster, see_other, viewer,
    AppError, Booking, BookingStatus, Chrome, FieldErrors, Opt, PageError, Path, Period, Query,
    Role, Room, RoomSpec, RowError, Rules, SiteSpec, St, Viewer,
};
use crate::app;
use crate::app::people::NewUser;
use crate::app::school::{import_timetable, set_site};
use crate::app::{Caller, CsrfProof};
use crate::domain::calendar::{local_date, weekday_name};
use crate::domain::venue::SetEnquiryHandled;

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// A signed-in admin's page frame, or 403 for anyone else.
fn admin_chrome(v: &Viewer, title: &str, done: Option<&str>) -> Result<Chrome, PageError> {
    v.require_admin()?;
    let mut c = v.chrome(title, "admin");
    c.notice = notice(done);
    Ok(c)
}

// ---- overview ------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    rooms: usize,
    users: usize,
    lessons: usize,
    pending: usize,
    enquiries: usize,
    slug: String,
    published: bool,
}

pub async fn overview(v: Viewer) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Administration", None)?;
    let (rooms, users, lessons, pending, enquiries, published) = v
        .read(|school| {
            (
                school.rooms_by_name().len(),
                school.users().count(),
                school.lessons().count(),
                school
                    .bookings()
                    .filter(|b| b.status == BookingStatus::Pending)
                    .count(),
                school.enquiries(false).len(),
                school.site_spec().published,
            )
        })
        .await?;
    Ok(html(&OverviewPage {
        chrome,
        rooms,
        users,
        lessons,
        pending,
        enquiries,
        slug: v.tenant.slug.clone(),
        published,
    }))
}

// ---- rooms ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/rooms.html")]
struct RoomsPage {
    chrome: Chrome,
    rooms: Vec<Room>,
    f: RoomForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct RoomForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    approval_required: Option<String>,
    not_bookable: Option<String>,
}

async fn rooms_page(
    v: &Viewer,
    chrome: Chrome,
    f: RoomForm,
    errors: FieldErrors,
) -> Result<RoomsPage, PageError> {
    let rooms = v
        .read(|school| school.rooms_by_name().into_iter().cloned().collect())
        .await?;
    Ok(RoomsPage {
        chrome,
        rooms,
        f,
        errors,
    })
}

pub async fn rooms(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Rooms", q.done.as_deref())?;
    Ok(html(
        &rooms_page(&v, chrome, RoomForm::default(), FieldErrors::default()).await?,
    ))
}

pub async fn create_room(
    State(s): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/admin/rooms", &body).await?;
    let chrome = admin_chrome(&v, "Rooms", None)?;
    let f: RoomForm = form(&body)?;
    let capacity = f.capacity.trim().parse::<u32>();
    let result = match capacity {
        Err(_) => Err(AppError::invalid(
            "capacity",
            "must be a whole number of places",
        )),
        Ok(capacity) => {
            let spec = RoomSpec {
                name: f.name.trim().to_string(),
                category: f.category.trim().to_string(),
                capacity,
                location: f.location.trim().to_string(),
                description: f.description.trim().to_string(),
                bookable: f.not_bookable.is_none(),
                allowed_roles: Vec::new(),
                allowed_departments: Vec::new(),
                approval_required: f.approval_required.is_some(),
                rules: Rules::default(),
            };
            app::school::create_room(&s, Caller::of(&v.auth), v.tenant.id, spec).await
        }
    };
    match result {
        Ok(_) => Ok(see_other("/admin/rooms?done=room")),
        Err(e @ (AppError::Invalid { .. } | AppError::AlreadyExists { .. })) => {
            let errors = FieldErrors::of(&e);
            Ok(html_status(
                e.status(),
                &rooms_page(&v, chrome, f, errors).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- timetable -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/timetable.html")]
struct TimetablePage {
    chrome: Chrome,
    lessons: usize,
    /// Lessons added, and rows already in the timetable.
    imported: Option<(usize, usize)>,
    errors: FieldErrors,
    rows: Vec<RowError>,
}

async fn lesson_count(v: &Viewer) -> Result<usize, PageError> {
    v.read(|school| school.lessons().count()).await
}

pub async fn timetable(v: Viewer) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Timetable", None)?;
    Ok(html(&TimetablePage {
        chrome,
        lessons: lesson_count(&v).await?,
        imported: None,
        errors: FieldErrors::default(),
        rows: Vec::new(),
    }))
}

/// Most bytes of a timetable CSV upload.
const MAX_CSV: usize = 4 << 20;

pub async fn upload_timetable(
    State(s): St,
    headers: HeaderMap,
    mut parts: Multipart,
) -> Result<Response, PageError> {
    let (mut csrf, mut csv, mut replace) = (None, None, false);
    let bad = |m: String| PageError::Api(AppError::BadRequest { message: m });
    while let Some(field) = parts
        .next_field()
        .await
        .map_err(|e| bad(format!("the upload could not be read: {e}")))?
    {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|e| bad(e.to_string()))?),
            Some("replace") => replace = true,
            Some("file") => {
                let bytes = field.bytes().await.map_err(|e| bad(e.to_string()))?;
                if bytes.len() > MAX_CSV {
                    return Err(bad(format!("the file is over {} MiB", MAX_CSV >> 20)));
                }
                csv = Some(bytes);
            }
            _ => {}
        }
    }
    let v = viewer(
        &s,
        &headers,
        "/admin/timetable",
        CsrfProof::Sent(csrf.as_deref()),
    )
    .await?;
    let chrome = admin_chrome(&v, "Timetable", None)?;
    let csv = csv.filter(|c| !c.is_empty());
    let result = match csv {
        None => Err(AppError::invalid("file", "choose a CSV file to upload")),
        Some(csv) => import_timetable(&s, Caller::of(&v.auth), &csv, replace).await,
    };
    let (status, imported, errors, rows) = match result {
        Ok(done) => (
            StatusCode::OK,
            Some((done.imported, done.unchanged)),
            FieldErrors::default(),
            Vec::new(),
        ),
        Err(AppError::Rows(rows)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            FieldErrors::message(format!(
                "{} rows have problems; nothing was imported. Fix them and upload the file again.",
                rows.len()
            )),
            rows,
        ),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            (e.status(), None, FieldErrors::of(&e), Vec::new())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html_status(
        status,
        &TimetablePage {
            chrome,
            lessons: lesson_count(&v).await?,
            imported,
            errors,
            rows,
        },
    ))
}

// ---- approvals -----------------------------------------------------------------------------

pub struct Pending {
    pub id: u64,
    pub when: String,
    pub room: String,
    pub title: String,
    pub who: String,
    pub notes: String,
}

#[derive(Template)]
#[template(path = "admin/approvals.html")]
struct ApprovalsPage {
    chrome: Chrome,
    pending: Vec<Pending>,
}

pub async fn approvals(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Approval queue", q.done.as_deref())?;
    let tz = v.tz();
    let pending = v
        .read(|school| {
            let mut list: Vec<&Booking> = school
                .bookings()
                .filter(|b| b.status == BookingStatus::Pending)
                .collect();
            list.sort_by_key(|b| b.start);
            list.into_iter()
                .map(|b| Pending {
                    id: b.id,
                    when: format!(
                        "{} {}–{}",
                        long_date(local_date(&tz, b.start)),
                        clock(&tz, b.start),
                        clock(&tz, b.end)
                    ),
                    room: school
                        .room(b.room)
                        .map(|r| r.name.clone())
                        .unwrap_or_default(),
                    title: b.title.clone(),
                    who: booked_by(school, b),
                    notes: b.notes.clone(),
                })
                .collect()
        })
        .await?;
    Ok(html(&ApprovalsPage { chrome, pending }))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    decision: String,
}

pub async fn decide(
    State(s): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/admin/approvals", &body).await?;
    let tenant = v.require_admin()?;
    let f: DecisionForm = form(&body)?;
    let booking: u64 = id
        .parse()
        .map_err(|_| AppError::not_found("booking", &id))?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return Err(AppError::invalid("decision", "use approve or decline").into()),
    };
    match app::bookings::decide(&s, Caller::of(&v.auth), tenant, booking, approve).await {
        Ok(_) | Err(AppError::NotPending { .. }) => Ok(see_other("/admin/approvals?done=decided")),
        Err(e) => Err(e.into()),
    }
}

// ---- enquiries -----------------------------------------------------------------------------

pub struct EnquiryLine {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub facility: String,
    pub dates: String,
    pub message: String,
    pub received: String,
    pub handled: String,
}

#[derive(Template)]
#[template(path = "admin/enquiries.html")]
struct EnquiriesPage {
    chrome: Chrome,
    all: bool,
    list: Vec<EnquiryLine>,
}

#[derive(Deserialize, Default)]
pub struct EnquiriesQuery {
    all: Option<String>,
    done: Option<String>,
}

pub async fn enquiries(v: Viewer, Query(q): Query<EnquiriesQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Hire enquiries", q.done.as_deref())?;
    let all = q.all.is_some();
    let tz = v.tz();
    let list = v
        .read(|school| {
            school
                .enquiries(all)
                .into_iter()
                .map(|e| {
                    let s = &e.spec;
                    EnquiryLine {
                        id: e.id,
                        name: s.name.clone(),
                        email: s.email.clone(),
                        phone: s.phone.clone(),
                        facility: s
                            .room
                            .and_then(|r| school.room(r))
                            .map(|r| r.name.clone())
                            .unwrap_or_else(|| "Any / general".into()),
                        dates: match s.last_date {
                            Some(l) if l != s.first_date => {
                                format!("{} to {}", long_date(s.first_date), long_date(l))
                            }
                            _ => long_date(s.first_date),
                        },
                        message: s.message.clone(),
                        received: format!(
                            "{} {}",
                            long_date(local_date(&tz, e.received_at)),
                            clock(&tz, e.received_at)
                        ),
                        handled: e
                            .handled_at
                            .map(|h| format!("Dealt with on {}", long_date(local_date(&tz, h))))
                            .unwrap_or_default(),
                    }
                })
                .collect()
        })
        .await?;
    Ok(html(&EnquiriesPage { chrome, all, list }))
}

#[derive(Deserialize)]
pub struct HandledForm {
    handled: String,
}

pub async fn handle_enquiry(
    State(s): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/admin/enquiries", &body).await?;
    let tenant = v.require_admin()?;
    let f: HandledForm = form(&body)?;
    let enquiry: u64 = id
        .parse()
        .map_err(|_| AppError::not_found("enquiry", &id))?;
    let command = SetEnquiryHandled {
        tenant,
        enquiry,
        handled: f.handled == "yes",
    };
    s.submit(Caller::of(&v.auth), command).await?;
    Ok(see_other("/admin/enquiries?done=enquiry"))
}

// ---- the public website --------------------------------------------------------------------

pub struct HireRoom {
    pub id: u64,
    pub name: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "admin/site.html")]
struct SitePage {
    chrome: Chrome,
    slug: String,
    spec: SiteSpec,
    rooms: Vec<HireRoom>,
    errors: FieldErrors,
}

async fn site_page(
    v: &Viewer,
    chrome: Chrome,
    spec: Option<SiteSpec>,
    errors: FieldErrors,
) -> Result<SitePage, PageError> {
    let (saved, rooms) = v
        .read(|school| {
            let rooms: Vec<(u64, String)> = school
                .rooms_by_name()
                .into_iter()
                .map(|r| (r.id, r.name.clone()))
                .collect();
            (school.site_spec(), rooms)
        })
        .await?;
    let spec = spec.unwrap_or(saved);
    let rooms = rooms
        .into_iter()
        .map(|(id, name)| HireRoom {
            checked: spec.hire_rooms.contains(&id),
            id,
            name,
        })
        .collect();
    Ok(SitePage {
        chrome,
        slug: v.tenant.slug.clone(),
        spec,
        rooms,
        errors,
    })
}

pub async fn site(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Public website", q.done.as_deref())?;
    Ok(html(
        &site_page(&v, chrome, None, FieldErrors::default()).await?,
    ))
}

pub async fn save_site(
    State(s): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/admin/site", &body).await?;
    let chrome = admin_chrome(&v, "Public website", None)?;
    // Checkboxes repeat `hire`, which serde's urlencoded structs cannot hold: read pairs.
    let mut spec = SiteSpec::default();
    for (k, val) in url::form_urlencoded::parse(&body) {
        match &*k {
            "published" => spec.published = true,
            "description" => spec.description = val.replace("\r\n", "\n").trim().to_string(),
            "contact_email" => spec.contact_email = val.trim().to_string(),
            "hire" => match val.parse() {
                Ok(id) => spec.hire_rooms.push(id),
                Err(_) => return Err(AppError::not_found("room", &*val).into()),
            },
            _ => {}
        }
    }
    match set_site(&s, Caller::of(&v.auth), v.tenant.id, spec.clone()).await {
        Ok(_) => Ok(see_other("/admin/site?done=site")),
        Err(e @ (AppError::Invalid { .. } | AppError::NotFound { .. })) => {
            let errors = FieldErrors::of(&e);
            Ok(html_status(
                e.status(),
                &site_page(&v, chrome, Some(spec), errors).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- users ---------------------------------------------------------------------------------

pub struct UserLine {
    pub username: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub department: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserLine>,
    departments: Vec<Opt>,
    roles: Vec<Opt>,
    f: UserForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    password: String,
}

async fn users_page(
    v: &Viewer,
    chrome: Chrome,
    f: UserForm,
    errors: FieldErrors,
) -> Result<UsersPage, PageError> {
    let (users, departments) = v
        .read(|school| {
            let mut users: Vec<UserLine> = school
                .users()
                .map(|u| UserLine {
                    username: u.username.clone(),
                    name: u.name.clone(),
                    email: u.email.clone(),
                    role: u.role.as_str(),
                    department: u
                        .department
                        .and_then(|d| school.department(d))
                        .map(|d| d.name.clone())
                        .unwrap_or_default(),
                    active: u.active,
                })
                .collect();
            users.sort_by_key(|u| u.name.to_lowercase());
            let deps: Vec<(u64, String)> = school
                .departments()
                .map(|d| (d.id, d.name.clone()))
                .collect();
            (users, deps)
        })
        .await?;
    let roles = ["staff", "admin", "viewer"]
        .iter()
        .map(|r| (r.to_string(), r.to_string()))
        .collect();
    let role = if f.role.is_empty() { "staff" } else { &f.role };
    Ok(UsersPage {
        chrome,
        users,
        departments: Opt::list(departments, &f.department),
        roles: Opt::list(roles, role),
        f,
        errors,
    })
}

pub async fn users(v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Users", q.done.as_deref())?;
    Ok(html(
        &users_page(&v, chrome, UserForm::default(), FieldErrors::default()).await?,
    ))
}

pub async fn create_user(
    State(s): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = poster(&s, &headers, "/admin/users", &body).await?;
    let chrome = admin_chrome(&v, "Users", None)?;
    let tenant = v.tenant.id;
    let f: UserForm = form(&body)?;
    let result = async {
        let role = Role::parse_tenant_role(&f.role)
            .ok_or_else(|| AppError::invalid("role", "use admin, staff or viewer"))?;
        let department = match f.department.trim() {
            "" => None,
            d => Some(
                d.parse()
                    .map_err(|_| AppError::not_found("department", d))?,
            ),
        };
        let new = NewUser {
            username: f.username.trim().to_string(),
            name: f.name.trim().to_string(),
            email: f.email.trim().to_string(),
            department,
            role,
            password: f.password.clone(),
        };
        app::people::create_user(&s, Caller::of(&v.auth), tenant, new).await
    }
    .await;
    match result {
        Ok(_) => Ok(see_other("/admin/users?done=user")),
        Err(
            e @ (AppError::Invalid { .. }
            | AppError::AlreadyExists { .. }
            | AppError::NotFound { .. }),
        ) => {
            let errors = FieldErrors::of(&e);
            let f = UserForm {
                password: String::new(),
                ..f
            };
            Ok(html_status(
                e.status(),
                &users_page(&v, chrome, f, errors).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- calendar (read-only here; edited through the API) -------------------------------------

pub struct PeriodLine {
    pub day: &'static str,
    pub name: String,
    pub times: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "admin/calendar.html")]
struct CalendarPage {
    chrome: Chrome,
    weeks: String,
    terms: Vec<(String, String)>,
    closures: Vec<(String, String)>,
    periods: Vec<PeriodLine>,
}

pub async fn calendar(v: Viewer) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Calendar and periods", None)?;
    let cal = v.read(|school| school.calendar()).await?;
    let span = |a: jiff::civil::Date, b: jiff::civil::Date| {
        format!("{} to {}", long_date(a), long_date(b))
    };
    let mut periods: Vec<&Period> = cal.periods.iter().collect();
    periods.sort_by_key(|p| (p.weekday, p.start));
    Ok(html(&CalendarPage {
        chrome,
        weeks: cal.week_labels.join(", "),
        terms: cal
            .terms
            .iter()
            .map(|x| (x.name.clone(), span(x.start, x.end)))
            .collect(),
        closures: cal
            .closures
            .iter()
            .map(|c| (c.name.clone(), span(c.start, c.end)))
            .collect(),
        periods: periods
            .into_iter()
            .map(|p| PeriodLine {
                day: weekday_name(p.weekday),
                name: p.name.clone(),
                times: format!("{}–{}", p.start.strftime("%H:%M"), p.end.strftime("%H:%M")),
                kind: format!("{:?}", p.kind).to_lowercase(),
            })
            .collect(),
    }))
}

// ---- audit ---------------------------------------------------------------------------------

pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub object: String,
    pub action: String,
    pub change: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    kinds: Vec<Opt>,
    q: String,
    list: Vec<AuditLine>,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    kind: Option<String>,
    q: Option<String>,
}

pub async fn audit(v: Viewer, Query(q): Query<AuditQuery>) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Audit history", None)?;
    let tz = v.tz();
    let kind = q.kind.clone().unwrap_or_default();
    let needle = q.q.clone().unwrap_or_default().to_lowercase();
    let (kinds, list) = v
        .read(|school| {
            let kinds = school.audit_kinds();
            let list: Vec<AuditLine> = school
                .audit_where(200, |a| {
                    (kind.is_empty() || a.object == kind)
                        && (needle.is_empty()
                            || a.actor.to_lowercase().contains(&needle)
                            || (a.after.as_deref().unwrap_or("").to_lowercase()).contains(&needle)
                            || (a.before.as_deref().unwrap_or("").to_lowercase()).contains(&needle))
                })
                .into_iter()
                .map(|a| AuditLine {
                    at: format!("{} {}", long_date(local_date(&tz, a.at)), clock(&tz, a.at)),
                    actor: a.actor.clone(),
                    object: format!("{} {}", a.object, a.object_id),
                    action: a.action.clone(),
                    change: a
                        .after
                        .clone()
                        .or_else(|| a.before.clone())
                        .map(|s| s.chars().take(300).collect())
                        .unwrap_or_default(),
                })
                .collect();
            (kinds, list)
        })
        .await?;
    Ok(html(&AuditPage {
        chrome,
        kinds: Opt::list(kinds.into_iter().map(|k| (k.clone(), k)).collect(), &kind),
        q: q.q.unwrap_or_default(),
        list,
    }))
}

// ---- visitor statistics --------------------------------------------------------------------

pub struct Bar {
    pub label: String,
    pub value: u64,
}

#[derive(Template)]
#[template(path = "admin/analytics.html")]
struct AnalyticsPage {
    chrome: Chrome,
    from: String,
    to: String,
    views: u64,
    visitors: u64,
    visits: u64,
    bounce: String,
    max_day: u64,
    days: Vec<Bar>,
    tables: Vec<(&'static str, &'static str, Vec<Bar>)>,
}

pub async fn analytics(v: Viewer) -> Result<Response, PageError> {
    let chrome = admin_chrome(&v, "Visitors to the public website", None)?;
    let to = local_date(&v.tz(), Timestamp::now());
    let from = to.checked_sub(29.days()).unwrap_or(to);
    let r = v
        .read(|school| school.analytics_report(from, to, 10))
        .await?;
    let bars = |list: &[(String, u64)]| {
        list.iter()
            .map(|(label, value)| Bar {
                label: label.clone(),
                value: *value,
            })
            .collect::<Vec<_>>()
    };
    let days: Vec<Bar> = r
        .daily
        .iter()
        .map(|d| Bar {
            label: d.period.clone(),
            value: d.page_views,
        })
        .collect();
    Ok(html(&AnalyticsPage {
        chrome,
        from: long_date(from),
        to: long_date(to),
        views: r.page_views,
        visitors: r.unique_visitors,
        visits: r.visits,
        bounce: r
            .bounce_rate
            .map(|b| format!("{:.0}%", b * 100.0))
            .unwrap_or_else(|| "—".into()),
        max_day: days.iter().map(|d| d.value).max().unwrap_or(0).max(1),
        days,
        tables: vec![
            ("Top pages", "Views", bars(&r.top_pages)),
            ("Where visitors came from", "Visits", bars(&r.referrers)),
            ("Countries", "Visits", bars(&r.countries)),
            ("Browsers", "Visits", bars(&r.browsers)),
            ("Devices", "Visits", bars(&r.devices)),
        ],
    }))
}
