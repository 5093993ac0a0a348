//! What the JSON API and the pages share of HTTP: the extractors that answer in this
//! service's error format, authentication from headers, the caller of a change, the session
//! cookie, error statuses, and the middleware every request passes (`guard`, `observe`).
//! It knows neither adapter; `routes` assembles them.

mod error;
pub mod guard;
pub mod observe;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use serde::de::DeserializeOwned;

use crate::app::{refused, sha256_hex, AppError, AppState, Auth, Caller, CsrfProof};

pub use error::{ClashBody, ErrorPages, OccurrenceBody};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rr_session";
/// The header carrying the CSRF token on cookie-authenticated changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

pub type St = State<Arc<AppState>>;

/// axum's `Query`, answering a malformed query string with this API's JSON error (naming the
/// parameter) instead of axum's plain-text 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|r| {
                let text = r.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                match detail.split_once(": ") {
                    Some((field, why)) if !field.contains(' ') => AppError::invalid(field, why),
                    _ => AppError::BadRequest {
                        message: format!("invalid query string: {detail}"),
                    },
                }
            })
    }
}

/// axum's `Path`, answering a path it cannot decode with this API's JSON error.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| AppError::BadRequest {
                message: format!("invalid path: {}", r.body_text()),
            })
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request's bearer token hashes to one of `hashes` (hex SHA-256, compared in
/// constant time): the check for the operator and metrics tokens, which need no cluster read.
pub fn bearer_is(headers: &HeaderMap, hashes: &[&Option<String>]) -> bool {
    let presented = bearer(headers).map(|t| sha256_hex(t.trim()));
    presented.is_some_and(|p| {
        hashes
            .iter()
            .filter_map(|h| h.as_deref())
            .any(|want| crate::app::constant_time_eq(want.as_bytes(), p.as_bytes()))
    })
}

/// Authenticates a request by bearer token or session cookie.
pub async fn authenticate(
    s: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Auth, AppError> {
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(token) = bearer(headers) {
        return s.bearer(token, !reads).await;
    }
    let proof = if reads {
        CsrfProof::NotNeeded
    } else {
        CsrfProof::Sent(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
    };
    match cookie(headers, SESSION_COOKIE) {
        Some(token) => s.session(token, proof).await,
        None => Err(AppError::Unauthorized),
    }
}

/// Authenticates a web page's request by its session cookie alone (pages never take
/// bearer tokens); a form post proves its CSRF token in a form field. Also returns the
/// cookie's secret, from which the page's own CSRF token is derived.
pub async fn page_session(
    s: &Arc<AppState>,
    headers: &HeaderMap,
    proof: CsrfProof<'_>,
) -> Result<(Auth, String), AppError> {
    let token = cookie(headers, SESSION_COOKIE).ok_or(AppError::Unauthorized)?;
    let auth = s.session(token, proof).await?;
    if let Some(tenant) = auth.actor.tenant {
        s.limits.check_tenant(tenant).map_err(|r| refused(s, r))?;
    }
    Ok((auth, token.to_string()))
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, AppError> {
        let auth = authenticate(state, &parts.method, &parts.headers).await?;
        if let Some(tenant) = auth.actor.tenant {
            state
                .limits
                .check_tenant(tenant)
                .map_err(|r| refused(state, r))?;
        }
        Ok(auth)
    }
}

/// The bearer token of the `Authorization` header, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The caller of an API change: who authenticated, and the request's `Idempotency-Key`.
pub fn caller(headers: &HeaderMap, auth: &Auth) -> Result<Caller, AppError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| AppError::BadRequest {
            message: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
        })?),
    };
    Caller::of(auth).idempotent(key)
}

/// The `Set-Cookie` value of a session (an empty value with age 0 ends it).
pub fn session_cookie(value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .expect("cookie value is ASCII")
}
