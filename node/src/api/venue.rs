//! The public facilities website's settings and the hire enquiries it collects (admins).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    caller, consistency, parse_json, AppError, Auth, Consistency, Enquiry, Query, SiteSpec, St,
};
use crate::app::school::set_site;

fn site_json(slug: &str, s: &SiteSpec) -> Value {
    json!({ "published": s.published, "description": s.description,
            "contact_email": s.contact_email, "hire_room_ids": s.hire_rooms,
            "url_path": format!("/v/{slug}") })
}

fn enquiry_json(e: &Enquiry) -> Value {
    let s = &e.spec;
    json!({ "id": e.id, "name": s.name, "phone": s.phone, "email": s.email, "room_id": s.room,
            "first_date": s.first_date, "last_date": s.last_date, "message": s.message,
            "received_at": e.received_at, "handled_at": e.handled_at, "handled_by": e.handled_by })
}

/// `GET /api/v1/site`.
pub(super) async fn get_site(State(s): St, auth: Auth) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let t = s.tenant(tenant).await?;
    let spec = s
        .read_tenant(tenant, Consistency::Linearizable, |school| {
            school.site_spec()
        })
        .await?;
    Ok(Json(site_json(&t.slug, &spec)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteBody {
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
) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let b: SiteBody = parse_json(&body)?;
    let site = SiteSpec {
        published: b.published,
        description: b.description,
        contact_email: b.contact_email,
        hire_rooms: b.hire_room_ids,
    };
    let t = s.tenant(tenant).await?;
    let site = set_site(&s, caller(&headers, &auth)?, tenant, site).await?;
    Ok(Json(site_json(&t.slug, &site.spec)))
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
) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let all = q.all.unwrap_or(false);
    let list = s
        .read_tenant(tenant, consistency(q.consistency.as_deref())?, |school| {
            school
                .enquiries(all)
                .into_iter()
                .map(enquiry_json)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(list)))
}
