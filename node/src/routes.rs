//! The one place the router is assembled: the JSON API's routes and the pages', the fallback
//! for an unknown path, and the middleware every request passes, outermost last.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::app::{AppError, AppState};
use crate::http::{guard, observe};
use crate::web::Pages;

/// An unknown path: a JSON error under the API, the not-found page elsewhere.
async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path().starts_with("/feeds/") {
        return AppError::NotFound {
            what: "route".into(),
            id: "requested".into(),
        }
        .into_response();
    }
    crate::web::not_found()
}

/// Every client route.
pub fn router(state: Arc<AppState>) -> Router {
    crate::api::routes()
        .merge(crate::web::routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::read_body::<Pages>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::same_site::<Pages>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .with_state(state)
}
