//! The HTTPS JSON API (`/api/v1`) and health endpoints: a thin adapter over the use cases in
//! `app`. Only these modules know JSON DTOs; they parse requests into use-case inputs and turn
//! domain values into responses.

mod analytics;
mod bookings;
mod cluster;
mod feeds;
mod people;
mod school;
mod venue;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use roomraft_cluster::Consistency;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app::{
    csrf_token, opt, parse_clock, parse_date, parse_id, parse_time, sha256_hex, AppError, AppState,
    Auth,
};
use crate::domain::{
    ApiToken, AuditEntry, Booking, BookingDetails, BookingStatus, Bookings, Calendar, ClosureKind,
    Enquiry, Feed, FeedTarget, Lesson, LessonSpec, Occupation, Period, PeriodKind, Request, Role,
    Room, RoomFilter, RoomId, RoomSpec, Rules, Series, SiteSpec, Tenant, TenantId, User,
};
use crate::http::{caller, Path, Query, St};

/// Parses a JSON body, naming the offending field where serde says which.
fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        match msg.split('`').nth(1) {
            Some(field) if msg.starts_with("missing field") || msg.starts_with("unknown field") => {
                AppError::invalid(field, msg.split(" at line").next().unwrap_or(&msg))
            }
            _ => AppError::BadRequest {
                message: format!("invalid JSON body: {msg}"),
            },
        }
    })
}

fn created(v: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[derive(Deserialize)]
struct ReadParams {
    consistency: Option<String>,
}

impl ReadParams {
    fn consistency(&self) -> Result<Consistency, AppError> {
        consistency(self.consistency.as_deref())
    }
}

fn consistency(v: Option<&str>) -> Result<Consistency, AppError> {
    match v {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("stale") => Ok(Consistency::Stale),
        Some(_) => Err(AppError::invalid(
            "consistency",
            "use linearizable or stale",
        )),
    }
}

/// The JSON API's routes, health and metrics.
pub fn routes() -> Router<Arc<AppState>> {
    use bookings as b;
    use cluster as c;
    use people as p;
    use school as s;
    Router::new()
        .route("/health/live", get(c::live))
        .route("/health/ready", get(c::ready))
        .route("/metrics", get(crate::http::observe::metrics))
        .route("/api/v1/cluster", get(c::cluster_status))
        .route("/api/v1/cluster/state", get(c::cluster_state))
        .route(
            "/api/v1/cluster/quotas",
            get(c::get_quotas).put(c::set_quotas),
        )
        .route("/api/v1/cluster/learners", post(c::add_learner))
        .route("/api/v1/cluster/voters", post(c::add_voters))
        .route("/api/v1/cluster/members/{id}", delete(c::remove_member))
        .route(
            "/api/v1/cluster/backups",
            get(c::list_backups).post(c::create_backup),
        )
        .route(
            "/api/v1/tenants",
            post(p::create_tenant).get(p::list_tenants),
        )
        .route(
            "/api/v1/tenants/{id}",
            axum::routing::patch(p::update_tenant),
        )
        .route(
            "/api/v1/session",
            post(p::sign_in).get(p::whoami).delete(p::sign_out),
        )
        .route("/api/v1/session/password", post(p::change_password))
        .route("/api/v1/users", post(p::create_user).get(p::list_users))
        .route("/api/v1/users/{id}", get(p::get_user).patch(p::update_user))
        .route("/api/v1/users/{id}/password", post(p::reset_password))
        .route("/api/v1/users/{id}/sign-out", post(p::force_sign_out))
        .route(
            "/api/v1/departments",
            post(p::create_department).get(p::list_departments),
        )
        .route("/api/v1/departments/{id}", delete(p::delete_department))
        .route("/api/v1/tokens", post(p::create_token).get(p::list_tokens))
        .route("/api/v1/tokens/{id}", delete(p::revoke_token))
        .route("/api/v1/rules", get(s::get_rules).put(s::set_rules))
        .route("/api/v1/rooms", post(s::create_room).get(s::list_rooms))
        .route("/api/v1/rooms/{id}", get(s::get_room).patch(s::update_room))
        .route("/api/v1/calendar", get(s::get_calendar))
        .route("/api/v1/calendar/week-cycle", put(s::set_week_cycle))
        .route("/api/v1/calendar/years", post(s::create_year))
        .route("/api/v1/calendar/terms", post(s::create_term))
        .route("/api/v1/calendar/closures", post(s::create_closure))
        .route(
            "/api/v1/calendar/items/{id}",
            delete(s::delete_calendar_item),
        )
        .route("/api/v1/calendar/periods", put(s::set_periods))
        .route("/api/v1/calendar/weeks", get(s::weeks))
        .route(
            "/api/v1/lessons",
            post(s::create_lesson).get(s::list_lessons),
        )
        .route("/api/v1/lessons/import", post(s::import_lessons))
        .route("/api/v1/lessons/{id}", delete(s::delete_lesson))
        .route(
            "/api/v1/lessons/{id}/releases/{date}",
            put(s::release_lesson).delete(s::unrelease_lesson),
        )
        .route("/api/v1/rooms/{id}/bookings", get(b::room_bookings))
        .route("/api/v1/rooms/{id}/day", get(b::room_day))
        .route("/api/v1/rooms/{id}/week", get(b::room_week))
        .route("/api/v1/day", get(b::day_grid))
        .route("/api/v1/free-rooms", get(b::free_rooms))
        .route("/api/v1/bookings", post(b::create_booking))
        .route("/api/v1/bookings/export", get(b::export_bookings))
        .route(
            "/api/v1/bookings/{id}",
            get(b::get_booking).delete(b::cancel_booking),
        )
        .route("/api/v1/bookings/{id}/decision", post(b::decide_booking))
        .route("/api/v1/me/bookings", get(b::my_bookings))
        .route("/api/v1/approvals", get(b::approvals))
        .route("/api/v1/series/preview", post(b::preview_series))
        .route("/api/v1/series", post(b::create_series))
        .route("/api/v1/series/{id}", get(b::get_series))
        .route("/api/v1/audit", get(b::audit))
        .route(
            "/api/v1/feeds",
            post(feeds::create_feed).get(feeds::list_feeds),
        )
        .route("/api/v1/feeds/{id}", delete(feeds::revoke_feed))
        .route("/feeds/{token}", get(feeds::feed))
        .route("/api/v1/analytics", get(analytics::report))
        .route("/api/v1/sites/{slug}/pageviews", post(analytics::page_view))
        .route("/api/v1/site", get(venue::get_site).put(venue::put_site))
        .route("/api/v1/enquiries", get(venue::list_enquiries))
}
