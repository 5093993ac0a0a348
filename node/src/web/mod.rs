//! The web pages: server-rendered HTML (askama templates, checked at compile time) for staff,
//! admins and each school's public venue website: a thin adapter over the use cases in `app`,
//! as the JSON API is (the two never import each other). No page needs JavaScript.

mod admin;
mod staff;
mod venue;

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use roomraft_cluster::Consistency;
use serde::de::DeserializeOwned;

use crate::app::{csrf_token, AppError, AppState, Auth, CsrfProof};
use crate::domain::calendar::zone;
use crate::domain::{
    Actor, Booking, BookingDetails, BookingStatus, Calendar, EnquirySpec, Occupation, Period, Role,
    Room, RoomFilter, RoomSpec, RowError, Rules, SiteSpec, Tenant, TenantId, TenantView, User,
};
use crate::http::ErrorPages;

type St = State<Arc<AppState>>;

/// The policy every response carries: scripts, styles and images only from this origin, no
/// framing, no inline code, forms only back to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response, pages and API alike.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, v: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    // Answers are private unless a route says otherwise (the stylesheet): a shared cache or the
    // browser's history must never keep a new token's secret, a feed or a school's data.
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}

/// Every page route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(staff::home))
        .route("/assets/app.css", get(stylesheet))
        .route("/sign-in", get(staff::sign_in_form).post(staff::sign_in))
        .route("/sign-out", post(staff::sign_out))
        .route(
            "/account/password",
            get(staff::password_form).post(staff::change_password),
        )
        .route("/today", get(staff::today))
        .route("/rooms/{id}/week", get(staff::week))
        .route("/day", get(staff::day))
        .route("/book", get(staff::book_form).post(staff::book))
        .route("/my/bookings", get(staff::my_bookings))
        .route("/bookings/{id}/cancel", post(staff::cancel))
        .route("/admin", get(admin::overview))
        .route("/admin/rooms", get(admin::rooms).post(admin::create_room))
        .route(
            "/admin/timetable",
            get(admin::timetable).post(admin::upload_timetable),
        )
        .route("/admin/approvals", get(admin::approvals))
        .route("/admin/approvals/{id}", post(admin::decide))
        .route("/admin/enquiries", get(admin::enquiries))
        .route("/admin/enquiries/{id}", post(admin::handle_enquiry))
        .route("/admin/site", get(admin::site).post(admin::save_site))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/calendar", get(admin::calendar))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/analytics", get(admin::analytics))
        .route("/v/{slug}", get(venue::home))
        .route("/v/{slug}/rooms/{id}", get(venue::facility))
        .route(
            "/v/{slug}/enquire",
            get(venue::enquiry_form).post(venue::enquire),
        )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/app.css"),
    )
        .into_response()
}

/// What the frame of every signed-in page shows.
pub struct Chrome {
    pub title: String,
    pub school: String,
    pub user: String,
    pub admin: bool,
    pub csrf: String,
    /// Which navigation entry is current (`aria-current`).
    pub nav: &'static str,
    pub notice: Option<&'static str>,
}

/// The signed-in user of a page request.
pub struct Viewer {
    pub auth: Auth,
    pub user: User,
    pub tenant: Tenant,
    pub csrf: String,
    state: Arc<AppState>,
}

impl Viewer {
    pub fn chrome(&self, title: impl Into<String>, nav: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            school: self.tenant.name.clone(),
            user: self.user.name.clone(),
            admin: self.user.role == Role::Admin,
            csrf: self.csrf.clone(),
            nav,
            notice: None,
        }
    }

    pub fn tz(&self) -> TimeZone {
        zone(&self.tenant.time_zone)
    }

    pub fn today(&self) -> Date {
        crate::domain::calendar::local_date(&self.tz(), Timestamp::now())
    }

    pub fn require_admin(&self) -> Result<TenantId, PageError> {
        Ok(self.auth.require_admin()?)
    }

    /// A linearizable read of the replicated state, as every page's read is.
    /// Reads the viewer's school, linearizably: `f` sees that tenant's records only.
    pub async fn read<R>(&self, f: impl FnOnce(TenantView<'_>) -> R) -> Result<R, PageError> {
        Ok(self
            .state
            .read_tenant(self.tenant.id, Consistency::Linearizable, f)
            .await?)
    }
}

/// Authenticates a page request by its session cookie (and, for a form post, its CSRF field).
pub async fn viewer(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    path: &str,
    proof: CsrfProof<'_>,
) -> Result<Viewer, PageError> {
    let (auth, token) = match crate::http::page_session(state, headers, proof).await {
        Ok(x) => x,
        Err(AppError::Unauthorized) => return Err(PageError::SignIn(path.to_string())),
        Err(e) => return Err(e.into()),
    };
    let (tenant, user) = (auth.tenant()?, auth.actor.user);
    let found = state
        .cluster
        .read(Consistency::Stale, move |st| {
            let school = st.for_tenant(tenant);
            let t = school.tenant()?.clone();
            let u = school.user(user?)?.clone();
            Some((t, u))
        })
        .await?;
    let (tenant, user) = found.ok_or_else(|| PageError::SignIn(path.to_string()))?;
    Ok(Viewer {
        auth,
        user,
        tenant,
        csrf: csrf_token(&token),
        state: state.clone(),
    })
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, PageError> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        viewer(state, &parts.headers, &path, CsrfProof::NotNeeded).await
    }
}

/// `Query` for pages: a malformed query string gets the error page.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        crate::http::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(PageError::Api)
    }
}

/// `Path` for pages: a path that cannot be decoded gets the error page.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        crate::http::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(PageError::Api)
    }
}

/// A form post's body, with its CSRF field, as a typed struct.
pub fn form<T: DeserializeOwned>(body: &Bytes) -> Result<T, PageError> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        PageError::Api(AppError::BadRequest {
            message: format!("the form could not be read: {e}"),
        })
    })
}

/// The CSRF field of a urlencoded form, read before the rest is parsed.
pub fn csrf_field(body: &Bytes) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

/// Authenticates a form post: the session cookie and the form's CSRF field.
pub async fn poster(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<Viewer, PageError> {
    let sent = csrf_field(body);
    viewer(state, headers, path, CsrfProof::Sent(sent.as_deref())).await
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page, then back here.
    SignIn(String),
    Api(AppError),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::Api(e)
    }
}

impl From<roomraft_cluster::ClusterError> for PageError {
    fn from(e: roomraft_cluster::ClusterError) -> Self {
        PageError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
    status: u16,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = match self {
            PageError::SignIn(next) => {
                let to = format!(
                    "/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return Redirect::to(&to).into_response();
            }
            PageError::Api(e) => e,
        };
        let status = e.status();
        if status.is_server_error() {
            tracing::warn!(error = %e, "page failed");
        }
        let (title, message) = match &e {
            AppError::Csrf => (
                "This form has expired".to_string(),
                "Go back, reload the page and send the form again.".to_string(),
            ),
            AppError::NotFound { what, .. } => (
                "Not found".to_string(),
                format!("There is no such {what} here."),
            ),
            AppError::Forbidden { reason } => ("Not allowed".to_string(), reason.clone()),
            AppError::RateLimited { .. } => ("Too many requests".to_string(), e.to_string()),
            _ if status.is_server_error() => (
                "Roomraft is busy".to_string(),
                format!("{e}. Nothing was lost; try again in a moment."),
            ),
            _ => ("That did not work".to_string(), e.to_string()),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let mut resp = (status, html(&page)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let AppError::RateLimited {
            retry_after_secs, ..
        } = e
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

/// The 404 page for a path that is no page (API paths keep their JSON errors).
/// The pages' rendering of an error, for the middleware that answers before any handler.
pub struct Pages;

impl ErrorPages for Pages {
    fn render(e: AppError) -> Response {
        PageError::Api(e).into_response()
    }
}

pub fn not_found() -> Response {
    PageError::Api(AppError::not_found("page", "requested")).into_response()
}

/// Renders a template as a no-store HTML response.
pub fn html<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// A page rendered with a status other than 200 (a form shown again with its errors).
pub fn html_status<T: Template>(status: StatusCode, t: &T) -> Response {
    let mut r = html(t);
    *r.status_mut() = status;
    r
}

/// After a successful post: back to a page, with a fixed notice code (never user text). A
/// path that cannot be a header value goes to the start page instead of failing the request.
pub fn see_other(path: &str) -> Response {
    match HeaderValue::from_str(path) {
        Ok(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
        Err(_) => Redirect::to("/").into_response(),
    }
}

/// The message of a notice code carried in `?done=` after a redirect.
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "booked" => "Booked.",
        "pending" => "Requested: the booking waits for an administrator's approval.",
        "series" => "The recurring booking is made.",
        "cancelled" => "Cancelled.",
        "password" => "Your password is changed. Your other sessions are signed out.",
        "room" => "Room created.",
        "user" => "User created.",
        "decided" => "Decision recorded.",
        "enquiry" => "Enquiry updated.",
        "site" => "Website saved.",
        _ => return None,
    })
}

/// A field's error, shown beside it and in the summary at the top of the form.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    pub summary: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl FieldErrors {
    pub fn of(e: &AppError) -> FieldErrors {
        match e {
            AppError::Invalid { field, message } => FieldErrors {
                summary: Some(format!("Check the form: {field} {message}.")),
                fields: vec![(field.clone(), message.clone())],
            },
            AppError::Rows(rows) => FieldErrors {
                summary: Some(e.to_string()),
                fields: rows
                    .iter()
                    .map(|r| (r.field.clone(), r.message.clone()))
                    .collect(),
            },
            other => FieldErrors {
                summary: Some(other.to_string()),
                fields: Vec::new(),
            },
        }
    }

    pub fn message(text: impl Into<String>) -> FieldErrors {
        FieldErrors {
            summary: Some(text.into()),
            fields: Vec::new(),
        }
    }

    /// The message for one field, or empty.
    pub fn get(&self, field: &str) -> &str {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .unwrap_or("")
    }

    pub fn any(&self) -> bool {
        self.summary.is_some()
    }
}

/// `09:05` in the school's zone.
pub fn clock(tz: &TimeZone, t: Timestamp) -> String {
    t.to_zoned(tz.clone()).strftime("%H:%M").to_string()
}

/// `Mon 2 Mar 2026`.
pub fn long_date(d: Date) -> String {
    d.strftime("%a %-d %b %Y").to_string()
}

/// What the status of a booking reads as (never colour alone).
pub fn status_text(s: BookingStatus) -> &'static str {
    match s {
        BookingStatus::Active => "Confirmed",
        BookingStatus::Pending => "Waiting for approval",
        BookingStatus::Cancelled => "Cancelled",
        BookingStatus::Declined => "Declined",
    }
}

/// A safe place to go back to after signing in: a path on this site only, else `/today`.
pub fn local_path(next: Option<&str>) -> String {
    next.and_then(same_origin_path)
        .unwrap_or_else(|| "/today".into())
}

/// `p` as a path (with its query) on this site, percent-encoded as a `Location` header needs
/// it, or `None` when a browser could resolve it to another site.
///
/// Browsers drop tabs and newlines anywhere in a URL, read `\` as `/`, and treat `//host` as
/// another host, so `/\t/evil.example` and `/\evil.example` leave the site. Control characters,
/// whitespace and backslashes are refused outright; what is left is resolved the way a browser
/// would, against this origin, and kept only if it stays here and says the same when resolved
/// again (`/.//evil.example` resolves to the path `//evil.example`, which would not).
pub fn same_origin_path(p: &str) -> Option<String> {
    if !p.starts_with('/')
        || p.len() > 2048
        || p.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let base = url::Url::parse("https://roomraft.invalid/").expect("a valid base URL");
    let resolved = base.join(p).ok()?;
    let path = &resolved[url::Position::BeforePath..];
    let again = base.join(path).ok()?;
    (resolved.origin() == base.origin() && again == resolved && !path.starts_with("//"))
        .then(|| path.to_string())
}

/// Parses an optional `YYYY-MM-DD` query value, or `default`.
pub fn date_param(v: Option<&str>, default: Date) -> Result<Date, PageError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => Ok(crate::app::parse_date("date", s)?),
    }
}

/// The name to show for who a booking is for.
pub fn booked_by(school: TenantView<'_>, b: &Booking) -> String {
    b.user
        .and_then(|u| school.user(u))
        .map(|u| u.name.clone())
        .unwrap_or_else(|| b.created_by.clone())
}

/// An option of a select list.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub fn list<V: ToString>(items: Vec<(V, String)>, selected: &str) -> Vec<Opt> {
        items
            .into_iter()
            .map(|(v, label)| {
                let value = v.to_string();
                Opt {
                    selected: value == selected,
                    value,
                    label,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn after_sign_in_only_a_path_on_this_site() {
        for (next, want) in [
            (
                "/rooms/4/week?date=2037-03-02",
                "/rooms/4/week?date=2037-03-02",
            ),
            ("/day#p3", "/day#p3"),
            // Non-ASCII is percent-encoded, as a Location header must be.
            ("/v/oak/rooms/Sálá", "/v/oak/rooms/S%C3%A1l%C3%A1"),
            ("/a/../admin", "/admin"),
            // Everything a browser could resolve to another host goes to the start page.
            ("//evil.example", "/today"),
            ("/\\evil.example", "/today"),
            ("\\\\evil.example", "/today"),
            ("/\t/evil.example", "/today"),
            ("/\n/evil.example", "/today"),
            ("/ /evil.example", "/today"),
            ("/.//evil.example", "/today"),
            ("/%0a/x", "/%0a/x"),
            ("https://evil.example/", "/today"),
            ("evil.example", "/today"),
            ("/\u{0}", "/today"),
            ("/\u{3000}/evil.example", "/today"),
            ("", "/today"),
        ] {
            assert_eq!(local_path(Some(next)), want, "{next:?}");
        }
        assert_eq!(local_path(None), "/today");
    }
}
