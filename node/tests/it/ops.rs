//! Operations on a real three-node cluster: `/metrics` (checked by promtool), request ids, and
//! rate limits with `Retry-After`, per address (through a trusted proxy), per account on sign-in.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{slot, TestNodes};

/// `GET /metrics` on `node` with `token`: status and text.
pub(crate) async fn scrape(t: &TestNodes, node: u64, token: &str) -> (u16, String) {
    let r = t
        .http
        .get(t.url(node, "/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool(args: &[&str], dir: &std::path::Path) {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is installed by scripts/test.sh (Debian package prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `roomraft_…` metric family named in `text` (histogram series names folded).
fn families_named(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("roomraft_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(family.to_string());
        rest = &tail[end..];
    }
    out
}

/// docs/ops: the alert rules pass `promtool check rules` and their unit tests, every dashboard
/// query parses as PromQL, and every Roomraft metric either names is one a node exports.
fn check_ops_docs(scraped: &str) {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ops");
    promtool(&["check", "rules", "alerts.yml"], &docs);
    promtool(&["test", "rules", "alerts.test.yml"], &docs);
    let dashboard = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let d: Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 12, "{exprs:?}");
    // Recording rules are the one promtool input that type-checks bare expressions.
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"record": format!("dashboard:query_{i}"), "expr": e}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(dir.path().join("dashboard.yml"), file.to_string()).unwrap();
    promtool(&["check", "rules", "dashboard.yml"], dir.path());
    let alerts = std::fs::read_to_string(docs.join("alerts.yml")).unwrap();
    let exported = families_named(scraped);
    for name in families_named(&format!("{dashboard}\n{alerts}")) {
        assert!(
            exported.contains(&name),
            "docs/ops uses {name}, which no node exports"
        );
    }
}

fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/test.sh (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_describe_the_cluster_and_pass_promtool() {
    let t = TestNodes::start(22090).await;
    let admin = t.tenant("metrics").await;
    let room = t.room(&admin, "Hall").await;
    let (s, _) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:00", "10:00")),
            None,
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = t
        .send(
            "POST",
            3,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:30", "10:30")),
            None,
        )
        .await;
    assert_eq!(s, 409);

    let token = t.metrics_token();
    assert_eq!(scrape(&t, 1, "wrong").await.0, 401);
    assert_eq!(
        scrape(&t, 1, &t.operator).await.0,
        200,
        "the operator may scrape too"
    );
    let mut leaders = 0.0;
    for node in 1..=3 {
        let (status, text) = scrape(&t, node, &token).await;
        assert_eq!(status, 200);
        promtool_check_metrics(&text);
        for family in [
            "roomraft_build_info",
            "roomraft_raft_term",
            "roomraft_raft_leader_id",
            "roomraft_raft_leader_changes_total",
            "roomraft_raft_entries_applied_total",
            "roomraft_raft_applied_index",
            "roomraft_raft_log_fsync_duration_seconds_bucket",
            "roomraft_raft_apply_duration_seconds_count",
            "roomraft_http_requests_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(family), "node {node} lacks {family}");
        }
        leaders += sample(&text, "roomraft_raft_is_leader").unwrap();
        assert!(sample(&text, "roomraft_raft_term").unwrap() >= 1.0);
        assert!(sample(&text, "roomraft_raft_log_fsync_duration_seconds_count").unwrap() > 0.0);
        assert!(sample(&text, "roomraft_raft_entries_applied_total").unwrap() >= 3.0);
    }
    assert_eq!(leaders, 1.0, "exactly one node reports it leads");
    let (_, two) = scrape(&t, 2, &token).await;
    assert_eq!(
        sample(&two, "roomraft_bookings_total{outcome=\"created\"}"),
        Some(1.0)
    );
    assert!(two.contains(
        "roomraft_http_requests_total{method=\"POST\",route=\"/api/v1/bookings\",status=\"201\"} 1"
    ));
    let (_, three) = scrape(&t, 3, &token).await;
    assert_eq!(
        sample(&three, "roomraft_bookings_total{outcome=\"conflicted\"}"),
        Some(1.0)
    );
    // The leader reports each follower's replication lag.
    let leader = t.get(1, "/api/v1/cluster", &admin).await.1["leader_id"]
        .as_u64()
        .unwrap();
    let (_, text) = scrape(&t, leader, &token).await;
    let lags = text
        .lines()
        .filter(|l| l.starts_with("roomraft_raft_replication_lag_entries{"))
        .count();
    assert_eq!(lags, 3, "one per member:\n{text}");
    check_ops_docs(&text);
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let t = TestNodes::start(22100).await;
    let r = t.http.get(t.url(1, "/health/live")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    let r = t
        .http
        .get(t.url(2, "/api/v1/nothing-here"))
        .header("x-request-id", "lb-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["x-request-id"],
        "lb-7f3a",
        "a proxy's id is kept"
    );
}

async fn get_as(t: &TestNodes, node: u64, path: &str, forwarded_for: &str) -> reqwest::Response {
    t.http
        .get(t.url(node, path))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let t = TestNodes::start_with(22110, |c| {
        c.limits.per_address_per_second = 1;
        c.limits.per_address_burst = 5;
        c.limits.sign_in_failures_per_account = 2;
        c.limits.sign_in_lock_max_seconds = 30;
        // The test client stands behind a trusted proxy at 127.0.0.1 and says who it is.
        c.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;

    // Per address: five requests pass, the sixth is refused; another address is unaffected.
    for _ in 0..5 {
        let r = get_as(&t, 1, "/api/v1/cluster", "198.51.100.1").await;
        assert_eq!(r.status(), 200);
    }
    let r = get_as(&t, 1, "/api/v1/cluster", "198.51.100.1").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["retry_after_seconds"], retry);
    assert_eq!(
        get_as(&t, 1, "/api/v1/cluster", "198.51.100.2")
            .await
            .status(),
        200
    );
    // A forged hop before the proxy's own does not escape the limit.
    let r = get_as(&t, 1, "/api/v1/cluster", "203.0.113.66, 198.51.100.1").await;
    assert_eq!(r.status(), 429);
    // Health checks are never limited.
    for _ in 0..10 {
        let r = get_as(&t, 1, "/health/ready", "198.51.100.1").await;
        assert_eq!(r.status(), 200);
    }

    // Sign-in: failures lock the account (whatever address they come from), briefly.
    let admin = t.tenant("limits").await;
    let (s, v) = t
        .send(
            "POST",
            2,
            "/api/v1/users",
            Some(&admin),
            Some(json!({
            "username": "ann", "name": "Ann", "email": "ann@limits.example", "role": "staff",
            "password": "correct horse battery"})),
            None,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let sign_in = |from: &'static str, password: &'static str| {
        let req = t
            .http
            .post(t.url(2, "/api/v1/session"))
            .header("x-forwarded-for", from)
            .json(&json!({"tenant": "limits", "login": "Ann", "password": password}));
        async move { req.send().await.unwrap() }
    };
    for (i, from) in ["192.0.2.1", "192.0.2.2"].into_iter().enumerate() {
        let r = sign_in(from, "wrong password!").await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    // The failure past the budget locks the account, and says so.
    let r = sign_in("192.0.2.3", "wrong password!").await;
    assert_eq!(r.status(), 429, "the failure that locks");
    let r = sign_in("192.0.2.4", "correct horse battery").await;
    assert_eq!(
        r.status(),
        429,
        "the account is locked even for the right password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("sign_in_account"));

    // The refusals are counted, on the node that made them.
    let (_, text) = scrape(&t, 2, &t.metrics_token()).await;
    assert_eq!(
        sample(
            &text,
            "roomraft_rate_limit_rejections_total{scope=\"sign_in_account\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "roomraft_security_events_total{kind=\"failed_sign_in\"}"
        ),
        Some(3.0)
    );
    let (_, one) = scrape(&t, 1, &t.metrics_token()).await;
    assert_eq!(
        sample(
            &one,
            "roomraft_rate_limit_rejections_total{scope=\"address\"}"
        ),
        Some(2.0)
    );
    // The bucket refills: the address is let back in (a refused request spends nothing).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get_as(&t, 1, "/api/v1/cluster", "198.51.100.1")
        .await
        .status()
        != 200
    {
        assert!(tokio::time::Instant::now() < deadline, "never let back in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
