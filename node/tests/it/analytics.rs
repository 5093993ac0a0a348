//! Usage analytics on a real three-node cluster: page views through every node (as a trusted
//! proxy forwards them), GeoIP and user-agent breakdowns in the admin's report, robots and
//! floods kept out, nothing identifying on disk, and the history surviving a node's loss.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::TestNodes;
use crate::ops::{sample, scrape};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const FIREFOX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const BOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// A page view reported by the site's page, from `client` behind the trusted proxy.
async fn view(t: &TestNodes, node: u64, client: &str, ua: &str, body: Value) -> (u16, Value) {
    let r = t
        .http
        .post(t.url(node, "/api/v1/sites/oak/pageviews"))
        .header("x-forwarded-for", client)
        .header("user-agent", ua)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 202 {
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls the report on `node` until `done` holds, within a deadline.
async fn report_until(
    t: &TestNodes,
    node: u64,
    admin: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = t
            .http
            .get(t.url(node, "/api/v1/analytics"))
            .bearer_auth(admin)
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 200 {
                let v: Value = r.json().await.unwrap();
                if done(&v) {
                    return v;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report never got there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(list: &Value, key: &str, name: &str, field: &str) -> u64 {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == name)
        .and_then(|e| e[field].as_u64())
        .unwrap_or(0)
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn page_views_become_a_report_without_keeping_who_visited() {
    let (geoip, test_db) = roomraft_ops::analytics::test_database();
    let t = TestNodes::start_with(29000, |c| {
        c.limits.trusted_proxies = vec!["127.0.0.1".into()];
        c.analytics.geoip_database = Some(geoip.clone());
        c.analytics.flush_interval_ms = 200;
        c.analytics.per_address_per_minute = 1;
        c.analytics.per_address_burst = 6;
    })
    .await;
    let admin = t.tenant("oak").await;
    // Only a published site's views count; until then the beacon answers as for no school.
    let (s, v) = view(&t, 1, "81.2.69.142", CHROME, json!({"path": "/v/oak"})).await;
    assert_eq!((s, &v), (202, &json!({"recorded": false})));
    let (s, v) = t
        .send(
            "PUT",
            1,
            "/api/v1/site",
            Some(&admin),
            Some(json!({"published": true, "description": "Our halls."})),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for node in 1..=3 {
        // Each node counts views once it has applied the publication.
        while t._nodes[node - 1].cluster.read_local(|st| {
            st.tenants().all(|t| {
                st.for_tenant(t.id)
                    .site()
                    .is_none_or(|site| !site.spec.published)
            })
        }) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "site never published on node {node}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // London on Chrome, two pages through two nodes (one visit, from a search engine).
    let (s, v) = view(
        &t,
        1,
        "81.2.69.142",
        CHROME,
        json!({"path": "/v/oak", "referrer": "https://www.google.com/search?q=hall+hire"}),
    )
    .await;
    assert_eq!((s, &v), (202, &json!({"recorded": true})));
    let (s, _) = view(&t, 2, "81.2.69.142", CHROME, json!({"path": "/v/oak/hall?utm_source=newsletter&email=jo@example.com", "referrer": "https://oak.example/v/oak"})).await;
    assert_eq!(s, 202);
    // Milton on an iPhone, and Linköping on Firefox: one page each.
    assert_eq!(
        view(&t, 3, "216.160.83.56", IPHONE, json!({"path": "/v/oak"}))
            .await
            .0,
        202
    );
    assert_eq!(
        view(
            &t,
            2,
            "89.160.20.112",
            FIREFOX,
            json!({"path": "https://oak.example/v/oak/pitch"})
        )
        .await
        .0,
        202
    );
    // A crawler is answered but not counted.
    assert_eq!(
        view(&t, 1, "66.249.66.1", BOT, json!({"path": "/v/oak"}))
            .await
            .0,
        202
    );

    // Bad input is refused with the field at fault; an unknown site is a 404.
    let (s, v) = view(&t, 1, "192.0.2.1", CHROME, json!({"referrer": "x"})).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("path")));
    let (s, v) = view(&t, 1, "192.0.2.1", CHROME, json!({"path": ""})).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("path")));
    let (s, v) = view(&t, 1, "192.0.2.1", CHROME, json!("not an object")).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")));
    let r = t
        .http
        .post(t.url(1, "/api/v1/sites/nowhere/pageviews"))
        .body(r#"{"path": "/"}"#)
        .send()
        .await
        .unwrap();
    // No such school: the same answer as a school without a published site, so the beacon
    // cannot be used to find out which school names exist.
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"recorded": false}));

    let r = report_until(&t, 3, &admin, |v| v["page_views"] == 4).await;
    assert_eq!(r["visits"], 3, "{r:#}");
    assert_eq!(r["unique_visitors"], 3);
    let bounce = r["bounce_rate"].as_f64().unwrap();
    assert!((bounce - 2.0 / 3.0).abs() < 1e-9, "{bounce}");
    assert_eq!(count(&r["top_pages"], "path", "/v/oak", "page_views"), 2);
    assert_eq!(
        count(&r["top_pages"], "path", "/v/oak/hall", "page_views"),
        1
    );
    assert_eq!(count(&r["referrers"], "source", "google.com", "visits"), 1);
    assert_eq!(count(&r["referrers"], "source", "(direct)", "visits"), 2);
    assert_eq!(count(&r["browsers"], "browser", "Chrome", "visits"), 1);
    assert_eq!(count(&r["browsers"], "browser", "Safari", "visits"), 1);
    assert_eq!(count(&r["browsers"], "browser", "Firefox", "visits"), 1);
    assert_eq!(count(&r["operating_systems"], "os", "iPhone", "visits"), 1);
    assert_eq!(count(&r["devices"], "device", "desktop", "visits"), 2);
    assert_eq!(count(&r["devices"], "device", "mobile", "visits"), 1);
    assert_eq!(count(&r["countries"], "country", "GB", "visits"), 1);
    assert_eq!(count(&r["countries"], "country", "SE", "visits"), 1);
    if test_db {
        assert_eq!(count(&r["countries"], "country", "US", "visits"), 1);
        assert_eq!(count(&r["cities"], "city", "London, GB", "visits"), 1);
        assert_eq!(count(&r["cities"], "city", "Milton, US", "visits"), 1);
    }
    assert_eq!(r["daily"].as_array().unwrap().len(), 1);
    assert_eq!(r["time_zone"], "Europe/London");

    // Only admins read it, and a bad range says which field is wrong.
    let (s, _) = t.get(1, "/api/v1/analytics", &t.operator).await;
    assert_eq!(s, 403);
    let (s, v) = t.get(1, "/api/v1/analytics?from=2037-13-01", &admin).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("from")));
    let (s, v) = t
        .get(1, "/api/v1/analytics?from=2037-02-01&to=2037-01-01", &admin)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("from")));
    let (s, v) = t.get(1, "/api/v1/analytics?limit=0", &admin).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("limit")));

    // One address flooding the beacon is refused with Retry-After after its burst.
    let mut refused = None;
    for _ in 0..10 {
        let r = t
            .http
            .post(t.url(1, "/api/v1/sites/oak/pageviews"))
            .header("x-forwarded-for", "198.51.100.9")
            .body(r#"{"path": "/v/oak"}"#)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), 202);
    }
    let r = refused.expect("the flood was never limited");
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rate_limited");

    // Metrics count every outcome on the node that saw it.
    let token = t.metrics_token();
    let mut recorded = 0.0;
    for n in 1..=3 {
        let (_, text) = scrape(&t, n, &token).await;
        recorded += sample(
            &text,
            "roomraft_analytics_events_total{outcome=\"recorded\"}",
        )
        .unwrap();
        if n == 1 {
            assert_eq!(
                sample(&text, "roomraft_analytics_events_total{outcome=\"bot\"}"),
                Some(1.0)
            );
            assert_eq!(
                sample(
                    &text,
                    "roomraft_analytics_events_total{outcome=\"rate_limited\"}"
                ),
                Some(1.0)
            );
        }
    }
    assert!(recorded >= 4.0, "{recorded}");

    // Nothing on disk names a visitor: not an address, a user agent or a private parameter
    // (while what is kept, such as a page's path, is there to find).
    assert!(!files_contain(t.dir(), b"/v/oak/hall").is_empty());
    for secret in [
        "81.2.69.142",
        "216.160.83.56",
        "Windows NT 10.0",
        "iPhone OS 17_5",
        "jo@example.com",
        "hall+hire",
    ] {
        let found = files_contain(t.dir(), secret.as_bytes());
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }

    // The history is replicated: with node 1 gone the others still report it.
    t.stop(1).await;
    let r = report_until(&t, 2, &admin, |v| v["page_views"].as_u64() >= Some(4)).await;
    assert!(r["visits"].as_u64().unwrap() >= 3, "{r:#}");
}
