//! Each school's public facilities website at `/v/{slug}`: the school, the rooms it lets, when
//! they are free (busy/free only, never what or who), and the hire enquiry form. Anonymous; every
//! view is counted by the privacy-respecting analytics.

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use jiff::civil::{Date, Time};
use jiff::{Timestamp, ToSpan};
use roomraft_cluster::Consistency;
use serde::Deserialize;

use super::{
    clock, date_param, form, html, html_status, long_date, zone, Actor, AppError, AppState,
    EnquirySpec, FieldErrors, Occupation, Opt, PageError, Path, Query, Role, Room, St, Tenant,
    TenantId, TimeZone,
};
use crate::app::{refused, Caller};
use crate::domain::calendar::{instant, local_date};
use crate::domain::venue::CreateEnquiry;
use crate::http::observe::ClientAddr;

/// Days of availability shown per page.
const AVAILABILITY_DAYS: i64 = 14;

/// What every public page shows of its school.
pub struct School {
    pub slug: String,
    pub name: String,
    pub contact_email: String,
}

pub struct Facility {
    pub id: u64,
    pub name: String,
    pub category: String,
    pub capacity: u32,
    pub location: String,
    pub paragraphs: Vec<String>,
}

fn to_facility(r: &Room) -> Facility {
    Facility {
        id: r.id,
        name: r.name.clone(),
        category: r.category.clone(),
        capacity: r.capacity,
        location: r.location.clone(),
        paragraphs: paragraphs(&r.description),
    }
}

fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The published site behind `slug` with its facilities, or 404.
async fn site(
    s: &Arc<AppState>,
    slug: &str,
) -> Result<(Tenant, School, Vec<String>, Vec<Facility>), PageError> {
    let found = s
        .cluster
        .read(Consistency::Stale, |st| {
            let (t, site) = st.public_site(slug)?;
            let rooms = site
                .spec
                .hire_rooms
                .iter()
                .filter_map(|id| st.for_tenant(t.id).room(*id))
                .map(to_facility)
                .collect();
            let school = School {
                slug: t.slug.clone(),
                name: t.name.clone(),
                contact_email: site.spec.contact_email.clone(),
            };
            Some((t.clone(), school, paragraphs(&site.spec.description), rooms))
        })
        .await?;
    found.ok_or_else(|| AppError::not_found("school website", slug).into())
}

/// Counts a view of a public page; a refused or failed count never fails the page.
fn count_view(s: &AppState, tenant: TenantId, client: IpAddr, headers: &HeaderMap, path: &str) {
    let referrer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    if let Err(r) = s
        .analytics
        .page_view(Some(tenant), client, headers, path, referrer)
    {
        tracing::debug!(scope = r.scope, "page view not counted");
    }
}

#[derive(Template)]
#[template(path = "venue/home.html")]
struct HomePage {
    school: School,
    title: String,
    description: Vec<String>,
    facilities: Vec<Facility>,
}

pub async fn home(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let (t, school, description, facilities) = site(&s, &slug).await?;
    count_view(&s, t.id, client, &headers, &format!("/v/{slug}"));
    Ok(html(&HomePage {
        title: format!("Hire facilities at {}", school.name),
        school,
        description,
        facilities,
    }))
}

pub struct Availability {
    pub date: String,
    pub state: &'static str,
    pub label: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "venue/facility.html")]
struct FacilityPage {
    school: School,
    title: String,
    f: Facility,
    days: Vec<Availability>,
    prev: Option<String>,
    next: String,
}

#[derive(Deserialize, Default)]
pub struct FromQuery {
    from: Option<String>,
}

/// Merges busy intervals of one day into `HH:MM–HH:MM` spans.
fn merge(tz: &TimeZone, mut spans: Vec<(Timestamp, Timestamp)>) -> Vec<String> {
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
        .into_iter()
        .map(|(a, b)| format!("{}–{}", clock(tz, a), clock(tz, b)))
        .collect()
}

pub async fn facility(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    Path((slug, id)): Path<(String, String)>,
    Query(q): Query<FromQuery>,
) -> Result<Response, PageError> {
    let (t, school, _, facilities) = site(&s, &slug).await?;
    let f = id
        .parse::<u64>()
        .ok()
        .and_then(|id| facilities.into_iter().find(|f| f.id == id))
        .ok_or_else(|| AppError::not_found("facility", &id))?;
    let tz = zone(&t.time_zone);
    let today = local_date(&tz, Timestamp::now());
    let from = date_param(q.from.as_deref(), today)?.max(today);
    let room = f.id;
    let tenant = t.clone();
    let days = s
        .cluster
        .read(Consistency::Stale, |st| {
            let school = st.for_tenant(tenant.id);
            let cal = school.calendar();
            (0..AVAILABILITY_DAYS)
                .filter_map(|i| from.checked_add(i.days()).ok())
                .map(|d| {
                    let date = long_date(d);
                    if let Some(c) = cal.closure_on(d) {
                        return Availability {
                            date,
                            state: "closed",
                            label: "Closed",
                            detail: c.name.clone(),
                        };
                    }
                    let start = instant(&tz, d, Time::midnight());
                    let end = instant(&tz, d.tomorrow().unwrap_or(d), Time::midnight());
                    let spans: Vec<(Timestamp, Timestamp)> = school
                        .occupancy(room, start, end)
                        .iter()
                        .map(|o| match o {
                            Occupation::Booking(b) => (b.start.max(start), b.end.min(end)),
                            Occupation::Lesson {
                                start: a, end: b, ..
                            } => (*a, *b),
                        })
                        .collect();
                    if spans.is_empty() {
                        Availability {
                            date,
                            state: "free",
                            label: "Free",
                            detail: "Free all day".into(),
                        }
                    } else {
                        Availability {
                            date,
                            state: "busy",
                            label: "Partly busy",
                            detail: format!(
                                "Busy {}; free otherwise",
                                merge(&tz, spans).join(", ")
                            ),
                        }
                    }
                })
                .collect::<Vec<_>>()
        })
        .await?;
    count_view(
        &s,
        t.id,
        client,
        &headers,
        &format!("/v/{slug}/rooms/{room}"),
    );
    let shift = |n: i64| from.checked_add(n.days()).unwrap_or(from);
    let prev = shift(-AVAILABILITY_DAYS);
    Ok(html(&FacilityPage {
        title: format!("{} — {}", f.name, school.name),
        school,
        f,
        days,
        prev: (from > today).then(|| prev.max(today).to_string()),
        next: shift(AVAILABILITY_DAYS).to_string(),
    }))
}

/// The enquiry form's fields.
#[derive(Deserialize, Default, Clone)]
pub struct EnquiryFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    first_date: String,
    #[serde(default)]
    last_date: String,
    #[serde(default)]
    message: String,
    /// A field people cannot see: robots that fill every field are turned away.
    #[serde(default)]
    website: String,
}

#[derive(Template)]
#[template(path = "venue/enquire.html")]
struct EnquiryPage {
    school: School,
    title: String,
    f: EnquiryFields,
    facilities: Vec<Opt>,
    errors: FieldErrors,
    today: String,
}

#[derive(Template)]
#[template(path = "venue/thanks.html")]
struct ThanksPage {
    school: School,
    title: String,
    name: String,
    email: String,
}

#[derive(Deserialize, Default)]
pub struct RoomQuery {
    room: Option<String>,
}

fn enquiry_page(
    t: &Tenant,
    school: School,
    facilities: &[Facility],
    f: EnquiryFields,
    errors: FieldErrors,
) -> EnquiryPage {
    let today = local_date(&zone(&t.time_zone), Timestamp::now());
    let list = facilities
        .iter()
        .map(|x| (x.id, format!("{} (up to {} people)", x.name, x.capacity)))
        .collect();
    EnquiryPage {
        title: format!("Enquire about hiring — {}", school.name),
        school,
        facilities: Opt::list(list, &f.room),
        f,
        errors,
        today: today.to_string(),
    }
}

pub async fn enquiry_form(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(q): Query<RoomQuery>,
) -> Result<Response, PageError> {
    let (t, school, _, facilities) = site(&s, &slug).await?;
    count_view(&s, t.id, client, &headers, &format!("/v/{slug}/enquire"));
    let f = EnquiryFields {
        room: q.room.unwrap_or_default(),
        ..Default::default()
    };
    Ok(html(&enquiry_page(
        &t,
        school,
        &facilities,
        f,
        FieldErrors::default(),
    )))
}

fn parse_fields(f: &EnquiryFields) -> Result<EnquirySpec, AppError> {
    let date = |field: &str, v: &str| -> Result<Option<Date>, AppError> {
        match v.trim() {
            "" => Ok(None),
            d => crate::app::parse_date(field, d).map(Some),
        }
    };
    let first_date = date("first_date", &f.first_date)?
        .ok_or_else(|| AppError::invalid("first_date", "give the date you would like"))?;
    let room = match f.room.trim() {
        "" => None,
        r => Some(
            r.parse()
                .map_err(|_| AppError::invalid("room", "choose one of the facilities"))?,
        ),
    };
    Ok(EnquirySpec {
        name: f.name.trim().to_string(),
        phone: f.phone.trim().to_string(),
        email: f.email.trim().to_string(),
        room,
        first_date,
        last_date: date("last_date", &f.last_date)?,
        message: f.message.replace("\r\n", "\n").trim().to_string(),
    })
}

pub async fn enquire(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    s.limits.check_enquiry(client).map_err(|r| refused(&s, r))?;
    let (t, school, _, facilities) = site(&s, &slug).await?;
    let f: EnquiryFields = form(&body)?;
    if !f.website.is_empty() {
        return Err(AppError::forbidden("this form is for people, not robots").into());
    }
    let result = match parse_fields(&f) {
        Ok(enquiry) => {
            let actor = Actor {
                tenant: Some(t.id),
                role: Role::Viewer,
                name: "public:enquiry".into(),
                user: None,
            };
            let command = CreateEnquiry {
                tenant: t.id,
                enquiry,
            };
            s.submit(Caller::unauthenticated(actor), command).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(e) => Ok(html(&ThanksPage {
            title: format!("Thank you — {}", school.name),
            school,
            name: e.spec.name,
            email: e.spec.email,
        })),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => Ok(html_status(
            if matches!(e, AppError::Forbidden { .. }) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            &enquiry_page(&t, school, &facilities, f, FieldErrors::of(&e)),
        )),
        Err(e) => Err(e.into()),
    }
}
