//! The HTTPS JSON API (`/api/v1`) and health endpoints. Only this module knows JSON DTOs; it turns
//! them into domain commands by hand.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use roomraft_cluster::{Cluster, ClusterError, Consistency, NodeInfo};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::*;

/// What every handler shares.
pub struct AppState {
    pub cluster: Cluster<Bookings>,
    pub operator_token_sha256: Option<String>,
}

type St = State<Arc<AppState>>;

/// An API error: a real HTTP status and a JSON body with a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    #[error("the slot is taken by booking {booking} ({start} to {end})")]
    Conflict {
        booking: BookingId,
        start: Timestamp,
        end: Timestamp,
    },
    #[error("{what} {key} already exists")]
    AlreadyExists { what: String, key: String },
    #[error("booking {booking} is already cancelled")]
    AlreadyCancelled { booking: BookingId },
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. }
            | ApiError::AlreadyExists { .. }
            | ApiError::AlreadyCancelled { .. } => StatusCode::CONFLICT,
            ApiError::Cluster(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Cluster(ClusterError::Membership { .. }) => StatusCode::CONFLICT,
            ApiError::Cluster(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::AlreadyExists { .. } => "already_exists",
            ApiError::AlreadyCancelled { .. } => "already_cancelled",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::Cluster(ClusterError::NoLeader) => "no_leader",
            ApiError::Cluster(ClusterError::Timeout) => "timeout",
            ApiError::Cluster(ClusterError::Stopped { .. }) => "unavailable",
            ApiError::Cluster(ClusterError::Membership { .. }) => "membership_refused",
            ApiError::Cluster(_) => "internal",
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
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
            ApiError::Conflict {
                booking,
                start,
                end,
            } => {
                body["conflicts_with"] =
                    json!({ "booking_id": booking, "start": start, "end": end })
            }
            _ => {}
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Conflict {
                booking,
                start,
                end,
            } => ApiError::Conflict {
                booking,
                start,
                end,
            },
            Rejection::NotFound { what, id } => ApiError::NotFound { what, id },
            Rejection::Invalid { field, message } => ApiError::Invalid { field, message },
            Rejection::AlreadyExists { what, key } => ApiError::AlreadyExists { what, key },
            Rejection::AlreadyCancelled { booking } => ApiError::AlreadyCancelled { booking },
            Rejection::Forbidden { reason } => ApiError::Forbidden { reason },
            Rejection::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
        }
    }
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

/// The authenticated caller.
pub struct Auth(pub Actor);

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(token.trim());
        if let Some(op) = &state.operator_token_sha256 {
            if constant_time_eq(op.as_bytes(), hash.as_bytes()) {
                return Ok(Auth(Actor {
                    tenant: None,
                    role: Role::Operator,
                    name: "operator".into(),
                }));
            }
        }
        let lookup = |s: &Bookings| {
            s.token(&hash).map(|t| Actor {
                tenant: Some(t.tenant),
                role: t.role,
                name: format!("token:{}", t.name),
            })
        };
        if let Some(actor) = state.cluster.read_local(lookup) {
            return Ok(Auth(actor));
        }
        // A token created moments ago through another node may not be applied here yet.
        match state
            .cluster
            .read(Consistency::Linearizable, lookup)
            .await?
        {
            Some(actor) => Ok(Auth(actor)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

impl Auth {
    fn tenant(&self) -> Result<TenantId, ApiError> {
        self.0.tenant.ok_or(ApiError::Forbidden {
            reason: "an operator token has no tenant; use a tenant token".into(),
        })
    }

    fn require_operator(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Operator => Ok(()),
            _ => Err(ApiError::Forbidden {
                reason: "operator token required".into(),
            }),
        }
    }
}

/// Builds the replicated command key: the client's Idempotency-Key (scoped by tenant), or a
/// fresh key that still makes the node's own forwarding retries safe.
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
            let scope = actor
                .tenant
                .map(|t| t.to_string())
                .unwrap_or_else(|| "operator".into());
            Ok(format!("idem/{scope}/{key}"))
        }
    }
}

async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    actor: Actor,
    op: Op,
) -> Result<Outcome, ApiError> {
    let request_key = request_key(headers, &actor)?;
    let cmd = LogCommand::V1(Command {
        time: Timestamp::now(),
        actor,
        request_key,
        op,
    });
    let (_, outcome) = state.cluster.write(&cmd).await?;
    match outcome {
        Outcome::Rejected(r) => Err(r.into()),
        o => Ok(o),
    }
}

#[derive(Deserialize)]
struct ReadParams {
    consistency: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl ReadParams {
    fn consistency(&self) -> Result<Consistency, ApiError> {
        match self.consistency.as_deref() {
            None | Some("linearizable") => Ok(Consistency::Linearizable),
            Some("stale") => Ok(Consistency::Stale),
            Some(_) => Err(ApiError::invalid(
                "consistency",
                "use linearizable or stale",
            )),
        }
    }
}

#[derive(Serialize)]
struct RoomDto {
    id: RoomId,
    name: String,
    category: String,
    capacity: u32,
    created_at: Timestamp,
}

impl From<&Room> for RoomDto {
    fn from(r: &Room) -> Self {
        RoomDto {
            id: r.id,
            name: r.name.clone(),
            category: r.category.clone(),
            capacity: r.capacity,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize)]
struct BookingDto {
    id: BookingId,
    room_id: RoomId,
    start: Timestamp,
    end: Timestamp,
    title: String,
    notes: String,
    status: &'static str,
    created_by: String,
    created_at: Timestamp,
    cancelled_at: Option<Timestamp>,
}

impl From<&Booking> for BookingDto {
    fn from(b: &Booking) -> Self {
        BookingDto {
            id: b.id,
            room_id: b.room,
            start: b.start,
            end: b.end,
            title: b.title.clone(),
            notes: b.notes.clone(),
            status: match b.status {
                BookingStatus::Active => "active",
                BookingStatus::Cancelled => "cancelled",
            },
            created_by: b.created_by.clone(),
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
        }
    }
}

fn parse_id(what: &str, raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound {
        what: what.into(),
        id: raw.into(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    slug: String,
    name: String,
    time_zone: Option<String>,
}

async fn create_tenant(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_operator()?;
    let req: NewTenant = parse_json(&body)?;
    let admin_token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let op = Op::CreateTenant {
        slug: req.slug,
        name: req.name,
        time_zone: req.time_zone.unwrap_or_else(|| "Europe/London".into()),
        admin_token_sha256: sha256_hex(&admin_token),
    };
    match submit(&s, &headers, auth.0, op).await? {
        Outcome::TenantCreated(t) => Ok((
            StatusCode::CREATED,
            Json(json!({ "id": t.id, "slug": t.slug, "name": t.name, "time_zone": t.time_zone, "admin_token": admin_token })),
        )
            .into_response()),
        other => Err(unexpected(other)),
    }
}

fn unexpected(o: Outcome) -> ApiError {
    ApiError::Cluster(ClusterError::Codec {
        what: "outcome",
        reason: format!("unexpected {o:?}"),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    name: String,
    category: String,
    capacity: u32,
}

async fn create_room(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = auth.tenant()?;
    let req: NewRoom = parse_json(&body)?;
    let op = Op::CreateRoom {
        tenant,
        name: req.name,
        category: req.category,
        capacity: req.capacity,
    };
    match submit(&s, &headers, auth.0, op).await? {
        Outcome::RoomCreated(r) => {
            Ok((StatusCode::CREATED, Json(RoomDto::from(&r))).into_response())
        }
        other => Err(unexpected(other)),
    }
}

async fn list_rooms(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<RoomDto>>, ApiError> {
    let tenant = auth.tenant()?;
    let rooms = s
        .cluster
        .read(q.consistency()?, |st| {
            st.rooms
                .values()
                .filter(|r| r.tenant == tenant)
                .map(RoomDto::from)
                .collect()
        })
        .await?;
    Ok(Json(rooms))
}

async fn get_room(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<RoomDto>, ApiError> {
    let tenant = auth.tenant()?;
    let id = parse_id("room", &id)?;
    let room = s
        .cluster
        .read(q.consistency()?, |st| {
            st.rooms
                .get(&id)
                .filter(|r| r.tenant == tenant)
                .map(RoomDto::from)
        })
        .await?;
    room.map(Json).ok_or(ApiError::NotFound {
        what: "room".into(),
        id: id.to_string(),
    })
}

async fn room_bookings(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = auth.tenant()?;
    let room = parse_id("room", &id)?;
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(Timestamp::MIN);
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(Timestamp::MAX);
    if to <= from {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let found = s
        .cluster
        .read(q.consistency()?, |st| {
            st.rooms.get(&room).filter(|r| r.tenant == tenant)?;
            Some(
                st.bookings_in(room, from, to)
                    .into_iter()
                    .map(BookingDto::from)
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    let bookings = found.ok_or(ApiError::NotFound {
        what: "room".into(),
        id: room.to_string(),
    })?;
    Ok(Json(json!({ "room_id": room, "bookings": bookings })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBooking {
    room_id: u64,
    start: String,
    end: String,
    title: String,
    #[serde(default)]
    notes: String,
}

async fn create_booking(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = auth.tenant()?;
    let req: NewBooking = parse_json(&body)?;
    let start = parse_time("start", &req.start)?;
    let end = parse_time("end", &req.end)?;
    if end <= start {
        return Err(ApiError::invalid("end", "must be after start"));
    }
    if req.title.trim().is_empty() {
        return Err(ApiError::invalid("title", "must not be empty"));
    }
    let op = Op::CreateBooking {
        tenant,
        room: req.room_id,
        start,
        end,
        title: req.title,
        notes: req.notes,
    };
    match submit(&s, &headers, auth.0, op).await? {
        Outcome::BookingCreated(b) => {
            Ok((StatusCode::CREATED, Json(BookingDto::from(&b))).into_response())
        }
        other => Err(unexpected(other)),
    }
}

async fn get_booking(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadParams>,
) -> Result<Json<BookingDto>, ApiError> {
    let tenant = auth.tenant()?;
    let id = parse_id("booking", &id)?;
    let b = s
        .cluster
        .read(q.consistency()?, |st| {
            st.bookings
                .get(&id)
                .filter(|b| b.tenant == tenant)
                .map(BookingDto::from)
        })
        .await?;
    b.map(Json).ok_or(ApiError::NotFound {
        what: "booking".into(),
        id: id.to_string(),
    })
}

async fn cancel_booking(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<BookingDto>, ApiError> {
    let tenant = auth.tenant()?;
    let booking = parse_id("booking", &id)?;
    match submit(&s, &headers, auth.0, Op::CancelBooking { tenant, booking }).await? {
        Outcome::BookingCancelled(b) => Ok(Json(BookingDto::from(&b))),
        other => Err(unexpected(other)),
    }
}

async fn cluster_status(State(s): St) -> Json<roomraft_cluster::ClusterStatus> {
    Json(s.cluster.status())
}

/// A digest of this node's applied state (operators; the chaos suite compares replicas with it).
async fn cluster_state(
    State(s): St,
    auth: Auth,
) -> Result<Json<roomraft_cluster::StateDigest>, ApiError> {
    auth.require_operator()?;
    Ok(Json(s.cluster.state_digest()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLearner {
    id: u64,
    peer_addr: String,
    client_addr: String,
}

async fn add_learner(
    State(s): St,
    auth: Auth,
    body: Bytes,
) -> Result<Json<roomraft_cluster::ClusterStatus>, ApiError> {
    auth.require_operator()?;
    let req: NewLearner = parse_json(&body)?;
    for (field, v) in [
        ("peer_addr", &req.peer_addr),
        ("client_addr", &req.client_addr),
    ] {
        if v.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(ApiError::invalid(field, "must be host:port"));
        }
    }
    s.cluster
        .add_learner(
            req.id,
            NodeInfo {
                peer_addr: req.peer_addr,
                client_addr: req.client_addr,
            },
        )
        .await?;
    Ok(Json(s.cluster.status()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVoters {
    ids: Vec<u64>,
}

async fn add_voters(
    State(s): St,
    auth: Auth,
    body: Bytes,
) -> Result<Json<roomraft_cluster::ClusterStatus>, ApiError> {
    auth.require_operator()?;
    let req: NewVoters = parse_json(&body)?;
    if req.ids.is_empty() {
        return Err(ApiError::invalid(
            "ids",
            "name at least one learner to promote",
        ));
    }
    s.cluster.add_voters(req.ids.into_iter().collect()).await?;
    Ok(Json(s.cluster.status()))
}

async fn remove_member(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<roomraft_cluster::ClusterStatus>, ApiError> {
    auth.require_operator()?;
    let id = parse_id("member", &id)?;
    if !s.cluster.status().members.iter().any(|m| m.id == id) {
        return Err(ApiError::NotFound {
            what: "member".into(),
            id: id.to_string(),
        });
    }
    s.cluster.remove_nodes([id].into_iter().collect()).await?;
    Ok(Json(s.cluster.status()))
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(s): St) -> Response {
    if s.cluster.is_ready(std::time::Duration::from_secs(1)).await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known or not caught up",
        )
            .into_response()
    }
}

async fn fallback() -> ApiError {
    ApiError::NotFound {
        what: "route".into(),
        id: "requested".into(),
    }
}

/// Every client route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/api/v1/cluster", get(cluster_status))
        .route("/api/v1/cluster/state", get(cluster_state))
        .route("/api/v1/cluster/learners", post(add_learner))
        .route("/api/v1/cluster/voters", post(add_voters))
        .route("/api/v1/cluster/members/{id}", delete(remove_member))
        .route("/api/v1/tenants", post(create_tenant))
        .route("/api/v1/rooms", post(create_room).get(list_rooms))
        .route("/api/v1/rooms/{id}", get(get_room))
        .route("/api/v1/rooms/{id}/bookings", get(room_bookings))
        .route("/api/v1/bookings", post(create_booking))
        .route(
            "/api/v1/bookings/{id}",
            get(get_booking).delete(cancel_booking),
        )
        .fallback(fallback)
        .with_state(state)
}
