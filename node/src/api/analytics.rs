//! Usage analytics: the public page-view beacon of a school's site, and the admin's report.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::{consistency, opt, parse_date, parse_json, AppError, Auth, Bookings, Path, Query, St};
use crate::analytics::Recorded;
use crate::app::refused;
use crate::domain::analytics::Row;
use crate::domain::calendar::{local_date, zone};
use crate::http::observe::ClientAddr;

/// Longest report range, in days.
const MAX_RANGE_DAYS: i64 = 800;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageViewBody {
    /// The page's path (or whole URL); only UTM and `ref` query parameters are kept.
    path: String,
    /// Where the visitor came from (`document.referrer`).
    #[serde(default)]
    referrer: Option<String>,
}

/// `POST /api/v1/sites/{slug}/pageviews`: a public page of the tenant reports a view. No
/// credentials; any origin may call it (`navigator.sendBeacon` from the school's own website).
pub(super) async fn page_view(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let b: PageViewBody = parse_json(&body)?;
    let path = b.path.trim();
    if path.is_empty() || path.len() > 2048 || path.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "path",
            "must be a page path like /v/oak/hall (at most 2048 characters)",
        ));
    }
    if let Some(r) = &b.referrer {
        if r.len() > 2048 || r.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "referrer",
                "must be a URL of at most 2048 characters",
            ));
        }
    }
    // A school with no published site (or none at all, or suspended) gets the same answer as a
    // view that was not counted, from the same local read, so the beacon tells nobody which
    // school names exist. A site published moments ago may miss a view or two on a lagging node.
    let tenant = s.cluster.read_local(|st: &Bookings| {
        st.tenant_by_slug(&slug)
            .filter(|t| !t.suspended)
            .filter(|t| {
                st.for_tenant(t.id)
                    .site()
                    .is_some_and(|site| site.spec.published)
            })
            .map(|t| t.id)
    });
    let recorded = s
        .analytics
        .page_view(tenant, client, &headers, path, b.referrer.as_deref())
        .map_err(|r| refused(&s, r))?;
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(BeaconBody {
            recorded: recorded == Recorded::Queued,
        }),
    )
        .into_response();
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub(super) struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    consistency: Option<String>,
}

/// Whether the beacon's view was counted.
#[derive(Serialize)]
struct BeaconBody {
    recorded: bool,
}

/// A ranked list of the report, each row an object of two fields named by the list
/// (`{"path": "/v/demo", "page_views": 12}`).
struct Entries<'a> {
    list: &'a [(String, u64)],
    name: &'static str,
    count: &'static str,
}

fn entries<'a>(list: &'a [(String, u64)], name: &'static str, count: &'static str) -> Entries<'a> {
    Entries { list, name, count }
}

impl Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};

        struct Row<'a>(&'static str, &'a str, &'static str, u64);

        impl Serialize for Row<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry(self.0, self.1)?;
                map.serialize_entry(self.2, &self.3)?;
                map.end()
            }
        }

        let mut seq = serializer.serialize_seq(Some(self.list.len()))?;
        for (key, n) in self.list {
            seq.serialize_element(&Row(self.name, key, self.count, *n))?;
        }
        seq.end()
    }
}

/// A school's visitor report as the API shows it.
#[derive(Serialize)]
pub(super) struct ReportBody<'a> {
    from: Date,
    to: Date,
    time_zone: &'a str,
    retention_months: u16,
    page_views: u64,
    unique_visitors: u64,
    visits: u64,
    bounce_rate: Option<f64>,
    average_visit_seconds: Option<f64>,
    views_per_visit: Option<f64>,
    top_pages: Entries<'a>,
    referrers: Entries<'a>,
    countries: Entries<'a>,
    cities: Entries<'a>,
    browsers: Entries<'a>,
    operating_systems: Entries<'a>,
    devices: Entries<'a>,
    daily: &'a [Row],
    monthly: &'a [Row],
    detail_from: Option<Date>,
}

/// `GET /api/v1/analytics`: the tenant's visitors over a date range (admins only).
pub(super) async fn report(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let tenant_id = auth.require_admin()?;
    let consistency = consistency(q.consistency.as_deref())?;
    let limit = match &q.limit {
        None => 10,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "must be a whole number from 1 to 1000"))?,
    };
    let from = opt("from", &q.from, parse_date)?;
    let to = opt("to", &q.to, parse_date)?;
    let (tenant, report) = s
        .cluster
        .read(consistency, |st| {
            let school = st.for_tenant(tenant_id);
            let t = school.tenant().cloned()?;
            let today = local_date(&zone(&t.time_zone), Timestamp::now());
            let to = to.unwrap_or(today);
            let from = from.unwrap_or_else(|| to.checked_sub(29.days()).unwrap_or(to));
            let range_ok = from <= to && (to - from).get_days() as i64 <= MAX_RANGE_DAYS;
            Some((
                t,
                range_ok.then(|| (from, to, school.analytics_report(from, to, limit))),
            ))
        })
        .await?
        .ok_or_else(|| AppError::not_found("tenant", tenant_id))?;
    let Some((from, to, r)) = report else {
        return Err(AppError::invalid(
            "from",
            format!("must be on or before to, at most {MAX_RANGE_DAYS} days before it"),
        ));
    };
    let body = ReportBody {
        from,
        to,
        time_zone: &tenant.time_zone,
        retention_months: s.analytics.config.retention_months,
        page_views: r.page_views,
        unique_visitors: r.unique_visitors,
        visits: r.visits,
        bounce_rate: r.bounce_rate,
        average_visit_seconds: r.average_visit_seconds,
        views_per_visit: r.views_per_visit,
        top_pages: entries(&r.top_pages, "path", "page_views"),
        referrers: entries(&r.referrers, "source", "visits"),
        countries: entries(&r.countries, "country", "visits"),
        cities: entries(&r.cities, "city", "visits"),
        browsers: entries(&r.browsers, "browser", "visits"),
        operating_systems: entries(&r.operating_systems, "os", "visits"),
        devices: entries(&r.devices, "device", "visits"),
        daily: &r.daily,
        monthly: &r.monthly,
        detail_from: r.detail_from,
    };
    Ok(Json(body).into_response())
}
