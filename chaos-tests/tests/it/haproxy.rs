//! A real HAProxy, running docs/ops/haproxy.cfg, in front of a `roomraft dev` cluster: clients
//! book through the balancer while a node is SIGKILLed, and every error a client sees is counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roomraft_chaos_tests::haproxy::HaProxy;
use roomraft_chaos_tests::DevCluster;
use serde_json::{json, Value};

fn start_haproxy(c: &DevCluster, bind: &str) -> HaProxy {
    // The balancer's certificate comes from the cluster CA that clients already trust.
    let ca = roomraft_node::dev::load_or_create_ca(c.dir.path()).unwrap();
    let nodes: Vec<String> = (1..=3)
        .map(|n| format!("127.0.0.1:{}", c.port_base as u64 + n))
        .collect();
    HaProxy::start(c.dir.path(), &ca, bind, &nodes).unwrap()
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    /// Answers a client would see as failures: transport errors and 5xx.
    errors: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_hides_a_killed_node_from_clients() {
    let c = DevCluster::start(27000, 3).await.unwrap();
    let balancer = start_haproxy(&c, "127.0.0.1:27100");
    let lb = |path: &str| balancer.url(path);

    // Up: the balancer answers through a ready node.
    balancer
        .wait_ready(&c.http, Duration::from_secs(20))
        .await
        .unwrap();
    let rooms: Vec<u64> = c
        .http
        .get(lb("/api/v1/rooms"))
        .bearer_auth(&c.admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();

    let tally = Arc::new(Tally::default());
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for w in 0..6u64 {
        let (http, admin, tally, acked, stop, rooms) = (
            c.http.clone(),
            c.admin.clone(),
            tally.clone(),
            acked.clone(),
            stop.clone(),
            rooms.clone(),
        );
        let url = lb("/api/v1/bookings");
        let read = lb("/api/v1/day");
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Disjoint slots per client: every booking should succeed, so any failure is the
                // balancer's or the cluster's, not a conflict.
                let room = rooms[(w as usize) % rooms.len()];
                let start = jiff::Timestamp::from_second(roomraft_chaos_tests::workload::SLOT_ZERO + (n * 3600) as i64).unwrap();
                let end = start.checked_add(jiff::SignedDuration::from_mins(30)).unwrap();
                let body = json!({"room_id": room, "start": start.to_string(), "end": end.to_string(), "title": format!("lb{w}-{n}")});
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let r = http
                    .post(&url)
                    .bearer_auth(&admin)
                    .header("Idempotency-Key", format!("lb{w}-{n}"))
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap();
                        acked.lock().unwrap().push(v["id"].as_u64().unwrap());
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status().is_client_error() => {
                        panic!("unexpected {} for {body}", r.status())
                    }
                    _ => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // And a read, as the web pages would make.
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match http.get(&read).bearer_auth(&admin).send().await {
                    Ok(r) if r.status() == 200 => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let wait_ok = |at_least: u64| {
        let tally = tally.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while tally.ok.load(Ordering::Relaxed) < at_least {
                assert!(
                    Instant::now() < deadline,
                    "load stalled below {at_least} answers"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_ok(200).await;
    // Kill the leader: the hardest case (an election as well as a dead server).
    let leader = c.leader(1).await.unwrap();
    c.sigkill(leader).unwrap();
    c.wait_refused(leader, Duration::from_secs(10))
        .await
        .unwrap();
    let before = tally.ok.load(Ordering::Relaxed);
    wait_ok(before + 400).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let (sent, ok, errors) = (
        tally.sent.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    eprintln!("through haproxy: {sent} requests, {ok} answered, {errors} client-visible errors; node {leader} SIGKILLed");

    // Every acknowledged booking is there, read back through the balancer.
    let survivor = if leader == 1 { 2 } else { 1 };
    let acked = acked.lock().unwrap().clone();
    for id in &acked {
        let v = c
            .get(survivor, &format!("/api/v1/bookings/{id}"))
            .await
            .unwrap();
        assert_eq!(v["status"], "active", "booking {id}: {v}");
    }
    assert!(acked.len() > 100, "too little load: {}", acked.len());
    // The balancer retries on another node, so a killed node shows as (almost) nothing.
    assert!(
        errors * 100 <= sent,
        "{errors} of {sent} requests failed through haproxy"
    );
}
