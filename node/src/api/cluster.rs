//! Cluster membership, state digest and health endpoints.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use roomraft_cluster::NodeInfo;
use serde::{Deserialize, Serialize};

use super::{caller, parse_id, parse_json, AppError, Auth, Path, St};
use crate::domain::system::SetQuotas;
use crate::http::bearer_is;

/// `GET /api/v1/cluster`: the whole status for an operator; anyone else (a load balancer, a
/// monitor, a tenant) learns only this node's id, role and the leader's id — no addresses, no
/// log indexes.
pub(super) async fn cluster_status(State(s): St, headers: HeaderMap) -> Response {
    let status = s.cluster.status();
    if bearer_is(&headers, &[&s.operator_token_sha256]) {
        return Json(status).into_response();
    }
    Json(PublicStatus {
        node_id: status.node_id,
        state: status.state,
        leader_id: status.leader_id,
    })
    .into_response()
}

/// What anyone may learn of the cluster: this node, its role and the leader.
#[derive(Serialize)]
struct PublicStatus<S: Serialize> {
    node_id: u64,
    state: S,
    leader_id: Option<u64>,
}

/// The backup configuration, the last scheduled backup and what the destination holds.
#[derive(Serialize)]
pub(super) struct BackupsBody<L: Serialize, B: Serialize> {
    destination: String,
    interval_seconds: u64,
    retention_days: u64,
    last_scheduled: Option<L>,
    backups: B,
}

/// A digest of this node's applied state (operators; the chaos suite compares replicas with it).
pub(super) async fn cluster_state(
    State(s): St,
    auth: Auth,
) -> Result<Json<roomraft_cluster::StateDigest>, AppError> {
    auth.require_operator()?;
    Ok(Json(s.cluster.state_digest()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewLearner {
    id: u64,
    peer_addr: String,
    client_addr: String,
}

pub(super) async fn add_learner(
    State(s): St,
    auth: Auth,
    body: Bytes,
) -> Result<Json<roomraft_cluster::ClusterStatus>, AppError> {
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
            return Err(AppError::invalid(field, "must be host:port"));
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
pub(super) struct NewVoters {
    ids: Vec<u64>,
}

pub(super) async fn add_voters(
    State(s): St,
    auth: Auth,
    body: Bytes,
) -> Result<Json<roomraft_cluster::ClusterStatus>, AppError> {
    auth.require_operator()?;
    let req: NewVoters = parse_json(&body)?;
    if req.ids.is_empty() {
        return Err(AppError::invalid(
            "ids",
            "name at least one learner to promote",
        ));
    }
    s.cluster.add_voters(req.ids.into_iter().collect()).await?;
    Ok(Json(s.cluster.status()))
}

pub(super) async fn remove_member(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<roomraft_cluster::ClusterStatus>, AppError> {
    auth.require_operator()?;
    let id = parse_id("member", &id)?;
    if !s.cluster.status().members.iter().any(|m| m.id == id) {
        return Err(AppError::NotFound {
            what: "member".into(),
            id: id.to_string(),
        });
    }
    s.cluster.remove_nodes([id].into_iter().collect()).await?;
    Ok(Json(s.cluster.status()))
}

fn backups(s: &super::AppState) -> Result<&crate::backup::Backups, AppError> {
    s.backups.as_deref().ok_or_else(|| {
        AppError::NotConfigured(
            "backups are not configured on this node: add a [backup] section to its node.toml (docs/operations.md)".into(),
        )
    })
}

/// Every backup at the destination, oldest first.
pub(super) async fn list_backups(State(s): St, auth: Auth) -> Result<Response, AppError> {
    auth.require_operator()?;
    let b = backups(&s)?;
    let listed = roomraft_backup::list(&b.dest, &b.keys)
        .await
        .map_err(|e| AppError::Backup(e.to_string()))?;
    let last = s.cluster.read_local(|st| st.last_backup().cloned());
    let body = BackupsBody {
        destination: b.dest.to_string(),
        interval_seconds: b.config.interval_seconds,
        retention_days: b.config.retention_days,
        last_scheduled: last,
        backups: listed,
    };
    Ok(Json(body).into_response())
}

/// Takes a backup now on this node: every write acknowledged before the request is in it.
pub(super) async fn create_backup(State(s): St, auth: Auth) -> Result<Response, AppError> {
    auth.require_operator()?;
    let b = backups(&s)?;
    let trigger = roomraft_backup::Trigger::Manual;
    let id = roomraft_backup::backup_id(jiff::Timestamp::now(), trigger);
    let manifest = b
        .take(&s.cluster, &s.metrics, &id, trigger)
        .await
        .map_err(|e| AppError::Backup(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(manifest)).into_response())
}

pub(super) async fn live() -> &'static str {
    "ok"
}

pub(super) async fn ready(State(s): St) -> Response {
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

/// `GET /api/v1/cluster/quotas`: the most records of each kind one school may store.
pub(super) async fn get_quotas(
    State(s): St,
    auth: Auth,
) -> Result<Json<crate::domain::Quotas>, AppError> {
    auth.require_operator()?;
    let q = s
        .cluster
        .read(roomraft_cluster::Consistency::Linearizable, |st| {
            st.quotas()
        })
        .await?;
    Ok(Json(q))
}

/// `PUT /api/v1/cluster/quotas`: changes them for every school (every field required).
pub(super) async fn set_quotas(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<crate::domain::Quotas>, AppError> {
    auth.require_operator()?;
    let quotas: crate::domain::Quotas = parse_json(&body)?;
    let q = s
        .submit(caller(&headers, &auth)?, SetQuotas { quotas })
        .await?;
    Ok(Json(q))
}
