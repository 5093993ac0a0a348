//! The public facilities website's settings and the hire enquiries it collects (admins).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    caller, consistency, parse_json, AppError, Auth, Consistency, Enquiry, Query, RoomId, SiteSpec,
    St,
};
use crate::app::school::set_site;

/// The public website's settings as the API shows them.
#[derive(Serialize)]
pub(super) struct SiteBody<'a> {
    published: bool,
    description: &'a str,
    contact_email: &'a str,
    hire_room_ids: &'a [RoomId],
    url_path: String,
}

impl<'a> SiteBody<'a> {
    fn new(slug: &str, s: &'a SiteSpec) -> Self {
        SiteBody {
            published: s.published,
            description: &s.description,
            contact_email: &s.contact_email,
            hire_room_ids: &s.hire_rooms,
            url_path: format!("/v/{slug}"),
        }
    }
}

/// A hire enquiry as the API shows it.
#[derive(Serialize)]
pub(super) struct EnquiryBody<'a> {
    id: crate::domain::EnquiryId,
    name: &'a str,
    phone: &'a str,
    email: &'a str,
    room_id: Option<RoomId>,
    first_date: Date,
    last_date: Option<Date>,
    message: &'a str,
    received_at: Timestamp,
    handled_at: Option<Timestamp>,
    handled_by: Option<&'a str>,
}

impl<'a> From<&'a Enquiry> for EnquiryBody<'a> {
    fn from(e: &'a Enquiry) -> Self {
        let s = &e.spec;
        EnquiryBody {
            id: e.id,
            name: &s.name,
            phone: &s.phone,
            email: &s.email,
            room_id: s.room,
            first_date: s.first_date,
            last_date: s.last_date,
            message: &s.message,
            received_at: e.received_at,
            handled_at: e.handled_at,
            handled_by: e.handled_by.as_deref(),
        }
    }
}

/// `GET /api/v1/site`.
pub(super) async fn get_site(State(s): St, auth: Auth) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let t = s.tenant(tenant).await?;
    let spec = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.site_spec()
        })
        .await?;
    Ok(Json(SiteBody::new(&t.slug, &spec)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteFields {
    published: bool,
    #[serde(default)]
    description: String,
    #[serde(default)]
    contact_email: String,
    #[serde(default)]
    hire_room_ids: Vec<u64>,
}

/// `PUT /api/v1/site`: replaces the public website's settings.
pub(super) async fn put_site(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let b: SiteFields = parse_json(&body)?;
    let site = SiteSpec {
        published: b.published,
        description: b.description,
        contact_email: b.contact_email,
        hire_rooms: b.hire_room_ids,
    };
    let t = s.tenant(tenant).await?;
    let site = set_site(&s, caller(&headers, &auth)?, tenant, site).await?;
    Ok(Json(SiteBody::new(&t.slug, &site.spec)).into_response())
}

#[derive(Deserialize)]
pub(super) struct EnquiriesQuery {
    all: Option<bool>,
    consistency: Option<String>,
}

/// `GET /api/v1/enquiries?all=`: open enquiries (or all), newest first.
pub(super) async fn list_enquiries(
    State(s): St,
    auth: Auth,
    Query(q): Query<EnquiriesQuery>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let all = q.all.unwrap_or(false);
    let response = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            let list: Vec<EnquiryBody> = (school.enquiries(all).into_iter())
                .map(EnquiryBody::from)
                .collect();
            Json(list).into_response()
        })
        .await?;
    Ok(response)
}
