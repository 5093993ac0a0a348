//! Attacks through the real HAProxy of docs/ops/haproxy.cfg in front of real `roomraft serve`
//! processes, as a security probe made them: a made-up `X-Forwarded-For` per request to escape
//! every per-address limit, log lines forged through a login, a sign-in form posted by another
//! site, a redirect off the site after signing in; and a revoked token used on a follower that
//! has not yet applied the revocation.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use roomraft_chaos_tests::cluster::Cluster;
use roomraft_chaos_tests::haproxy::{shipped_config, HaProxy};
use serde_json::{json, Value};

/// The test's clients connect to the balancer from their own loopback addresses, which are not
/// trusted proxies; the balancer reaches the nodes from 127.0.0.1, which is.
fn client_from(c: &Cluster, addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(c.ca().cert_pem().as_bytes()).unwrap())
        .local_address(addr.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn balancer(c: &Cluster, bind: &str, config: &std::path::Path) -> HaProxy {
    let nodes: Vec<String> = (1..=3)
        .map(|n| format!("127.0.0.1:{}", c.ports(n).client))
        .collect();
    HaProxy::start_config(c.dir.path(), c.ca(), bind, &nodes, config).unwrap()
}

fn node_logs(c: &Cluster) -> String {
    (1..=3)
        .map(|n| {
            std::fs::read_to_string(c.dir.path().join(format!("node{n}/node.log")))
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_cannot_be_used_to_escape_limits_forge_logs_or_sign_in_for_another_site() {
    let c = Cluster::start_with(25000, 3, 1, |cfg| {
        cfg.limits = Default::default();
        cfg.limits.per_address_per_second = 2;
        cfg.limits.per_address_burst = 10;
        cfg.limits.sign_in_per_address_per_minute = 1;
        cfg.limits.sign_in_per_address_burst = 3;
        cfg.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await
    .unwrap();
    // The shipped configuration, and the one before this fix (which kept the client's own
    // X-Forwarded-For line): the nodes must hold either way.
    let shipped = balancer(&c, "127.0.0.1:25090", &shipped_config());
    let old_text = std::fs::read_to_string(shipped_config())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("del-header"))
        .collect::<Vec<_>>()
        .join("\n");
    let old_config = c.dir.path().join("haproxy-old.cfg");
    std::fs::write(&old_config, old_text + "\n").unwrap();
    let old = balancer(&c, "127.0.0.1:25091", &old_config);
    let probe = client_from(&c, "127.0.0.5");
    for lb in [&shipped, &old] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while probe
            .get(lb.url("/health/ready"))
            .send()
            .await
            .map(|r| r.status())
            .ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(
                Instant::now() < deadline,
                "balancer not ready: {}",
                lb.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A made-up X-Forwarded-For on every request escapes no per-address limit. (Limits are per
    // node and the balancer spreads requests over three, so the client gets three bursts.)
    for (lb, from) in [(&shipped, "127.0.0.3"), (&old, "127.0.0.4")] {
        let client = client_from(&c, from);
        let mut limited = 0;
        for i in 0..40 {
            let r = client
                .get(lb.url("/api/v1/cluster"))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                limited += 1;
            }
        }
        assert!(
            limited >= 5,
            "{from} through {}: only {limited} of 40 refused",
            lb.url("")
        );
        // Sign-in attempts too (from another address, whose request budget is whole).
        let from = if from.ends_with(".3") {
            "127.0.0.13"
        } else {
            "127.0.0.14"
        };
        let client = client_from(&c, from);
        let mut limited = 0;
        for i in 0..15 {
            let r = client
                .post(lb.url("/api/v1/session"))
                .header("x-forwarded-for", format!("192.0.2.{i}"))
                .json(&json!({"tenant": "chaos", "login": format!("nobody{i}"), "password": "wrong guess, really"}))
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                let v: Value = r.json().await.unwrap();
                assert!(
                    v["message"].as_str().unwrap().contains("sign_in_address"),
                    "{v}"
                );
                limited += 1;
            }
        }
        assert!(
            limited >= 3,
            "sign-ins from {from}: only {limited} of 15 refused"
        );
    }

    // A login that holds a newline and terminal escapes starts no line of its own in a log.
    let forger = client_from(&c, "127.0.0.6");
    let forged = "ghost\n2037-01-01T00:00:00.000000Z  INFO roomraft: operator signed in\u{1b}[2J";
    let r = forger
        .post(shipped.url("/api/v1/session"))
        .json(&json!({"tenant": "chaos", "login": forged, "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let logs = node_logs(&c);
        if logs.contains("ghost") {
            break logs;
        }
        assert!(Instant::now() < deadline, "the refusal was never logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !logs.lines().any(|l| l.starts_with("2037-01-01T00:00:00")),
        "a forged line: {logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "a terminal escape reached the log"
    );
    assert!(
        logs.contains(r"ghost\n2037-01-01"),
        "the login is logged, escaped"
    );

    // Another site's form cannot sign a visitor in (login CSRF), through the balancer.
    let browser = client_from(&c, "127.0.0.7");
    let form = "school=chaos&login=nobody&password=whatever+it+is";
    let r = browser
        .post(shipped.url("/sign-in"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // The balancer's own origin is this site: the form is let through (to a wrong password).
    let r = browser
        .post(shipped.url("/sign-in"))
        .header("origin", shipped.url("").trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{form}&next=%2F%09%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("evil.example"),
        "the form carries an off-site next: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_once_by_a_follower_that_has_not_applied_the_revocation() {
    let c = Cluster::start(25400, 3, 1).await.unwrap();
    let leader = c.leader(Duration::from_secs(20)).await.unwrap();
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    // What the leader sends the follower arrives 300 ms late (heartbeats too: still often
    // enough that nobody stands for election).
    c.net
        .set_delay(leader, follower, Duration::from_millis(300));
    let tok = c
        .post(
            leader,
            "/api/v1/tokens",
            &c.admin.clone(),
            "revoke-me",
            json!({"name": "integration", "role": "staff"}),
        )
        .await
        .unwrap();
    let secret = tok["token"].as_str().unwrap().to_string();
    let id = tok["id"].as_u64().unwrap();
    let read = || async {
        c.http
            .get(c.url(follower, "/api/v1/rooms"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    // The follower knows the token (and the client's connection to it is warm).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if read().await == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the follower never accepted the new token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .http
        .delete(c.url(leader, &format!("/api/v1/tokens/{id}")))
        .bearer_auth(&c.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // At once, before the revocation can have reached the follower's state: a change through it
    // is refused (its own state still has the token live, but apply checks the token again at the
    // command's place in the log, after the revocation)…
    let start =
        jiff::Timestamp::from_second(roomraft_chaos_tests::workload::SLOT_ZERO + 86_400).unwrap();
    let r = c
        .http
        .post(c.url(follower, "/api/v1/bookings"))
        .bearer_auth(&secret)
        .json(&json!({"room_id": c.rooms[0], "start": start.to_string(),
                      "end": (start + jiff::SignedDuration::from_mins(30)).to_string(),
                      "title": "after revocation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a revoked token booked through node {follower}"
    );
    // …and so is a read (the follower waits until it has applied the revocation).
    assert_eq!(
        read().await,
        401,
        "a revoked token was accepted by node {follower}"
    );
    c.net.heal();
}
