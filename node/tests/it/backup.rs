//! Backups on a running cluster: the leader-only schedule across a failover, and the full
//! disaster-recovery drill (bookings → backup → wipe everything → restore → a new cluster).

use std::collections::BTreeMap;
use std::time::Duration;

use roomraft_node::config::Config;
use roomraft_node::dev::{load_or_create_ca, node_info, prepare_node};
use roomraft_node::server::Node;
use serde_json::{json, Value};

use crate::harness::TestNodes;

async fn wait_for<T>(what: &str, within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scheduled backup ids at the destination, in order.
async fn scheduled(t: &TestNodes, via: u64) -> Vec<String> {
    let (s, v) = t.get(via, "/api/v1/cluster/backups", &t.operator).await;
    assert_eq!(s, 200, "{v}");
    v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .filter(|id| id.ends_with("-scheduled"))
        .collect()
}

fn slot_second(id: &str) -> i64 {
    let t = id.trim_end_matches("-scheduled");
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", t)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_runs_on_the_leader_only_and_carries_on_after_it_dies_without_gap_or_duplicate(
) {
    // Slots longer than a failover (p99 about 2.6 s, docs/reliability.md), so a new leader is
    // elected inside the slot its predecessor died in.
    const EVERY: i64 = 6;
    let t = TestNodes::start_with(28000, |c: &mut Config| {
        c.backup.as_mut().unwrap().interval_seconds = EVERY as u64;
    })
    .await;
    let before = wait_for(
        "two scheduled backups",
        Duration::from_secs(60),
        async || {
            let ids = scheduled(&t, 1).await;
            (ids.len() >= 2).then_some(ids)
        },
    )
    .await;
    let leader = t.leader(1).await.unwrap();
    let survivor = if leader == 1 { 2 } else { 1 };
    t.stop(leader).await;
    let killed_at = jiff::Timestamp::now().as_second();
    let after = wait_for(
        "three more scheduled backups after the leader stopped",
        Duration::from_secs(90),
        async || {
            let ids = scheduled(&t, survivor).await;
            let later = ids.iter().filter(|id| slot_second(id) > killed_at).count();
            (later >= 3).then_some(ids)
        },
    )
    .await;
    assert!(after.starts_with(&before[..1]), "{before:?} then {after:?}");
    let slots: Vec<i64> = after.iter().map(|id| slot_second(id)).collect();
    for w in slots.windows(2) {
        assert_eq!(w[1] - w[0], EVERY, "a gap or a duplicate slot in {after:?}");
    }
    // Every scheduled backup was taken by a leader, each slot exactly once, as the replicated
    // claims record.
    let (_, v) = t
        .get(survivor, "/api/v1/cluster/backups", &t.operator)
        .await;
    assert!(v["last_scheduled"]["index"].as_u64().unwrap() > 0, "{v}");
    let (_, metrics) = t.get(survivor, "/metrics", &t.operator).await;
    let text = metrics.as_str().unwrap();
    let last = text
        .lines()
        .find_map(|l| l.strip_prefix("roomraft_backup_last_success_timestamp_seconds "))
        .unwrap();
    assert!(last.parse::<i64>().unwrap() >= killed_at - EVERY, "{last}");
}

/// Every booking of every room, as the API shows them.
async fn all_bookings(http: &reqwest::Client, base: &str, admin: &str, rooms: &[u64]) -> Value {
    let mut all = serde_json::Map::new();
    for room in rooms {
        let r = http
            .get(format!("{base}/api/v1/rooms/{room}/bookings"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        all.insert(room.to_string(), v["bookings"].clone());
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_bookings_backup_wipe_restore_and_a_new_three_node_cluster_answers_identically() {
    // The old cluster, with a school's bookings.
    let t = TestNodes::start(28020).await;
    let admin = t.tenant("drill").await;
    let mut rooms = Vec::new();
    for name in ["Hall", "Lab 1", "Minibus"] {
        rooms.push(t.room(&admin, name).await);
    }
    for day in 0..10u32 {
        for (i, room) in rooms.iter().enumerate() {
            let body = json!({
                "room_id": room,
                "start": format!("2038-03-{:02}T{:02}:00:00Z", day + 1, 9 + i),
                "end": format!("2038-03-{:02}T{:02}:45:00Z", day + 1, 9 + i),
                "title": format!("Booking {day}/{i}"),
            });
            let (s, v) = t
                .send(
                    "POST",
                    1 + (day as u64 % 3),
                    "/api/v1/bookings",
                    Some(&admin),
                    Some(body),
                    None,
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
    }
    let before = all_bookings(&t.http, &t.url(3, ""), &admin, &rooms).await;
    assert_eq!(
        before
            .as_object()
            .unwrap()
            .values()
            .map(|b| b.as_array().unwrap().len())
            .sum::<usize>(),
        30
    );

    // A backup through the CLI, as an operator would take one.
    let bin = env!("CARGO_BIN_EXE_roomraft");
    let dir = t.dir().to_path_buf();
    let out = std::process::Command::new(bin)
        .args(["backup", "now", "--url", &t.url(2, ""), "--ca"])
        .arg(dir.join("ca.pem"))
        .arg("--token-file")
        .arg(dir.join("operator.token"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let backup_id = manifest["id"].as_str().unwrap().to_string();
    let old_cluster = manifest["cluster_id"].as_str().unwrap().to_string();

    // Lose the whole site: every node and its data. Only the backups and the key survive
    // (offsite), and the CA for the new nodes' certificates.
    for id in 1..=3 {
        t.stop(id).await;
    }
    let offsite = tempfile::tempdir().unwrap();
    let backups = offsite.path().join("backups");
    std::fs::rename(dir.join("backups"), &backups).unwrap();
    std::fs::copy(dir.join("backup.key"), offsite.path().join("backup.key")).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "ca.key", "operator.token", "backup.key"] {
        std::fs::copy(dir.join(f), ca_dir.path().join(f)).unwrap();
    }
    let http = t.http.clone();
    drop(t);

    let out = std::process::Command::new(bin)
        .args([
            "backup",
            "verify",
            "--latest",
            "--restore-check",
            "--destination",
        ])
        .arg(&backups)
        .arg("--key-file")
        .arg(offsite.path().join("backup.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("restore check passed"));

    // A new cluster on other ports: restore node 1, start it, then add two fresh nodes.
    let base = 28040;
    let new_dir = ca_dir.path();
    let ca = load_or_create_ca(new_dir).unwrap();
    let operator = std::fs::read_to_string(new_dir.join("operator.token")).unwrap();
    let mut configs = Vec::new();
    for id in 1..=3 {
        let path = prepare_node(new_dir, &ca, id, base, BTreeMap::new(), operator.trim()).unwrap();
        configs.push(Config::load(&path).unwrap());
    }
    let info = node_info(base, 1);
    let restore = || {
        std::process::Command::new(bin)
            .args(["restore", "--latest", "--from"])
            .arg(&backups)
            .arg("--key-file")
            .arg(offsite.path().join("backup.key"))
            .arg("--data-dir")
            .arg(&configs[0].cluster.data_dir)
            .args(["--node-id", "1", "--peer-addr", &info.peer_addr])
            .args(["--client-addr", &info.client_addr])
            .output()
            .unwrap()
    };
    let out = restore();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&backup_id), "{said}");
    // Restoring again into the same folder is refused.
    let again = restore();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let mut nodes = Vec::new();
    for c in configs {
        nodes.push(Node::start(c).await.unwrap());
    }
    let url = |id: u64| format!("https://127.0.0.1:{}", base as u64 + id);
    wait_for(
        "the restored node to lead",
        Duration::from_secs(30),
        async || {
            let r = http
                .get(format!("{}/health/ready", url(1)))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    for id in 2..=3u64 {
        let n = node_info(base, id);
        let r = http
            .post(format!("{}/api/v1/cluster/learners", url(1)))
            .bearer_auth(operator.trim())
            .json(&json!({"id": id, "peer_addr": n.peer_addr, "client_addr": n.client_addr}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let r = http
        .post(format!("{}/api/v1/cluster/voters", url(1)))
        .bearer_auth(operator.trim())
        .json(&json!({"ids": [2, 3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Every node of the new cluster answers with exactly the bookings the old one had.
    for id in 1..=3u64 {
        let after = all_bookings(&http, &url(id), &admin, &rooms).await;
        assert_eq!(after, before, "node {id}");
    }
    // It is a new cluster that knows where it came from, and it takes new bookings whose ids
    // do not collide with restored ones.
    let r = http
        .get(format!("{}/api/v1/cluster/backups", url(2)))
        .bearer_auth(operator.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/api/v1/bookings", url(3)))
        .bearer_auth(&admin)
        .json(&json!({"room_id": rooms[0], "start": "2038-03-01T13:00:00Z", "end": "2038-03-01T14:00:00Z", "title": "After the restore"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let new_id = created["id"].as_u64().unwrap();
    let old_ids: Vec<u64> = before
        .as_object()
        .unwrap()
        .values()
        .flat_map(|b| {
            b.as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_u64().unwrap())
        })
        .collect();
    assert!(
        old_ids.iter().all(|&o| o < new_id),
        "{new_id} vs {old_ids:?}"
    );
    let r = http
        .post(format!("{}/api/v1/cluster/backups", url(1)))
        .bearer_auth(operator.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m: Value = r.json().await.unwrap();
    assert_ne!(
        m["cluster_id"].as_str().unwrap(),
        old_cluster,
        "a restore makes a new cluster identity"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}
