//! What operators see and what shields the cluster: request ids and access logs, HTTP metrics,
//! per-address rate limiting, and the `/metrics` endpoint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::app::{refused, AppError, AppState};

/// The header carrying a request's id, accepted from the client (or a load balancer) when it is
/// short and printable, else made up; logged and returned.
pub const REQUEST_ID: &str = "x-request-id";

/// The client's address as the rate limits and analytics see it (after trusted proxies).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

/// Outermost: request id, access log, HTTP metrics, then the per-address limit.
pub async fn track(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let forwarded: Vec<Option<&str>> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    let client = state.limits.client_address(peer, &forwarded);
    req.extensions_mut().insert(ClientAddr(client));
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let quiet = route.starts_with("/health/") || route == "/metrics";
    let mut resp = async {
        // Health checks are never limited: a load balancer must see the truth during a flood.
        let limited = if quiet {
            Ok(())
        } else {
            state.limits.check_address(client)
        };
        match limited {
            Ok(()) => next.run(req).await,
            Err(r) => refused(&state, r).into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    let status = resp.status();
    let elapsed = started.elapsed();
    let m = &state.metrics.http;
    m.requests
        .with_label_values(&[&route, method.as_str(), status.as_str()])
        .inc();
    m.duration_seconds
        .with_label_values(&[&route, method.as_str()])
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if quiet {
            tracing::debug!(target: "roomraft::access", status = status.as_u16(), ms, %client);
        } else if status.is_server_error() {
            tracing::warn!(target: "roomraft::access", status = status.as_u16(), ms, %client);
        } else {
            tracing::info!(target: "roomraft::access", status = status.as_u16(), ms, %client);
        }
    });
    resp
}

/// `GET /metrics`: the Prometheus text format, for the metrics token or the operator token.
pub async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let allowed = super::bearer_is(
        &headers,
        &[&s.metrics_token_sha256, &s.operator_token_sha256],
    );
    if !allowed {
        return AppError::Unauthorized.into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        s.metrics.render(),
    )
        .into_response()
}
