//! How a use case's error reads over HTTP: its status, its stable `code`, and the JSON body
//! the API answers with. The pages say it in sentences of their own (`ErrorPages`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::civil::Date;
use jiff::Timestamp;
use roomraft_cluster::ClusterError;
use serde::Serialize;
use serde_json::json;

use crate::app::AppError;
use crate::domain::{BookingId, CalendarId, Clash, LessonId};

/// How the pages render an error; the middleware that answers before any handler (an
/// over-size body, a cross-site form) uses it for every path that is not JSON.
pub trait ErrorPages: Send + Sync + 'static {
    fn render(e: AppError) -> Response;
}

/// A clash as JSON: `kind` plus what identifies it.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClashBody<'a> {
    Booking {
        booking_id: BookingId,
        start: Timestamp,
        end: Timestamp,
        title: &'a str,
    },
    Lesson {
        lesson_id: LessonId,
        start: Timestamp,
        end: Timestamp,
        subject: &'a str,
        class_name: &'a str,
    },
    Closure {
        closure_id: CalendarId,
        name: &'a str,
        date: Date,
    },
}

impl<'a> From<&'a Clash> for ClashBody<'a> {
    fn from(c: &'a Clash) -> Self {
        match c {
            Clash::Booking {
                id,
                start,
                end,
                title,
            } => ClashBody::Booking {
                booking_id: *id,
                start: *start,
                end: *end,
                title,
            },
            Clash::Lesson {
                id,
                start,
                end,
                subject,
                class_name,
            } => ClashBody::Lesson {
                lesson_id: *id,
                start: *start,
                end: *end,
                subject,
                class_name,
            },
            Clash::Closure { id, name, date } => ClashBody::Closure {
                closure_id: *id,
                name,
                date: *date,
            },
        }
    }
}

/// One occurrence of a series and what it clashes with, if anything.
#[derive(Serialize)]
pub struct OccurrenceBody<'a> {
    pub date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
    pub conflicts_with: Option<ClashBody<'a>>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. }
            | AppError::IdempotencyKeyReused
            | AppError::Rows(_)
            | AppError::QuotaExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } | AppError::Csrf | AppError::CrossSite { .. } => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_)
            | AppError::AlreadyExists { .. }
            | AppError::AlreadyCancelled { .. }
            | AppError::NotPending { .. }
            | AppError::Rule { .. }
            | AppError::SeriesConflicts(_) => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::NotConfigured(_) => StatusCode::CONFLICT,
            AppError::Backup(_) => StatusCode::BAD_GATEWAY,
            AppError::Cluster(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Cluster(ClusterError::Membership { .. }) => StatusCode::CONFLICT,
            AppError::Cluster(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } => "bad_request",
            AppError::Invalid { .. } => "invalid",
            AppError::Unauthorized => "unauthorized",
            AppError::BadCredentials => "bad_credentials",
            AppError::Csrf => "csrf",
            AppError::CrossSite { .. } => "cross_site",
            AppError::Forbidden { .. } => "forbidden",
            AppError::NotFound { .. } => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::AlreadyExists { .. } => "already_exists",
            AppError::AlreadyCancelled { .. } => "already_cancelled",
            AppError::NotPending { .. } => "not_pending",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::Rule { .. } => "rule",
            AppError::Rows(_) => "invalid_rows",
            AppError::SeriesConflicts(_) => "series_conflicts",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::QuotaExceeded { .. } => "quota_exceeded",
            AppError::RequestTimeout { .. } => "request_timeout",
            AppError::NotConfigured(_) => "not_configured",
            AppError::Backup(_) => "backup_failed",
            AppError::Cluster(ClusterError::NoLeader) => "no_leader",
            AppError::Cluster(ClusterError::Timeout) => "timeout",
            AppError::Cluster(ClusterError::Stopped { .. }) => "unavailable",
            AppError::Cluster(ClusterError::Membership { .. }) => "membership_refused",
            AppError::Cluster(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            AppError::Invalid { field, .. } => body["field"] = json!(field),
            AppError::Conflict(c) => body["conflicts_with"] = json!(ClashBody::from(c)),
            AppError::Rule { rule, .. } => body["rule"] = json!(rule),
            AppError::RateLimited {
                retry_after_secs, ..
            } => body["retry_after_seconds"] = json!(retry_after_secs),
            AppError::Rows(rows) => body["errors"] = json!(rows),
            AppError::PayloadTooLarge { limit_bytes } => body["limit_bytes"] = json!(limit_bytes),
            AppError::QuotaExceeded { kind, limit, .. } => {
                body["quota"] = json!(kind);
                body["limit"] = json!(limit);
            }
            AppError::SeriesConflicts(list) => {
                let conflicts: Vec<OccurrenceBody> = (list.iter())
                    .map(|(o, c)| OccurrenceBody {
                        date: o.date,
                        start: o.start,
                        end: o.end,
                        conflicts_with: Some(ClashBody::from(c)),
                    })
                    .collect();
                body["conflicts"] = json!(conflicts);
            }
            _ => {}
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let AppError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        resp
    }
}
