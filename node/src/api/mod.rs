//! The HTTPS JSON API (`/api/v1`) and health endpoints. Only these modules know JSON DTOs; they
//! turn requests into domain commands and domain state into responses.

mod analytics;
pub(crate) mod bookings;
mod cluster;
mod feeds;
pub mod guard;
pub mod observe;
pub(crate) mod people;
pub(crate) mod school;
mod venue;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use jiff::civil::{Date, Time};
use jiff::Timestamp;
use roomraft_cluster::{Cluster, ClusterError, Consistency};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::{
    Actor, ApiToken, AuditEntry, Booking, BookingDetails, BookingId, BookingStatus, Bookings,
    Calendar, CancelScope, Clash, ClosureKind, Command, Credential, Enquiry, Feed, FeedTarget,
    Lesson, LessonImport, LessonSpec, LogCommand, Occupation, Occurrence, Op, Outcome, Period,
    PeriodKind, Rejection, Role, Room, RoomFilter, RoomId, RoomSpec, RowError, Rules, Series,
    SeriesMode, Session, SignInPolicy, SiteSpec, Tenant, TenantId, User, WeeklyRule,
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rr_session";
/// The header carrying the CSRF token on cookie-authenticated changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether a session-authenticated request must prove its CSRF token, and what it sent.
pub enum CsrfProof<'a> {
    NotNeeded,
    Sent(Option<&'a str>),
}

/// Sign-in session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

/// What every handler shares.
pub struct AppState {
    pub cluster: Cluster<Bookings>,
    pub operator_token_sha256: Option<String>,
    /// Hex SHA-256 of the token Prometheus scrapes `/metrics` with (the operator token works too).
    pub metrics_token_sha256: Option<String>,
    pub sessions: SessionPolicy,
    pub metrics: Arc<roomraft_ops::Metrics>,
    pub limits: Arc<roomraft_ops::Limiter>,
    /// The backup destination and keys, when `[backup]` is configured.
    pub backups: Option<Arc<crate::backup::Backups>>,
    /// Page-view capture for usage analytics.
    pub analytics: Arc<crate::analytics::Analytics>,
    /// How large and how slow a request body may be.
    pub body: guard::BodyLimits,
    /// How many wrong passwords an account absorbs (`[limits]`), sent with each failure.
    pub sign_in_policy: SignInPolicy,
    /// Shortest new password accepted.
    pub password_min_length: usize,
}

type St = State<Arc<AppState>>;

/// An API error: a real HTTP status and a JSON body with a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("sign in, or send a bearer token")]
    Unauthorized,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("missing or wrong X-CSRF-Token header for a signed-in change")]
    Csrf,
    #[error("a change sent from another site is refused ({reason}); use this site's own pages")]
    CrossSite { reason: String },
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    #[error("the slot clashes with {}", clash_text(.0))]
    Conflict(Clash),
    #[error("{what} {key} already exists")]
    AlreadyExists { what: String, key: String },
    #[error("booking {booking} is already cancelled")]
    AlreadyCancelled { booking: BookingId },
    #[error("booking {booking} is not waiting for approval")]
    NotPending { booking: BookingId },
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("{message}")]
    Rule { rule: String, message: String },
    #[error("{} rows have errors; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error("{} occurrences clash; nothing was booked", .0.len())]
    SeriesConflicts(Vec<(Occurrence, Clash)>),
    #[error("too many requests ({scope}); retry after {retry_after_secs} s")]
    RateLimited {
        scope: &'static str,
        retry_after_secs: u64,
    },
    #[error("this school already stores {stored} {kind}, and may store at most {limit}; remove some, or ask the operator to raise the quota")]
    QuotaExceeded {
        kind: String,
        limit: u64,
        stored: u64,
    },
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the request body did not arrive within {seconds} s")]
    RequestTimeout { seconds: u64 },
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    Backup(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

pub(crate) fn clash_text(c: &Clash) -> String {
    match c {
        Clash::Booking {
            id,
            start,
            end,
            title,
        } => format!("booking {id} \"{title}\" ({start} to {end})"),
        Clash::Lesson {
            subject,
            class_name,
            start,
            end,
            ..
        } => format!("the lesson {subject} {class_name} ({start} to {end})"),
        Clash::Closure { name, date, .. } => format!("the closure \"{name}\" on {date}"),
    }
}

/// A clash as JSON: `kind` plus what identifies it.
pub fn clash_json(c: &Clash) -> Value {
    match c {
        Clash::Booking {
            id,
            start,
            end,
            title,
        } => {
            json!({ "kind": "booking", "booking_id": id, "start": start, "end": end, "title": title })
        }
        Clash::Lesson {
            id,
            start,
            end,
            subject,
            class_name,
        } => json!({ "kind": "lesson", "lesson_id": id, "start": start, "end": end,
                     "subject": subject, "class_name": class_name }),
        Clash::Closure { id, name, date } => {
            json!({ "kind": "closure", "closure_id": id, "name": name, "date": date })
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. }
            | ApiError::IdempotencyKeyReused
            | ApiError::Rows(_)
            | ApiError::QuotaExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::Csrf | ApiError::CrossSite { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_)
            | ApiError::AlreadyExists { .. }
            | ApiError::AlreadyCancelled { .. }
            | ApiError::NotPending { .. }
            | ApiError::Rule { .. }
            | ApiError::SeriesConflicts(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotConfigured(_) => StatusCode::CONFLICT,
            ApiError::Backup(_) => StatusCode::BAD_GATEWAY,
            ApiError::Cluster(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Cluster(ClusterError::Membership { .. }) => StatusCode::CONFLICT,
            ApiError::Cluster(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Csrf => "csrf",
            ApiError::CrossSite { .. } => "cross_site",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::AlreadyExists { .. } => "already_exists",
            ApiError::AlreadyCancelled { .. } => "already_cancelled",
            ApiError::NotPending { .. } => "not_pending",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::Rule { .. } => "rule",
            ApiError::Rows(_) => "invalid_rows",
            ApiError::SeriesConflicts(_) => "series_conflicts",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::Backup(_) => "backup_failed",
            ApiError::Cluster(ClusterError::NoLeader) => "no_leader",
            ApiError::Cluster(ClusterError::Timeout) => "timeout",
            ApiError::Cluster(ClusterError::Stopped { .. }) => "unavailable",
            ApiError::Cluster(ClusterError::Membership { .. }) => "membership_refused",
            ApiError::Cluster(_) => "internal",
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: impl ToString) -> Self {
        ApiError::NotFound {
            what: what.into(),
            id: id.to_string(),
        }
    }

    pub fn forbidden(reason: &str) -> Self {
        ApiError::Forbidden {
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            ApiError::Invalid { field, .. } => body["field"] = json!(field),
            ApiError::Conflict(c) => body["conflicts_with"] = clash_json(c),
            ApiError::Rule { rule, .. } => body["rule"] = json!(rule),
            ApiError::RateLimited {
                retry_after_secs, ..
            } => body["retry_after_seconds"] = json!(retry_after_secs),
            ApiError::Rows(rows) => body["errors"] = json!(rows),
            ApiError::PayloadTooLarge { limit_bytes } => body["limit_bytes"] = json!(limit_bytes),
            ApiError::QuotaExceeded { kind, limit, .. } => {
                body["quota"] = json!(kind);
                body["limit"] = json!(limit);
            }
            ApiError::SeriesConflicts(list) => {
                body["conflicts"] = list
                    .iter()
                    .map(|(o, c)| json!({ "date": o.date, "start": o.start, "end": o.end, "conflicts_with": clash_json(c) }))
                    .collect()
            }
            _ => {}
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        resp
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Conflict(c) => ApiError::Conflict(c),
            Rejection::NotFound { what, id } => ApiError::NotFound { what, id },
            Rejection::Invalid { field, message } => ApiError::Invalid { field, message },
            Rejection::AlreadyExists { what, key } => ApiError::AlreadyExists { what, key },
            Rejection::AlreadyCancelled { booking } => ApiError::AlreadyCancelled { booking },
            Rejection::Forbidden { reason } => ApiError::Forbidden { reason },
            Rejection::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            Rejection::Rule { rule, message } => ApiError::Rule { rule, message },
            Rejection::Rows(rows) => ApiError::Rows(rows),
            Rejection::SeriesConflicts(list) => ApiError::SeriesConflicts(list),
            Rejection::NotPending { booking } => ApiError::NotPending { booking },
            Rejection::QuotaExceeded {
                kind,
                limit,
                stored,
            } => ApiError::QuotaExceeded {
                kind,
                limit,
                stored,
            },
            Rejection::Unauthorized => ApiError::Unauthorized,
            Rejection::Locked { until } => ApiError::RateLimited {
                scope: "sign_in_account",
                retry_after_secs: retry_after(until),
            },
        }
    }
}

/// axum's `Query`, answering a malformed query string with this API's JSON error (naming the
/// parameter) instead of axum's plain-text 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|r| {
                let text = r.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                match detail.split_once(": ") {
                    Some((field, why)) if !field.contains(' ') => ApiError::invalid(field, why),
                    _ => ApiError::BadRequest {
                        message: format!("invalid query string: {detail}"),
                    },
                }
            })
    }
}

/// axum's `Path`, answering a path it cannot decode with this API's JSON error.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| ApiError::BadRequest {
                message: format!("invalid path: {}", r.body_text()),
            })
    }
}

/// Whole seconds from now until `until`, at least 1 (a `Retry-After` value).
pub(crate) fn retry_after(until: Timestamp) -> u64 {
    let ms = until.duration_since(Timestamp::now()).as_millis().max(1) as u64;
    ms.div_ceil(1000)
}

/// Parses a JSON body, naming the offending field where serde says which.
fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        match msg.split('`').nth(1) {
            Some(field) if msg.starts_with("missing field") || msg.starts_with("unknown field") => {
                ApiError::invalid(field, msg.split(" at line").next().unwrap_or(&msg))
            }
            _ => ApiError::BadRequest {
                message: format!("invalid JSON body: {msg}"),
            },
        }
    })
}

fn parse_time(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    value.parse().map_err(|_| {
        ApiError::invalid(
            field,
            "must be an RFC 3339 time with an offset, like 2026-03-02T09:00:00Z",
        )
    })
}

pub(crate) fn parse_date(field: &str, value: &str) -> Result<Date, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be a date like 2026-03-02"))
}

pub(crate) fn parse_clock(field: &str, value: &str) -> Result<Time, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be a local time like 09:05"))
}

fn opt<T>(
    field: &str,
    v: &Option<String>,
    parse: fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    v.as_deref().map(|x| parse(field, x)).transpose()
}

fn parse_id(what: &str, raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what, raw))
}

/// The authenticated caller, and how: a session carries its cookie's hash.
pub struct Auth {
    pub actor: Actor,
    pub session: Option<String>,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request's bearer token hashes to one of `hashes` (hex SHA-256, compared in
/// constant time): the check for the operator and metrics tokens, which need no cluster read.
pub(crate) fn bearer_is(headers: &HeaderMap, hashes: &[&Option<String>]) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| sha256_hex(t.trim()));
    presented.is_some_and(|p| {
        hashes
            .iter()
            .filter_map(|h| h.as_deref())
            .any(|want| constant_time_eq(want.as_bytes(), p.as_bytes()))
    })
}

/// The CSRF token of a session: derived from the session secret, so pages can embed it and
/// a forger without the cookie cannot compute it.
pub fn csrf_token(session_token: &str) -> String {
    sha256_hex(&format!("roomraft-csrf\0{session_token}"))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How often a credential's last use is recorded at most.
const TOUCH_EVERY: Duration = Duration::from_secs(300);

fn stale(last: Option<Timestamp>, now: Timestamp, every: Duration) -> bool {
    last.is_none_or(|l| now.duration_since(l).as_secs() as u64 >= every.as_secs())
}

impl AppState {
    /// Records a credential's use in the background; losing one such update is harmless.
    fn touch(self: &Arc<Self>, sha256: String) {
        let state = self.clone();
        tokio::spawn(async move {
            let actor = Actor {
                tenant: None,
                role: Role::Operator,
                name: "system".into(),
                user: None,
            };
            let cmd = LogCommand::current(Command {
                time: Timestamp::now(),
                actor,
                request_key: format!("touch/{:032x}", rand::random::<u128>()),
                op: Op::Touch { sha256 },
            });
            if let Err(e) = state.cluster.write(&cmd).await {
                tracing::debug!(error = %e, "recording a credential's last use failed");
            }
        });
    }

    async fn bearer(self: &Arc<Self>, token: &str, writes: bool) -> Result<Auth, ApiError> {
        let hash = sha256_hex(token.trim());
        if let Some(op) = &self.operator_token_sha256 {
            if constant_time_eq(op.as_bytes(), hash.as_bytes()) {
                return Ok(Auth {
                    actor: Actor {
                        tenant: None,
                        role: Role::Operator,
                        name: "operator".into(),
                        user: None,
                    },
                    session: None,
                });
            }
        }
        let lookup = |s: &Bookings| {
            let t = s.token(&hash)?;
            let live = s.tenants.get(&t.tenant).is_some_and(|x| !x.suspended);
            live.then(|| {
                let actor = Actor {
                    tenant: Some(t.tenant),
                    role: t.role,
                    name: format!("token:{}", t.name),
                    user: None,
                };
                (actor, t.last_used_at)
            })
        };
        // A token revoked through any node is refused by every node from the moment the
        // revocation is acknowledged. A read checks it with a linearizable read (a follower
        // that has not applied the revocation yet waits for it); a change checks it in this
        // node's own state, and apply checks it again at the command's place in the log
        // (`Credential`), so the write path pays no extra round to the leader.
        let found = if writes {
            match self.cluster.read_local(lookup) {
                Some(found) => Some(found),
                // A token created moments ago through another node may not be applied here yet.
                None => self.cluster.read(Consistency::Linearizable, lookup).await?,
            }
        } else {
            self.cluster.read(Consistency::Linearizable, lookup).await?
        };
        let (actor, last_used) = found.ok_or(ApiError::Unauthorized)?;
        if stale(last_used, Timestamp::now(), TOUCH_EVERY) {
            self.touch(hash);
        }
        Ok(Auth {
            actor,
            session: None,
        })
    }

    async fn session(
        self: &Arc<Self>,
        token: &str,
        proof: CsrfProof<'_>,
    ) -> Result<Auth, ApiError> {
        let hash = sha256_hex(token);
        let now = Timestamp::now();
        let lookup = |s: &Bookings| {
            s.live_session(&hash, now).map(|(sess, u)| {
                let actor = Actor {
                    tenant: Some(u.tenant),
                    role: u.role,
                    name: format!("user:{}", u.username),
                    user: Some(u.id),
                };
                (
                    actor,
                    sess.last_seen,
                    sess.idle_secs,
                    sess.csrf_sha256.clone(),
                )
            })
        };
        // Linearizable, so a sign-out or password change acknowledged through any node is
        // honoured by every node at once (a local read could still see the ended session).
        let found = self.cluster.read(Consistency::Linearizable, lookup).await?;
        let (actor, last_seen, idle_secs, csrf_sha) = found.ok_or(ApiError::Unauthorized)?;
        if let CsrfProof::Sent(sent) = proof {
            let sent = sent.ok_or(ApiError::Csrf)?;
            if !constant_time_eq(sha256_hex(sent).as_bytes(), csrf_sha.as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        let every = TOUCH_EVERY.min(Duration::from_secs(idle_secs as u64 / 10));
        if stale(Some(last_seen), now, every) {
            self.touch(hash.clone());
        }
        Ok(Auth {
            actor,
            session: Some(hash),
        })
    }

    /// Authenticates a request by bearer token or session cookie.
    pub async fn authenticate(
        self: &Arc<Self>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Auth, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if let Some(token) = bearer {
            return self.bearer(token, !reads).await;
        }
        let proof = if reads {
            CsrfProof::NotNeeded
        } else {
            CsrfProof::Sent(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
        };
        match cookie(headers, SESSION_COOKIE) {
            Some(token) => self.session(token, proof).await,
            None => Err(ApiError::Unauthorized),
        }
    }

    /// Authenticates a web page's request by its session cookie alone (pages never take
    /// bearer tokens); a form post proves its CSRF token in a form field. Also returns the
    /// cookie's secret, from which the page's own CSRF token is derived.
    pub(crate) async fn page_session(
        self: &Arc<Self>,
        headers: &HeaderMap,
        proof: CsrfProof<'_>,
    ) -> Result<(Auth, String), ApiError> {
        let token = cookie(headers, SESSION_COOKIE).ok_or(ApiError::Unauthorized)?;
        let auth = self.session(token, proof).await?;
        if let Some(tenant) = auth.actor.tenant {
            self.limits
                .check_tenant(tenant)
                .map_err(|r| observe::refused(self, r))?;
        }
        Ok((auth, token.to_string()))
    }

    /// The tenant as of a linearizable read.
    async fn tenant(&self, id: TenantId) -> Result<Tenant, ApiError> {
        self.cluster
            .read(Consistency::Linearizable, |s| s.tenants.get(&id).cloned())
            .await?
            .ok_or_else(|| ApiError::not_found("tenant", id))
    }
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let auth = state.authenticate(&parts.method, &parts.headers).await?;
        if let Some(tenant) = auth.actor.tenant {
            state
                .limits
                .check_tenant(tenant)
                .map_err(|r| observe::refused(state, r))?;
        }
        Ok(auth)
    }
}

impl Auth {
    pub(crate) fn tenant(&self) -> Result<TenantId, ApiError> {
        self.actor.tenant.ok_or(ApiError::Forbidden {
            reason: "an operator token has no tenant; use a tenant token".into(),
        })
    }

    fn require_operator(&self) -> Result<(), ApiError> {
        match self.actor.role {
            Role::Operator => Ok(()),
            _ => Err(ApiError::forbidden("operator token required")),
        }
    }

    pub(crate) fn require_admin(&self) -> Result<TenantId, ApiError> {
        let t = self.tenant()?;
        match self.actor.role {
            Role::Admin => Ok(t),
            _ => Err(ApiError::forbidden("only a tenant admin may do this")),
        }
    }
}

/// Builds the replicated command key: the client's Idempotency-Key, scoped to the principal
/// that sent it (so another user or token reusing a key gets its own request, never the
/// first one's answer), or a fresh key that still makes the node's own forwarding retries safe.
fn request_key(headers: &HeaderMap, actor: &Actor) -> Result<String, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(format!("req/{:032x}", rand::random::<u128>())),
        Some(v) => {
            let key = v.to_str().ok().filter(|k| {
                !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic())
            });
            let key = key.ok_or_else(|| ApiError::BadRequest {
                message: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
            })?;
            Ok(format!("idem/{}/{key}", principal(actor)))
        }
    }
}

/// Who sent a request, uniquely: the tenant and the signed-in user, or the tenant and the
/// token's name (names are unique among a tenant's live tokens), or the operator.
fn principal(actor: &Actor) -> String {
    let tenant = actor
        .tenant
        .map(|t| t.to_string())
        .unwrap_or_else(|| "operator".into());
    match actor.user {
        Some(u) => format!("{tenant}/user:{u}"),
        None => format!("{tenant}/{}", actor.name),
    }
}

/// The credential the request authenticated with, for apply to check again: the bearer token
/// or the session cookie, as `authenticate` chose it. None for the operator (whose token is in
/// no state) and for commands a node makes on its own behalf.
fn credential(headers: &HeaderMap, actor: &Actor) -> Option<Credential> {
    if actor.role == Role::Operator || actor.tenant.is_none() {
        return None;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(token) => Some(Credential::Token(sha256_hex(token.trim()))),
        None => cookie(headers, SESSION_COOKIE).map(|c| Credential::Session(sha256_hex(c))),
    }
}

/// Replicates `op` on behalf of `actor`; a rejection becomes its HTTP error.
pub(crate) async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    actor: Actor,
    op: Op,
) -> Result<Outcome, ApiError> {
    let request_key = request_key(headers, &actor)?;
    let credential = credential(headers, &actor);
    let cmd = LogCommand::signed(
        Command {
            time: Timestamp::now(),
            actor,
            request_key,
            op,
        },
        credential,
    );
    let (_, outcome) = state.cluster.write(&cmd).await?;
    match outcome {
        Outcome::Rejected(r) => Err(r.into()),
        o => Ok(o),
    }
}

pub(crate) fn unexpected(o: Outcome) -> ApiError {
    ApiError::Cluster(ClusterError::Codec {
        what: "outcome",
        reason: format!("unexpected {o:?}"),
    })
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[derive(Deserialize)]
struct ReadParams {
    consistency: Option<String>,
}

impl ReadParams {
    fn consistency(&self) -> Result<Consistency, ApiError> {
        consistency(self.consistency.as_deref())
    }
}

fn consistency(v: Option<&str>) -> Result<Consistency, ApiError> {
    match v {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("stale") => Ok(Consistency::Stale),
        Some(_) => Err(ApiError::invalid(
            "consistency",
            "use linearizable or stale",
        )),
    }
}

/// An unknown path: a JSON error under the API, the not-found page elsewhere.
async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path().starts_with("/feeds/") {
        return ApiError::NotFound {
            what: "route".into(),
            id: "requested".into(),
        }
        .into_response();
    }
    crate::web::not_found()
}

/// Every client route.
pub fn router(state: Arc<AppState>) -> Router {
    use bookings as b;
    use cluster as c;
    use people as p;
    use school as s;
    Router::new()
        .route("/health/live", get(c::live))
        .route("/health/ready", get(c::ready))
        .route("/metrics", get(observe::metrics))
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
        .merge(crate::web::routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::same_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .with_state(state)
}
