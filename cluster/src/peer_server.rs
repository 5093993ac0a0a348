//! The server side of the peer transport: Raft RPCs and cluster-internal calls (forwarded
//! writes, read index, membership changes), served over HTTP/2 to peers that present a
//! certificate from the cluster CA.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use openraft::raft::AppendEntriesResponse;

use crate::cluster::{ForwardedMembership, ForwardedWrite, Inner};
use crate::store::encode;
use crate::tls::TlsMaterial;
use crate::ClusterError;

fn bincode_response<T: Serialize>(value: &T) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        encode(value),
    )
        .into_response()
}

// The error is the 400 answer itself, returned once per refused request.
#[allow(clippy::result_large_err)]
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    bincode::deserialize(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("undecodable peer request: {e}"),
        )
            .into_response()
    })
}

async fn append(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match decode_body(&body) {
        Ok(req) => {
            let resp = inner.raft.append_entries(req).await;
            // Accepted from a leader (not refused for a higher vote): the leader is alive.
            if matches!(
                &resp,
                Ok(AppendEntriesResponse::Success
                    | AppendEntriesResponse::PartialSuccess(_)
                    | AppendEntriesResponse::Conflict)
            ) {
                inner.contact.heard();
            }
            bincode_response(&resp)
        }
        Err(r) => r,
    }
}

async fn vote(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match decode_body(&body) {
        Ok(req) => bincode_response(&inner.raft.vote(req).await),
        Err(r) => r,
    }
}

async fn snapshot(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match decode_body(&body) {
        Ok(req) => {
            let resp = inner.raft.install_snapshot(req).await;
            if resp.is_ok() {
                inner.contact.heard();
            }
            bincode_response(&resp)
        }
        Err(r) => r,
    }
}

async fn contact(State(inner): State<Arc<Inner>>) -> Response {
    bincode_response(&crate::failover::report(&inner))
}

/// A batch of forwarded writes: proposed together, so that they share the next log entry;
/// answered in order.
async fn forwarded_writes(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match decode_body::<Vec<ForwardedWrite>>(&body) {
        Ok(reqs) => {
            let answers =
                futures::future::join_all(reqs.into_iter().map(|req| inner.write_as_leader(req)))
                    .await;
            bincode_response(&answers)
        }
        Err(r) => r,
    }
}

async fn read_index(State(inner): State<Arc<Inner>>) -> Response {
    bincode_response(&inner.read_index_as_leader().await)
}

async fn membership(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match decode_body::<ForwardedMembership>(&body) {
        Ok(req) => bincode_response(&inner.membership_as_leader(req).await),
        Err(r) => r,
    }
}

/// Binds the peer listener and serves it until `handle` shuts it down.
pub(crate) fn serve(
    inner: Arc<Inner>,
    listen: SocketAddr,
    tls: &TlsMaterial,
    body_limit: usize,
    handle: axum_server::Handle,
) -> Result<(), ClusterError> {
    let refused = inner.metrics.peer_certificates_refused.clone();
    let router = Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route(crate::forward::PATH, post(forwarded_writes))
        .route("/cluster/read-index", post(read_index))
        .route("/cluster/membership", post(membership))
        .route("/cluster/contact", post(contact))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(inner);
    crate::listener::serve_tls(
        listen,
        tls.peer_listener_config(refused)?,
        router,
        handle,
        "peer",
        crate::listener::ConnectionLimits::unlimited(),
    )?;
    Ok(())
}
