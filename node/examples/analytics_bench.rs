//! What usage analytics costs: the request path (a page view queued), the batch task (GeoIP,
//! user agent and hashing per view), and apply (a batch of page views counted in the state
//! machine). Run in release: `cargo run --release -p roomraft-node --example analytics_bench`.
//! The GeoIP database is `ROOMRAFT_TEST_GEOIP`, else ../shared/geoip's test database.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue};
use jiff::Timestamp;
use roomraft_cluster::{App, WriteSet};
use roomraft_node::analytics::Analytics;
use roomraft_node::domain::analytics::RecordPageViews;
use roomraft_node::domain::school::CreateTenant;
use roomraft_node::domain::{Actor, Bookings, Command, LogCommand, Op, Outcome, PageView, Role};
use roomraft_ops::analytics::{test_database, Enricher, Hit};
use roomraft_ops::{AnalyticsConfig, Metrics};

const UAS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];

fn per_op(label: &str, n: u64, started: Instant) {
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    println!("{label}: {:.2} µs per view ({n} views)", ns / 1000.0);
}

fn address(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        0x5100_0000u32.wrapping_add((i * 7919) as u32),
    ))
}

fn main() -> anyhow::Result<()> {
    let n: u64 = 1_000_000;
    // 1. The request path: headers read, rate limit checked, hit queued.
    let config = AnalyticsConfig {
        queue_capacity: n as usize,
        per_address_per_minute: 1_000_000,
        per_address_burst: 1_000_000,
        ..AnalyticsConfig::default()
    };
    let analytics = Analytics::new(config, Arc::new(Metrics::default()))?;
    let mut headers = HeaderMap::new();
    headers.insert(header::USER_AGENT, HeaderValue::from_static(UAS[0]));
    headers.insert(
        header::REFERER,
        HeaderValue::from_static("https://www.google.com/"),
    );
    headers.insert(header::HOST, HeaderValue::from_static("booking.example"));
    let started = Instant::now();
    for i in 0..n {
        analytics
            .page_view(
                Some(1),
                address(i % 10_000),
                &headers,
                "/v/oak/hall?utm_source=x",
                None,
            )
            .expect("under the limit");
    }
    per_op(
        "request path (queue a page view, 10k addresses)",
        n,
        started,
    );

    // 2. The batch task: enrich each hit (GeoIP, user agent, referrer, HMAC visitor id).
    let (db, _) = test_database();
    let enricher = Enricher::open(Some(&db));
    let hits: Vec<Hit> = (0..200_000u64)
        .map(|i| Hit {
            tenant: 1 + i % 20,
            at: Timestamp::now(),
            client: address(i),
            user_agent: UAS[(i % 4) as usize].into(),
            path: format!("/v/oak/page-{}?utm_source=news&id={i}", i % 50),
            referrer: Some("https://www.google.com/search?q=hall".into()),
            host: Some("booking.example".into()),
        })
        .collect();
    let salt = [7u8; 32];
    let started = Instant::now();
    let views: Vec<PageView> = hits
        .iter()
        .map(|h| enricher.enrich(h, &salt).expect("not a robot"))
        .collect();
    per_op(
        &format!("enrich ({})", db.file_name().unwrap().to_string_lossy()),
        views.len() as u64,
        started,
    );

    // 3. Apply: batches of 2,000 views counted by the state machine (20 tenants).
    let mut state = Bookings::default();
    let system = Actor {
        tenant: None,
        role: Role::Operator,
        name: "bench".into(),
        user: None,
    };
    let mut index = 1;
    let mut tenants = Vec::new();
    for i in 0..20 {
        let cmd = LogCommand::current(Command {
            time: Timestamp::now(),
            actor: system.clone(),
            request_key: format!("t{i}"),
            op: Op::from(CreateTenant {
                slug: format!("school-{i}"),
                name: format!("School {i}"),
                time_zone: "Europe/London".into(),
                admin_token_sha256: format!("{i:064}"),
            }),
        });
        match state.apply(index, cmd, &mut WriteSet::default()) {
            Outcome::TenantCreated(t) => tenants.push(t.id),
            other => anyhow::bail!("unexpected {other:?}"),
        }
        index += 1;
    }
    let views: Vec<PageView> = views
        .into_iter()
        .map(|mut v| {
            v.tenant = tenants[(v.tenant - 1) as usize];
            v
        })
        .collect();
    let started = Instant::now();
    let mut records = 0;
    for (b, batch) in views.chunks(2_000).enumerate() {
        let cmd = LogCommand::current(Command {
            time: Timestamp::now(),
            actor: system.clone(),
            request_key: format!("batch{b}"),
            op: Op::from(RecordPageViews {
                views: batch.to_vec(),
                retention_months: 13,
            }),
        });
        let mut writes = WriteSet::default();
        match state.apply(index, cmd, &mut writes) {
            Outcome::PageViewsRecorded { skipped: 0, .. } => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
        records += writes.ops().len();
        index += 1;
    }
    per_op("apply (batches of 2,000)", views.len() as u64, started);
    println!(
        "apply wrote {records} records for {} views ({} visitors remembered)",
        views.len(),
        state.analytics_visitors()
    );
    Ok(())
}
