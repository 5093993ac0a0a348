//! What a security probe found, each as the attack it was, over real TLS connections to a real
//! three-node cluster: clients that send slowly or not at all, over-size bodies over HTTP/1.1 and
//! HTTP/2, wrong passwords spread over nodes and spellings of the login, an Idempotency-Key
//! replayed by someone else, a new token's secret left cacheable, cross-site posts and sign-in
//! redirects off the site. (What goes through the load balancer is in the chaos suite's
//! `proxy.rs`.)

use std::sync::Arc;
use std::time::Duration;

use roomraft_node::config::Config;
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::harness::TestNodes;

/// A TLS connection to `node` offering only `alpn` (`http/1.1` or `h2`).
async fn tls(t: &TestNodes, node: u64, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let ca = std::fs::read(t.dir().join("ca.pem")).unwrap();
    let mut config = roomraft_cluster::tls::api_client_config(&ca).unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", t.port_base + node as u16)).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await
}

/// Reads until the server closes the connection; what it sent, or `None` if it was still open
/// at the deadline.
async fn until_closed(s: &mut (impl AsyncRead + Unpin), within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn short_deadlines(c: &mut Config) {
    c.connections.header_read_seconds = 1;
    c.connections.body_read_seconds = 1;
    c.connections.idle_seconds = 2;
    c.connections.per_address = 8;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_dropped_and_one_address_holds_few_connections() {
    let t = TestNodes::start_with(24000, short_deadlines).await;
    let wait = Duration::from_secs(20);

    // A connection that never sends a request.
    let mut idle = tls(&t, 1, b"http/1.1").await.unwrap();
    assert!(
        until_closed(&mut idle, wait).await.is_some(),
        "idle connection kept"
    );

    // Headers one line at a time, forever.
    let s = tls(&t, 1, b"http/1.1").await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let drip = tokio::spawn(async move {
        wr.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            wr.write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let answer = until_closed(&mut rd, wait).await;
    drip.abort();
    let answer = answer.expect("a request head that never ends is cut off");
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // A body one byte at a time: 408, and the connection closes.
    let s = tls(&t, 2, b"http/1.1").await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let drip = tokio::spawn(async move {
        wr.write_all(
            b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(b" ").await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    let answer = until_closed(&mut rd, wait).await;
    drip.abort();
    let answer = String::from_utf8_lossy(&answer.expect("a trickled body is cut off")).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");

    // HTTP/2: pings keep bytes flowing but make no request; the connection still closes.
    let s = tls(&t, 2, b"h2").await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let pings = tokio::spawn(async move {
        wr.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        wr.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await?; // SETTINGS, empty
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // PING: length 8, type 6, no flags, stream 0, eight bytes of data.
            wr.write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
                .await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    let closed = until_closed(&mut rd, wait).await;
    pings.abort();
    assert!(
        closed.is_some(),
        "an HTTP/2 connection with no request stayed open"
    );

    // One address holds at most `per_address` connections at once; a freed place is reusable.
    let mut open = Vec::new();
    let mut refused = false;
    for _ in 0..20 {
        let mut c = match tls(&t, 3, b"http/1.1").await {
            Ok(c) => c,
            Err(_) => {
                refused = true;
                break;
            }
        };
        // A refused connection is closed at once, before or just after the handshake.
        c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .ok();
        let mut buf = [0u8; 12];
        match tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => open.push(c),
            _ => {
                refused = true;
                break;
            }
        }
    }
    assert!(
        refused,
        "twenty connections from one address were all accepted"
    );
    assert!(open.len() <= 8, "{} connections open", open.len());
    drop(open.pop());
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(mut c) = tls(&t, 3, b"http/1.1").await {
            c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .ok();
            let mut buf = [0u8; 12];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await
            {
                if n > 0 {
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "a freed place was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    // Each refusal and each idle close is counted (the scrape may wait for places to free).
    let deadline = Instant::now() + wait;
    let text = loop {
        if let Ok(r) = t
            .http
            .get(t.url(3, "/metrics"))
            .bearer_auth(t.metrics_token())
            .send()
            .await
        {
            break r.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "node 3 never took a connection again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let refused = crate::ops::sample(
        &text,
        "roomraft_http_connections_closed_total{reason=\"per_address\"}",
    );
    assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_size_body_gets_a_json_413_over_http1_and_http2() {
    let t = TestNodes::start_with(24200, |c| c.max_body_bytes = 4096).await;
    let admin = t.tenant("big").await;
    let room = t.room(&admin, "Hall").await;
    let big = json!({"room_id": room, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z",
                     "title": "x".repeat(10_000)});
    let ca = std::fs::read(t.dir().join("ca.pem")).unwrap();
    let h1 = reqwest::Client::builder()
        .use_preconfigured_tls({
            let mut c = roomraft_cluster::tls::api_client_config(&ca).unwrap();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            c
        })
        .build()
        .unwrap();
    for (what, client) in [("HTTP/2", &t.http), ("HTTP/1.1", &h1)] {
        // Declared too large, and sent in chunks with no length at all.
        let declared = client
            .post(t.url(1, "/api/v1/bookings"))
            .bearer_auth(&admin)
            .json(&big)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
            .to_string()
            .into_bytes()
            .chunks(1000)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let streamed = client
            .post(t.url(2, "/api/v1/bookings"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer to a streamed body: {e}"));
        for r in [declared, streamed] {
            let version = r.version();
            assert_eq!(r.status(), 413, "{what}");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], "payload_too_large", "{what} {version:?}: {v}");
            assert_eq!(v["limit_bytes"], 4096);
        }
    }
    // A page's form gets the error page, not JSON.
    let r = t
        .http
        .post(t.url(3, "/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("school=big&login=a&password={}", "x".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

async fn sign_in(t: &TestNodes, node: u64, login: &str, password: &str) -> reqwest::Response {
    t.http
        .post(t.url(node, "/api/v1/session"))
        .json(&json!({"tenant": "lock", "login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_spread_over_nodes_and_spellings_lock_the_account_for_all() {
    let t = TestNodes::start_with(24400, |c| {
        c.limits.sign_in_failures_per_account = 3;
        c.limits.sign_in_lock_max_seconds = 120;
    })
    .await;
    let admin = t.tenant("lock").await;
    let ann = t.user(&admin, "ann", "staff").await;
    let r = sign_in(&t, 1, "ann", "correct horse battery").await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let change = |node: u64, current: &str| {
        t.http
            .post(t.url(node, "/api/v1/session/password"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": current, "new_password": "a brand new passphrase"}))
            .send()
    };
    // Two guesses of the current password, through two nodes, spend the account's budget…
    for node in [1, 2] {
        let r = change(node, "not my password").await.unwrap();
        assert_eq!(r.status(), 422, "node {node}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], "current_password");
    }
    // …as does a sign-in with the email on a third node; the next, spelt otherwise, locks.
    assert_eq!(
        sign_in(&t, 3, "ann@school.example", "guess one")
            .await
            .status(),
        401
    );
    let r = sign_in(&t, 2, "ANN", "guess two").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Locked everywhere, for every spelling, even with the right password.
    for (node, login) in [(1, "ann"), (2, "Ann@School.Example"), (3, "aNN")] {
        let r = sign_in(&t, node, login, "correct horse battery").await;
        assert_eq!(r.status(), 429, "node {node} {login}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "rate_limited");
    }
    let r = change(3, "correct horse battery").await.unwrap();
    assert_eq!(r.status(), 429, "a password change is locked out too");
    // The school's audit shows the lock.
    let (_, audit) = t
        .get(
            1,
            &format!("/api/v1/audit?object=user&object_id={ann}"),
            &admin,
        )
        .await;
    assert!(
        audit
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["action"] == "sign_in_locked"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_secrets_origins_and_redirects() {
    let t = TestNodes::start(24600).await;
    let admin = t.tenant("oak").await;
    let room = t.room(&admin, "Hall").await;

    // An Idempotency-Key belongs to whoever sent it: another principal reusing it gets an answer
    // of its own (here: the slot is taken), never the first principal's booking.
    let (s, tok) = t
        .send(
            "POST",
            1,
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "sync", "role": "staff"})),
            None,
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    let other = tok["token"].as_str().unwrap();
    let body = json!({"room_id": room, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z", "title": "Assembly"});
    let nodes = &t;
    let book = |node: u64, token: String| {
        let body = body.clone();
        async move {
            nodes
                .send(
                    "POST",
                    node,
                    "/api/v1/bookings",
                    Some(&token),
                    Some(body),
                    Some("k-1"),
                )
                .await
        }
    };
    let (s, first) = book(1, admin.clone()).await;
    assert_eq!(s, 201, "{first}");
    let (s, again) = book(2, admin.clone()).await;
    assert_eq!(
        (s, &again["id"]),
        (201, &first["id"]),
        "the sender's own retry"
    );
    let (s, theirs) = book(3, other.to_string()).await;
    assert_eq!(
        s, 409,
        "another principal's request with the same key: {theirs}"
    );
    assert_eq!(theirs["code"], "conflict");

    // A new token's secret, a new school's admin token, a session: never cacheable.
    let r = t
        .http
        .post(t.url(2, "/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "feed-reader", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    for path in ["/api/v1/rooms", "/api/v1/cluster", "/health/live"] {
        let r = t
            .http
            .get(t.url(1, path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let css = t
        .http
        .get(t.url(1, "/assets/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["cache-control"], "public, max-age=3600");

    // A form another site posts, to the page or the API, signs nobody in.
    t.user(&admin, "kim", "staff").await;
    let form = "school=oak&login=kim&password=correct+horse+battery&next=%2Ftoday";
    let no_redirects = reqwest::Client::builder()
        .use_preconfigured_tls(
            roomraft_cluster::tls::api_client_config(
                &std::fs::read(t.dir().join("ca.pem")).unwrap(),
            )
            .unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page_sign_in =
        |origin: Option<&'static str>, fetch_site: Option<&'static str>, body: String| {
            let mut req = no_redirects
                .post(t.url(1, "/sign-in"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            if let Some(f) = fetch_site {
                req = req.header("sec-fetch-site", f);
            }
            req.send()
        };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
        (Some("null"), Some("cross-site")),
    ] {
        let r = page_sign_in(origin, site, form.into()).await.unwrap();
        assert_eq!(r.status(), 403, "{origin:?} {site:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = t
        .http
        .post(t.url(1, "/api/v1/session"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"tenant":"oak","login":"kim","password":"correct horse battery"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "cross_site");
    // From this site, signing in works and goes back where it was asked to.
    let here = "https://127.0.0.1:24601";
    let r = page_sign_in(Some(here), Some("same-origin"), form.into())
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/today");

    // `next` that a browser would turn into another site goes to /today instead; a control
    // character answers the redirect, never a 500 after the session was made.
    for (next, location) in [
        ("%2F%09%2Fevil.example", "/today"),
        ("%2F%5Cevil.example", "/today"),
        ("%2F%2Fevil.example", "/today"),
        ("%2F.%2F%2Fevil.example", "/today"),
        ("%2Fday%0d%0aSet-Cookie%3A+x%3Dy", "/today"),
        ("%2Frooms%2F%C3%A9", "/rooms/%C3%A9"),
    ] {
        let body = format!("school=oak&login=kim&password=correct+horse+battery&next={next}");
        let r = page_sign_in(Some(here), None, body).await.unwrap();
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(r.headers()["location"], location, "{next}");
        assert!(r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("rr_session="));
    }
    // The sign-in form itself only carries a safe `next`.
    let page = no_redirects
        .get(t.url(2, "/sign-in?next=%2F%2Fevil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_and_past_bookings_are_refused_with_field_errors() {
    let t = TestNodes::start(24800).await;
    let admin = t.tenant("elm").await;
    let room = t.room(&admin, "Hall").await;
    for weak in [
        "aaaaaaaaaaaaaaaaaaaa",
        "                    ",
        "password12345678",
        "short one",
    ] {
        let (s, v) = t
            .send(
                "POST",
                1,
                "/api/v1/users",
                Some(&admin),
                Some(
                    json!({"username": "lee", "name": "Lee", "email": "lee@elm.example",
                            "role": "staff", "password": weak}),
                ),
                None,
            )
            .await;
        assert_eq!(
            (s, v["field"].as_str()),
            (422, Some("password")),
            "{weak:?}: {v}"
        );
    }
    // A booking that has ended: refused for staff and for an admin without a reason.
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let end = yesterday + jiff::SignedDuration::from_hours(1);
    let body = json!({"room_id": room, "start": yesterday.to_string(), "end": end.to_string(), "title": "Late entry"});
    let (s, v) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&admin),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!((s, v["rule"].as_str()), (409, Some("not_in_past")), "{v}");
    let mut with_reason = body.clone();
    with_reason["override_reason"] = json!("recorded after the event");
    let (s, v) = t
        .send(
            "POST",
            3,
            "/api/v1/bookings",
            Some(&admin),
            Some(with_reason),
            None,
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_over_its_quota_is_refused_clearly() {
    let t = TestNodes::start(25800).await;
    let admin = t.tenant("ash").await;
    let (_, mut q) = t.get(1, "/api/v1/cluster/quotas", &t.operator).await;
    q["rooms"] = json!(2);
    let (s, v) = t
        .send(
            "PUT",
            2,
            "/api/v1/cluster/quotas",
            Some(&t.operator),
            Some(q),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    t.room(&admin, "One").await;
    t.room(&admin, "Two").await;
    let (s, v) = t
        .send(
            "POST",
            3,
            "/api/v1/rooms",
            Some(&admin),
            Some(json!({"name": "Three", "category": "classroom", "capacity": 30})),
            None,
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        (v["code"].as_str(), v["quota"].as_str()),
        (Some("quota_exceeded"), Some("rooms"))
    );
    assert!(v["message"].as_str().unwrap().contains("at most 2"), "{v}");
    // Only the operator sees or sets quotas.
    assert_eq!(t.get(1, "/api/v1/cluster/quotas", &admin).await.0, 403);
}
