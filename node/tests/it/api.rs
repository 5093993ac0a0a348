use serde_json::json;

use crate::harness::{slot, TestNodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_contract_through_every_node() {
    let t = TestNodes::start(22000).await;
    // Health and cluster status need no token; without the operator's, the status says only
    // what a load balancer needs (no addresses, no indexes).
    assert_eq!(
        t.send("GET", 2, "/health/live", None, None, None).await.0,
        200
    );
    let (s, c) = t.send("GET", 3, "/api/v1/cluster", None, None, None).await;
    assert_eq!(s, 200);
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["leader_id", "node_id", "state"], "{c}");
    let (s, c) = t.get(3, "/api/v1/cluster", &t.operator).await;
    assert_eq!(s, 200);
    for field in [
        "node_id",
        "leader_id",
        "term",
        "last_applied_index",
        "members",
    ] {
        assert!(c.get(field).is_some(), "missing {field} in {c}");
    }
    assert_eq!(c["members"].as_array().unwrap().len(), 3);

    let admin = t.tenant("school-a").await;
    let room = t.room(&admin, "Room 1").await;
    let (s, rooms) = t.get(3, "/api/v1/rooms", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(rooms.as_array().unwrap().len(), 1);

    let (s, b) = t
        .send(
            "POST",
            1,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:00", "10:00")),
            None,
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    // Overlap through another node: 409 naming the booking it clashes with.
    let (s, e) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:30", "10:30")),
            None,
        )
        .await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["code"], "conflict");
    assert_eq!(e["conflicts_with"]["booking_id"], id);
    // Read on a third node right after the write sees it (linearizable by default).
    let path =
        format!("/api/v1/rooms/{room}/bookings?from=2037-03-02T00:00:00Z&to=2037-03-03T00:00:00Z");
    let (s, list) = t.get(3, &path, &admin).await;
    assert_eq!(s, 200);
    assert_eq!(list["bookings"].as_array().unwrap().len(), 1);
    let (s, _) = t.get(3, &format!("{path}&consistency=stale"), &admin).await;
    assert_eq!(s, 200);
    // Cancel frees the slot.
    let (s, c) = t.delete(3, &format!("/api/v1/bookings/{id}"), &admin).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")));
    let (s, _) = t.delete(1, &format!("/api/v1/bookings/{id}"), &admin).await;
    assert_eq!(s, 409);
    let (s, _) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:30", "10:30")),
            None,
        )
        .await;
    assert_eq!(s, 201);

    // Every node applied the same records: the operator's state digests agree, and only the
    // operator may read them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut digests = Vec::new();
        for node in 1..=3 {
            let (s, d) = t.get(node, "/api/v1/cluster/state", &t.operator).await;
            assert_eq!(s, 200, "{d}");
            digests.push(d);
        }
        if digests
            .iter()
            .all(|d| d["applied_index"] == digests[0]["applied_index"])
        {
            for d in &digests[1..] {
                assert_eq!(
                    d["sha256"], digests[0]["sha256"],
                    "{d} differs from {}",
                    digests[0]
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nodes never reached one index: {digests:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (s, e) = t.get(1, "/api/v1/cluster/state", &admin).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let t = TestNodes::start(22010).await;
    let admin = t.tenant("school-b").await;
    let room = t.room(&admin, "Hall").await;
    let cases = [
        (None, json!({}), 401, "unauthorized"),
        (
            Some("rr_wrong"),
            slot(room, "09:00", "10:00"),
            401,
            "unauthorized",
        ),
        (
            Some(admin.as_str()),
            slot(room, "10:00", "09:00"),
            422,
            "invalid",
        ),
        (
            Some(admin.as_str()),
            slot(room, "10:00", "10:00"),
            422,
            "invalid",
        ),
        (
            Some(admin.as_str()),
            json!({"room_id": room, "start": "tomorrow", "end": "2037-03-02T10:00:00Z", "title": "x"}),
            422,
            "invalid",
        ),
        (
            Some(admin.as_str()),
            json!({"room_id": room, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z"}),
            422,
            "invalid",
        ),
        (
            Some(admin.as_str()),
            json!({"room_id": room, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z", "title": " "}),
            422,
            "invalid",
        ),
        (
            Some(admin.as_str()),
            json!({"room_id": 999999, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z", "title": "x"}),
            404,
            "not_found",
        ),
        (
            Some(admin.as_str()),
            json!({"room_id": "seven"}),
            400,
            "bad_request",
        ),
    ];
    for (i, (token, body, status, code)) in cases.into_iter().enumerate() {
        let (s, e) = t
            .send(
                "POST",
                1 + (i as u64 % 3),
                "/api/v1/bookings",
                token,
                Some(body),
                None,
            )
            .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (status, Some(code)),
            "case {i}: {e}"
        );
    }
    // Not JSON at all.
    let resp = t
        .http
        .post(t.url(1, "/api/v1/bookings"))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An unusable Idempotency-Key.
    let (s, _) = t
        .send(
            "POST",
            1,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "09:00", "10:00")),
            Some("has space"),
        )
        .await;
    assert_eq!(s, 400);
    // An unknown consistency mode and an inverted window.
    let (s, e) = t
        .get(
            2,
            &format!("/api/v1/rooms/{room}/bookings?consistency=eventual"),
            &admin,
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (422, Some("consistency")));
    let (s, _) = t
        .get(
            2,
            &format!(
                "/api/v1/rooms/{room}/bookings?from=2037-03-03T00:00:00Z&to=2037-03-02T00:00:00Z"
            ),
            &admin,
        )
        .await;
    assert_eq!(s, 422);
    // Nothing was booked by any of it.
    let (_, list) = t
        .get(3, &format!("/api/v1/rooms/{room}/bookings"), &admin)
        .await;
    assert_eq!(list["bookings"].as_array().unwrap().len(), 0);
    // Operator-only endpoints refuse tenant tokens.
    let (s, _) = t
        .send(
            "POST",
            1,
            "/api/v1/tenants",
            Some(&admin),
            Some(json!({"slug": "x", "name": "x"})),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = t.delete(1, "/api/v1/cluster/members/2", &admin).await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_for_one_slot_give_one_booking() {
    let t = TestNodes::start(22020).await;
    let admin = t.tenant("school-c").await;
    let room = t.room(&admin, "Lab").await;
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let req = t
            .http
            .post(t.url(1 + i % 3, "/api/v1/bookings"))
            .bearer_auth(&admin)
            .json(&slot(room, "13:00", "14:00"));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_retried_on_another_node_books_once() {
    let t = TestNodes::start(22030).await;
    let admin = t.tenant("school-d").await;
    let room = t.room(&admin, "Music").await;
    let (s1, b1) = t
        .send(
            "POST",
            1,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "11:00", "12:00")),
            Some("retry-1"),
        )
        .await;
    let (s2, b2) = t
        .send(
            "POST",
            3,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "11:00", "12:00")),
            Some("retry-1"),
        )
        .await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2, "the retry returns the original booking");
    // The same key for a different request is refused.
    let (s, e) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&admin),
            Some(slot(room, "15:00", "16:00")),
            Some("retry-1"),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (_, list) = t
        .get(2, &format!("/api/v1/rooms/{room}/bookings"), &admin)
        .await;
    assert_eq!(list["bookings"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_or_changes_another_tenants_data() {
    let t = TestNodes::start(22040).await;
    let a = t.tenant("school-e").await;
    let b = t.tenant("school-f").await;
    let room = t.room(&a, "A's room").await;
    let (_, booking) = t
        .send(
            "POST",
            1,
            "/api/v1/bookings",
            Some(&a),
            Some(slot(room, "09:00", "10:00")),
            None,
        )
        .await;
    let id = booking["id"].as_u64().unwrap();
    let reads = [
        format!("/api/v1/rooms/{room}"),
        format!("/api/v1/rooms/{room}/bookings"),
        format!("/api/v1/bookings/{id}"),
    ];
    for path in &reads {
        assert_eq!(t.get(2, path, &b).await.0, 404, "{path}");
        assert_eq!(t.get(2, path, &a).await.0, 200, "{path}");
    }
    let (_, rooms) = t.get(3, "/api/v1/rooms", &b).await;
    assert_eq!(rooms.as_array().unwrap().len(), 0);
    assert_eq!(
        t.send(
            "POST",
            1,
            "/api/v1/bookings",
            Some(&b),
            Some(slot(room, "11:00", "12:00")),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        t.delete(1, &format!("/api/v1/bookings/{id}"), &b).await.0,
        404
    );
    let (_, still) = t.get(1, &format!("/api/v1/bookings/{id}"), &a).await;
    assert_eq!(still["status"], "active");
}
