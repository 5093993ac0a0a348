//! SIGKILL the leader under write load, restart it, and check that no acknowledged booking was lost
//! and no two bookings of a room overlap, on every node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roomraft_chaos_tests::DevCluster;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Acked {
    id: u64,
    room: u64,
    start: String,
    end: String,
}

/// Waits (with a deadline) until at least `n` writes have been acknowledged.
async fn wait_acked(acked: &Mutex<Vec<Acked>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} writes acknowledged within 30s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leader_under_load_loses_no_acknowledged_booking() {
    let mut c = DevCluster::start(23000, 3).await.unwrap();
    let rooms: Vec<u64> = c
        .get(1, "/api/v1/rooms")
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .take(4)
        .collect();
    assert_eq!(rooms.len(), 4);

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    // (sent, acknowledged) of the latest-sent successful write.
    let last_ok: Arc<Mutex<Option<(Instant, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let (http, admin, acked, last_ok, stop, rooms) = (
            c.http.clone(),
            c.admin.clone(),
            acked.clone(),
            last_ok.clone(),
            stop.clone(),
            rooms.clone(),
        );
        let urls: Vec<String> = (1..=3).map(|n| c.url(n, "/api/v1/bookings")).collect();
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Writers share rooms and draw overlapping slots, so contention is real.
                let room = rooms[((w + n) % 4) as usize];
                let minute = (n * 7 + w * 13) % (60 * 24 * 28);
                let start = jiff::Timestamp::from_second(roomraft_chaos_tests::workload::SLOT_ZERO + minute as i64 * 60 * 15).unwrap();
                let end = start.checked_add(jiff::SignedDuration::from_mins(20)).unwrap();
                let body = json!({"room_id": room, "start": start.to_string(), "end": end.to_string(), "title": format!("w{w}-{n}")});
                let key = format!("w{w}-{n}");
                // Retry the same logical booking (same key) through any node until it is decided.
                let deadline = Instant::now() + Duration::from_secs(15);
                let mut attempt = 0usize;
                while Instant::now() < deadline {
                    let url = &urls[(n as usize + attempt) % 3];
                    attempt += 1;
                    let sent = Instant::now();
                    match http.post(url).bearer_auth(&admin).header("Idempotency-Key", &key).json(&body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = r.json().await.unwrap();
                            acked.lock().unwrap().push(Acked { id: v["id"].as_u64().unwrap(), room, start: start.to_string(), end: end.to_string() });
                            // Remember when the request was sent, not when its answer came back:
                            // a reply from the old leader can arrive after the kill.
                            let mut last = last_ok.lock().unwrap();
                            if last.is_none_or(|(s, _)| s < sent) {
                                *last = Some((sent, Instant::now()));
                            }
                            break;
                        }
                        Ok(r) if r.status() == 409 => break,
                        Ok(r) if r.status().is_server_error() => {}
                        Ok(r) => panic!("unexpected status {} for {body}", r.status()),
                        Err(_) => {} // the node may be dead: unknown, retried with the same key
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    // Let load build, then SIGKILL the leader.
    wait_acked(&acked, 50).await;
    let leader = c.leader(1).await.unwrap();
    let survivor = if leader == 1 { 2 } else { 1 };
    c.sigkill(leader).unwrap();
    let killed_at = Instant::now();
    c.wait_refused(leader, Duration::from_secs(10))
        .await
        .unwrap();
    // Wait for a write that was sent after the kill and acknowledged (a condition with a deadline).
    let deadline = killed_at + Duration::from_secs(20);
    let recovered = loop {
        if let Some((sent, acked)) = *last_ok.lock().unwrap() {
            if sent > killed_at {
                break acked - killed_at;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded within 20s of killing leader {leader}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("leader {leader} killed; first write sent after the kill acknowledged {recovered:?} after it");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.leader(survivor).await {
            Ok(l) if l != leader => break,
            _ => assert!(
                Instant::now() < deadline,
                "node {survivor} still sees no new leader after 20s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Restart the killed node from its config and keep writing while it catches up.
    c.restart(leader).unwrap();
    c.wait_ready(leader, Duration::from_secs(30)).await.unwrap();
    let so_far = acked.lock().unwrap().len();
    wait_acked(&acked, so_far + 20).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "too little load to mean anything: {}",
        acked.len()
    );

    // Every node (the restarted one included) has every acknowledged booking, and no overlaps.
    for node in 1..=3u64 {
        let mut by_room: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for room in &rooms {
            let v = c
                .get(node, &format!("/api/v1/rooms/{room}/bookings"))
                .await
                .unwrap();
            by_room.insert(*room, v["bookings"].as_array().unwrap().clone());
        }
        for a in &acked {
            let found = by_room[&a.room]
                .iter()
                .find(|b| b["id"].as_u64() == Some(a.id));
            let b = found.unwrap_or_else(|| panic!("node {node} lost acknowledged booking {a:?}"));
            assert_eq!(
                (b["start"].as_str().unwrap(), b["end"].as_str().unwrap()),
                (a.start.as_str(), a.end.as_str())
            );
        }
        for (room, list) in &by_room {
            let mut spans: Vec<(jiff::Timestamp, jiff::Timestamp, u64)> = list
                .iter()
                .filter(|b| b["status"] == "active")
                .map(|b| {
                    (
                        b["start"].as_str().unwrap().parse().unwrap(),
                        b["end"].as_str().unwrap().parse().unwrap(),
                        b["id"].as_u64().unwrap(),
                    )
                })
                .collect();
            spans.sort();
            for pair in spans.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].0,
                    "node {node} room {room}: bookings {} and {} overlap",
                    pair[0].2,
                    pair[1].2
                );
            }
        }
    }
    eprintln!(
        "{} acknowledged bookings verified on all 3 nodes",
        acked.len()
    );
}
