//! What every request passes before a handler sees it: a browser's change must come from this
//! site, and its body is read whole within a deadline and a size limit.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::ErrorPages;
use crate::app::{AppError, AppState};

/// Whether `path` answers errors in JSON (the API, feeds, health, metrics) rather than as a page.
pub fn json_path(path: &str) -> bool {
    ["/api/", "/feeds/", "/health/", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// `e` as the path's kind of answer: JSON for the API, the error page for pages.
pub fn error_for<P: ErrorPages>(path: &str, e: AppError) -> Response {
    if json_path(path) {
        e.into_response()
    } else {
        P::render(e)
    }
}

/// Reads the request body whole, at most `max_bytes`, within the body deadline, before the
/// handler runs: a body that trickles in a byte at a time ends with 408 and a closed connection
/// instead of holding it, and an over-size one gets a 413 in the route's own error format.
pub async fn read_body<P: ErrorPages>(
    State(s): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let limits = s.body;
    let path = req.uri().path().to_string();
    let h1 = req.version() < Version::HTTP_2;
    let close = |resp: Response| if h1 { close(resp) } else { resp };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = AppError::PayloadTooLarge {
        limit_bytes: limits.max_bytes,
    };
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        // Say so before reading a byte of it; the client sees the answer, not a reset.
        return close(error_for::<P>(&path, too_large));
    }
    let (parts, mut body) = req.into_parts();
    let mut bytes = Vec::new();
    let mut over = false;
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if bytes.len() + data.len() > limits.max_bytes {
                    over = true;
                    break;
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok::<_, axum::Error>(())
    };
    match tokio::time::timeout(limits.read, read).await {
        Ok(Ok(())) if over => {
            // Read (and drop) what else comes, briefly, so an HTTP/2 client gets the answer
            // rather than a stream reset; a client that keeps sending loses the stream.
            let drain = async {
                let mut left = 4 * limits.max_bytes;
                while let Some(Ok(frame)) = body.frame().await {
                    let n = frame.data_ref().map_or(0, |d| d.len());
                    if n > left {
                        break;
                    }
                    left -= n;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
            return close(error_for::<P>(&path, too_large));
        }
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return close(error_for::<P>(
                &path,
                AppError::BadRequest {
                    message: format!("the request body could not be read: {e}"),
                },
            ))
        }
        Err(_) => {
            s.metrics
                .http
                .connections_closed
                .with_label_values(&["body_timeout"])
                .inc();
            tracing::warn!(
                seconds = limits.read.as_secs(),
                "request body too slow; connection closed"
            );
            return close(error_for::<P>(
                &path,
                AppError::RequestTimeout {
                    seconds: limits.read.as_secs(),
                },
            ));
        }
    }
    let req = Request::from_parts(parts, Body::from(Bytes::from(bytes)));
    next.run(req).await
}

/// Asks an HTTP/1 client to close the connection after this answer: the rest of its body, if
/// any, is not wanted. (HTTP/2 has no such header; the stream alone ends.)
fn close(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Routes that any site may post to: the page-view beacon, which a school's own website sends.
fn open_to_other_sites(path: &str) -> bool {
    path.starts_with("/api/v1/sites/") && path.ends_with("/pageviews")
}

/// Why a browser's request looks like it came from another site, if it does.
///
/// Browsers say where a request comes from: `Sec-Fetch-Site` (every current browser) and
/// `Origin` (on every cross-origin request, and on same-origin posts). A change that another
/// site's page made (a form posted to `/sign-in` to sign the visitor into the attacker's
/// account, a text/plain "JSON" post) says so in one of them; a client that is not a browser
/// sends neither and is judged by its credentials alone.
pub fn cross_site(method: &Method, headers: &HeaderMap, authority: Option<&str>) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Some(format!("Sec-Fetch-Site is {site}"));
        }
    }
    let origin = text("origin")?;
    // The origin a browser would give this site: HTTPS at the authority the request named.
    let site = |u: url::Url| {
        Some((
            u.scheme().to_string(),
            u.host()?.to_owned(),
            u.port_or_known_default()?,
        ))
    };
    let theirs = url::Url::parse(origin).ok().and_then(site);
    let mine = authority
        .and_then(|a| url::Url::parse(&format!("https://{a}")).ok())
        .and_then(site);
    match (theirs, mine) {
        (Some(t), Some(m)) if t == m => None,
        _ => Some(format!("Origin {origin} is not this site")),
    }
}

/// Refuses a change that a browser made on behalf of another site (login CSRF, and every other
/// cross-site form or script), before any handler or credential check.
pub async fn same_site<P: ErrorPages>(
    State(s): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || open_to_other_sites(path)
    {
        return next.run(req).await;
    }
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    if let Some(why) = cross_site(req.method(), req.headers(), authority.as_deref()) {
        s.metrics
            .security_events
            .with_label_values(&["cross_site"])
            .inc();
        tracing::warn!(reason = %why, %path, "cross-site request refused");
        let e = AppError::CrossSite { reason: why };
        return error_for::<P>(path, e);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, Method};

    use super::cross_site;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_change_from_another_site_is_told_apart() {
        let here = Some("school.example:8441");
        let post = Method::POST;
        let refused = [
            vec![("origin", "https://evil.example")],
            vec![("origin", "https://school.example:9999")],
            vec![("origin", "http://school.example:8441")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://school.example:8441"),
            ],
        ];
        for h in refused {
            assert!(cross_site(&post, &headers(&h), here).is_some(), "{h:?}");
        }
        let allowed = [
            vec![],
            vec![("origin", "https://school.example:8441")],
            vec![("origin", "https://SCHOOL.example:8441")],
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://school.example:8441"),
            ],
            vec![("sec-fetch-site", "none")],
        ];
        for h in allowed {
            assert_eq!(cross_site(&post, &headers(&h), here), None, "{h:?}");
        }
        // The default port, an IPv6 literal, and reads (which change nothing).
        assert_eq!(
            cross_site(
                &post,
                &headers(&[("origin", "https://school.example")]),
                Some("school.example")
            ),
            None
        );
        assert_eq!(
            cross_site(
                &post,
                &headers(&[("origin", "https://[::1]:8441")]),
                Some("[::1]:8441")
            ),
            None
        );
        let evil = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(cross_site(&Method::GET, &evil, here), None);
        assert!(cross_site(&Method::DELETE, &evil, here).is_some());
    }
}
