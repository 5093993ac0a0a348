//! The school domain through the API on a real three-node cluster: sign-in, sessions and CSRF,
//! tenant isolation on every route, the timetable import and views, series, exports and feeds.

use serde_json::{json, Value};

use crate::harness::TestNodes;

/// A raw request with optional bearer token, cookie and CSRF header; returns status, headers, body.
async fn raw(
    t: &TestNodes,
    method: &str,
    node: u64,
    path: &str,
    auth: (Option<&str>, Option<&str>, Option<&str>),
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = t.http.request(method.parse().unwrap(), t.url(node, path));
    let (token, cookie, csrf) = auth;
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", format!("rr_session={c}"));
    }
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

async fn post(t: &TestNodes, token: &str, path: &str, body: Value) -> Value {
    let (s, v) = t.send("POST", 1, path, Some(token), Some(body), None).await;
    assert!(s == 200 || s == 201, "POST {path}: {s} {v}");
    v
}

async fn put(t: &TestNodes, token: &str, path: &str, body: Value) -> Value {
    let (s, v) = t.send("PUT", 2, path, Some(token), Some(body), None).await;
    assert_eq!(s, 200, "PUT {path}: {v}");
    v
}

/// Spring term 2037 (A/B weeks, half term 16–20 Feb) with P1–P3 on weekdays.
async fn calendar(t: &TestNodes, admin: &str) {
    put(
        t,
        admin,
        "/api/v1/calendar/week-cycle",
        json!({"labels": ["A", "B"]}),
    )
    .await;
    let y = post(
        t,
        admin,
        "/api/v1/calendar/years",
        json!({"name": "2036/37", "start": "2036-09-01", "end": "2037-08-31"}),
    )
    .await;
    let year = y["years"][0]["id"].as_u64().unwrap();
    post(t, admin, "/api/v1/calendar/terms", json!({"year_id": year, "name": "Spring", "start": "2037-01-05", "end": "2037-03-27", "first_week": "A"})).await;
    post(
        t,
        admin,
        "/api/v1/calendar/closures",
        json!({"name": "Half term", "start": "2037-02-16", "end": "2037-02-20"}),
    )
    .await;
    t.periods(admin).await;
}

async fn sign_in(
    t: &TestNodes,
    node: u64,
    tenant: &str,
    login: &str,
    password: &str,
) -> (u16, Option<(String, String)>, reqwest::header::HeaderMap) {
    let (s, h, v) = raw(
        t,
        "POST",
        node,
        "/api/v1/session",
        (None, None, None),
        Some(json!({"tenant": tenant, "login": login, "password": password})),
    )
    .await;
    let session = h
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.strip_prefix("rr_session="))
        .and_then(|c| c.split(';').next())
        .map(|c| {
            (
                c.to_string(),
                v["csrf_token"].as_str().unwrap_or_default().to_string(),
            )
        });
    (s, session, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_csrf_and_sign_out() {
    let t = TestNodes::start(22050).await;
    let admin = t.tenant("school-s").await;
    let room = t.room(&admin, "S1").await;
    let jo = t.user(&admin, "jo", "staff").await;
    t.user(&admin, "site", "viewer").await;

    // Wrong password and unknown user: the same 401 and message.
    let (s1, _, _) = sign_in(&t, 1, "school-s", "jo", "wrong password!").await;
    let (s2, _, _) = sign_in(&t, 1, "school-s", "nobody", "wrong password!").await;
    let (s3, _, _) = sign_in(&t, 1, "no-such-school", "jo", "correct horse battery").await;
    assert_eq!((s1, s2, s3), (401, 401, 401));

    // Sign in by email on node 1; the session works on node 3 (it is replicated state).
    let (s, session, h) = sign_in(
        &t,
        1,
        "school-s",
        "JO@school.example",
        "correct horse battery",
    )
    .await;
    assert_eq!(s, 200);
    let cookie = h.get("set-cookie").unwrap().to_str().unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let (c, csrf) = session.unwrap();
    let (s, _, me) = raw(
        &t,
        "GET",
        3,
        "/api/v1/session",
        (None, Some(&c), None),
        None,
    )
    .await;
    assert_eq!((s, me["user"]["id"].as_u64()), (200, Some(jo)), "{me}");

    // A change without the CSRF header, or with a wrong one, is refused and changes nothing.
    let booking = json!({"room_id": room, "start": "2037-03-02T09:00:00Z", "end": "2037-03-02T10:00:00Z", "title": "Club"});
    let (s, _, v) = raw(
        &t,
        "POST",
        2,
        "/api/v1/bookings",
        (None, Some(&c), None),
        Some(booking.clone()),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("csrf")));
    let (s, _, _) = raw(
        &t,
        "POST",
        2,
        "/api/v1/bookings",
        (None, Some(&c), Some("forged")),
        Some(booking.clone()),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, v) = raw(
        &t,
        "POST",
        2,
        "/api/v1/bookings",
        (None, Some(&c), Some(&csrf)),
        Some(booking),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["user_id"].as_u64(), Some(jo));
    let (_, _, mine) = raw(
        &t,
        "GET",
        3,
        "/api/v1/me/bookings",
        (None, Some(&c), None),
        None,
    )
    .await;
    assert_eq!(
        mine.as_array().map(Vec::len),
        Some(1),
        "my bookings list my future booking: {mine}"
    );

    // A viewer signs in but cannot book.
    let (_, viewer, _) = sign_in(&t, 2, "school-s", "site", "correct horse battery").await;
    let (vc, vcsrf) = viewer.unwrap();
    let (s, _, _) = raw(&t, "POST", 2, "/api/v1/bookings", (None, Some(&vc), Some(&vcsrf)),
        Some(json!({"room_id": room, "start": "2037-03-03T09:00:00Z", "end": "2037-03-03T10:00:00Z", "title": "x"}))).await;
    assert_eq!(s, 403);

    // A password change keeps this session and ends the user's others.
    let (_, second, _) = sign_in(&t, 3, "school-s", "jo", "correct horse battery").await;
    let (c2, _) = second.unwrap();
    let (s, _, v) = raw(
        &t,
        "POST",
        1,
        "/api/v1/session/password",
        (None, Some(&c), Some(&csrf)),
        Some(
            json!({"current_password": "not it at all", "new_password": "a brand new passphrase"}),
        ),
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("current_password")));
    let (s, _, _) = raw(&t, "POST", 1, "/api/v1/session/password", (None, Some(&c), Some(&csrf)),
        Some(json!({"current_password": "correct horse battery", "new_password": "a brand new passphrase"}))).await;
    assert_eq!(s, 200);
    assert_eq!(
        raw(
            &t,
            "GET",
            2,
            "/api/v1/session",
            (None, Some(&c), None),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        raw(
            &t,
            "GET",
            2,
            "/api/v1/session",
            (None, Some(&c2), None),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        sign_in(&t, 1, "school-s", "jo", "correct horse battery")
            .await
            .0,
        401
    );

    // An admin signs Jo out everywhere.
    let (s, _) = t
        .send(
            "POST",
            3,
            &format!("/api/v1/users/{jo}/sign-out"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        raw(
            &t,
            "GET",
            1,
            "/api/v1/session",
            (None, Some(&c), None),
            None
        )
        .await
        .0,
        401
    );

    // Sign out clears the cookie and ends the session.
    let (_, again, _) = sign_in(&t, 1, "school-s", "jo", "a brand new passphrase").await;
    let (c3, csrf3) = again.unwrap();
    let (s, h, _) = raw(
        &t,
        "DELETE",
        2,
        "/api/v1/session",
        (None, Some(&c3), Some(&csrf3)),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(h
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        raw(
            &t,
            "GET",
            1,
            "/api/v1/session",
            (None, Some(&c3), None),
            None
        )
        .await
        .0,
        401
    );

    // A suspended tenant's credentials stop working.
    let tenant = me["tenant"]["id"].as_u64().unwrap();
    let (s, _) = t
        .send(
            "PATCH",
            1,
            &format!("/api/v1/tenants/{tenant}"),
            Some(&t.operator),
            Some(json!({"suspended": true})),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // Tokens are checked against the node's own state first: wait out the replication lag.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.get(2, "/api/v1/rooms", &admin).await.0 != 401 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the suspended tenant's token still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Its users can no longer sign in.
    assert_eq!(
        sign_in(&t, 3, "school-s", "jo", "a brand new passphrase")
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_route_hides_another_tenants_objects() {
    let t = TestNodes::start(22060).await;
    let a = t.tenant("school-g").await;
    let b = t.tenant("school-h").await;
    calendar(&t, &a).await;
    let room = t.room(&a, "G1").await;
    let dept = post(&t, &a, "/api/v1/departments", json!({"name": "Maths"})).await["id"]
        .as_u64()
        .unwrap();
    let user_id = t.user(&a, "gina", "staff").await;
    let token = post(
        &t,
        &a,
        "/api/v1/tokens",
        json!({"name": "mis", "role": "staff"}),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let cal = post(
        &t,
        &a,
        "/api/v1/calendar/closures",
        json!({"name": "INSET", "start": "2037-01-05"}),
    )
    .await;
    let closure = cal["closures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "INSET")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let lesson = post(
        &t,
        &a,
        "/api/v1/lessons",
        json!({"room_id": room, "weekday": "Mon", "period": "P1", "subject": "Maths"}),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let booking = post(
        &t,
        &a,
        "/api/v1/bookings",
        json!({"room_id": room, "date": "2037-03-03", "period": "P2", "title": "Club"}),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let series_body = json!({"room_id": room, "first_date": "2037-03-04", "until": "2037-03-18", "weekdays": ["Wed"], "period": "P3", "title": "Choir"});
    let series = post(&t, &a, "/api/v1/series", series_body.clone()).await["id"]
        .as_u64()
        .unwrap();
    let feed = post(&t, &a, "/api/v1/feeds", json!({"room_id": room})).await["id"]
        .as_u64()
        .unwrap();
    let audit_before = t
        .get(1, "/api/v1/audit?limit=100000", &a)
        .await
        .1
        .as_array()
        .unwrap()
        .len();

    // Every route naming one of A's objects answers B's admin with 404 and changes nothing.
    let by_id: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/rooms/{room}"), None),
        (
            "PATCH",
            format!("/api/v1/rooms/{room}"),
            Some(json!({"name": "mine"})),
        ),
        ("GET", format!("/api/v1/rooms/{room}/bookings"), None),
        (
            "GET",
            format!("/api/v1/rooms/{room}/day?date=2037-03-02"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/rooms/{room}/week?date=2037-03-02"),
            None,
        ),
        ("GET", format!("/api/v1/bookings/{booking}"), None),
        ("DELETE", format!("/api/v1/bookings/{booking}"), None),
        (
            "DELETE",
            format!("/api/v1/bookings/{booking}?scope=series"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/bookings/{booking}/decision"),
            Some(json!({"approve": false})),
        ),
        ("GET", format!("/api/v1/series/{series}"), None),
        ("GET", format!("/api/v1/users/{user_id}"), None),
        (
            "PATCH",
            format!("/api/v1/users/{user_id}"),
            Some(json!({"active": false})),
        ),
        (
            "POST",
            format!("/api/v1/users/{user_id}/password"),
            Some(json!({"new_password": "taken over by b!"})),
        ),
        ("POST", format!("/api/v1/users/{user_id}/sign-out"), None),
        ("DELETE", format!("/api/v1/departments/{dept}"), None),
        ("DELETE", format!("/api/v1/tokens/{token}"), None),
        ("DELETE", format!("/api/v1/calendar/items/{closure}"), None),
        ("DELETE", format!("/api/v1/lessons/{lesson}"), None),
        (
            "PUT",
            format!("/api/v1/lessons/{lesson}/releases/2037-03-02"),
            None,
        ),
        (
            "DELETE",
            format!("/api/v1/lessons/{lesson}/releases/2037-03-02"),
            None,
        ),
        ("DELETE", format!("/api/v1/feeds/{feed}"), None),
        (
            "POST",
            "/api/v1/bookings".into(),
            Some(
                json!({"room_id": room, "start": "2037-03-05T09:00:00Z", "end": "2037-03-05T10:00:00Z", "title": "x"}),
            ),
        ),
        (
            "POST",
            "/api/v1/series/preview".into(),
            Some(series_body.clone()),
        ),
        ("POST", "/api/v1/series".into(), Some(series_body.clone())),
        (
            "POST",
            "/api/v1/feeds".into(),
            Some(json!({"room_id": room})),
        ),
        (
            "POST",
            "/api/v1/feeds".into(),
            Some(json!({"user_id": user_id})),
        ),
    ];
    for (method, path, body) in &by_id {
        let (s, v) = t.send(method, 3, path, Some(&b), body.clone(), None).await;
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    // Creating a lesson in A's room is refused (the room is not B's).
    let (s, _) = t.send("POST", 2, "/api/v1/lessons", Some(&b), Some(json!({"room_id": room, "weekday": 2, "start": "09:00", "end": "10:00", "subject": "x"})), None).await;
    assert!(s == 404 || s == 422, "{s}");
    // B's lists never show A's objects.
    let a_ids = [
        room, dept, user_id, token, closure, lesson, booking, series, feed,
    ]
    .map(|i| i.to_string());
    for path in [
        "/api/v1/rooms",
        "/api/v1/users",
        "/api/v1/departments",
        "/api/v1/tokens",
        "/api/v1/lessons",
        "/api/v1/approvals",
        "/api/v1/audit",
        "/api/v1/feeds",
        "/api/v1/calendar",
        "/api/v1/day?date=2037-03-02",
        "/api/v1/free-rooms?date=2037-03-02&start_time=09:00&end_time=10:00",
        "/api/v1/bookings/export?from=2037-01-01&to=2037-12-31",
        &format!("/api/v1/audit?object=booking&object_id={booking}"),
    ] {
        let (s, v) = t.get(2, path, &b).await;
        assert_eq!(s, 200, "{path}: {v}");
        let text = v.to_string();
        let numbers: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).collect();
        for id in &a_ids {
            assert!(
                !numbers.contains(&id.as_str()),
                "{path} shows A's id {id}: {text}"
            );
        }
    }
    // Nothing of A's changed: same audit history, booking still active.
    let audit_after = t
        .get(1, "/api/v1/audit?limit=100000", &a)
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    assert_eq!(audit_before, audit_after);
    assert_eq!(
        t.get(1, &format!("/api/v1/bookings/{booking}"), &a).await.1["status"],
        "active"
    );
    // A's staff cannot sign in to B.
    assert_eq!(
        sign_in(&t, 1, "school-h", "gina", "correct horse battery")
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timetable_views_series_exports_and_feeds() {
    let t = TestNodes::start(22070).await;
    let a = t.tenant("school-t").await;
    calendar(&t, &a).await;
    let r1 = t.room(&a, "Room 1").await;
    let r2 = t.room(&a, "Room 2").await;

    // A CSV with bad rows imports nothing and names every bad row.
    let csv = "room,day,period,subject,class,teacher,week\nRoom 1,Mon,P1,Maths,9X,Ms A,A\nRoom 9,Tue,P1,Art,8Y,Mr B,\nRoom 2,Funday,P1,Art,8Y,Mr B,\nRoom 2,Wed,P7,Art,8Y,Mr B,\nRoom 2,Wed,P2,Art,8Y,Mr B,C\n";
    let import = |body: &'static str| {
        t.http
            .post(t.url(1, "/api/v1/lessons/import"))
            .bearer_auth(&a)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let resp = import(csv).await.unwrap();
    assert_eq!(resp.status(), 422);
    let v: Value = resp.json().await.unwrap();
    let rows: Vec<(u64, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Every row's problem at once: what the file says wrong and what the school lacks.
    assert_eq!(
        rows,
        [
            (3, "room".to_string()),
            (4, "day".to_string()),
            (5, "period".to_string()),
            (6, "week".to_string())
        ],
        "{v}"
    );
    let csv2 = "room,day,period,subject,class,teacher,week\nRoom 1,Mon,P1,Maths,9X,Ms A,A\nRoom 9,Tue,P1,Art,8Y,Mr B,\nRoom 2,Wed,P2,Art,8Y,Mr B,C\n";
    let v: Value = import(csv2).await.unwrap().json().await.unwrap();
    let rows: Vec<(u64, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(3, "room"), (4, "week")], "{v}");
    assert_eq!(
        t.get(2, "/api/v1/lessons", &a)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let resp = import("room,day,period,subject,class,teacher,week\nRoom 1,Mon,P1,Maths,9X,Ms A,A\nroom 2,Tue,,Art,8Y,Mr B,\n").await.unwrap();
    assert_eq!(resp.status(), 422, "row 3 has no period and no times");
    let resp = import("room,day,period,start,end,subject,class,teacher,week\nRoom 1,Mon,P1,,,Maths,9X,Ms A,A\nroom 2,Tue,,13:00,14:00,Art,8Y,Mr B,\n").await.unwrap();
    assert_eq!(resp.status(), 200);
    let lessons = t.get(3, "/api/v1/lessons", &a).await.1;
    let maths = lessons
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subject"] == "Maths")
        .unwrap()["id"]
        .as_u64()
        .unwrap();

    // 9 March 2026 is a Monday in week A: Maths occupies Room 1 in P1.
    let (s, v) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&a),
            Some(json!({"room_id": r1, "date": "2037-03-09", "period": "P1", "title": "Meeting"})),
            None,
        )
        .await;
    assert_eq!(
        (s, v["conflicts_with"]["kind"].as_str()),
        (409, Some("lesson")),
        "{v}"
    );
    assert_eq!(v["conflicts_with"]["lesson_id"].as_u64(), Some(maths));
    let day = t
        .get(3, &format!("/api/v1/rooms/{r1}/day?date=2037-03-09"), &a)
        .await
        .1;
    let d = &day["days"][0];
    assert_eq!(d["week"], "A");
    let free: Vec<(&str, bool)> = d["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["free"].as_bool().unwrap()))
        .collect();
    assert_eq!(free, [("P1", false), ("P2", true), ("P3", true)]);
    let found = t
        .get(1, "/api/v1/free-rooms?date=2037-03-09&period=P1", &a)
        .await
        .1;
    let names: Vec<&str> = found["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Room 2"]);
    // Half term is closed; the week grid shows it.
    let (s, v) = t.send("POST", 1, "/api/v1/bookings", Some(&a), Some(json!({"room_id": r2, "date": "2037-02-17", "start_time": "09:00", "end_time": "10:00", "title": "x"})), None).await;
    assert_eq!(
        (s, v["conflicts_with"]["kind"].as_str()),
        (409, Some("closure")),
        "{v}"
    );
    let week = t
        .get(2, &format!("/api/v1/rooms/{r2}/week?date=2037-02-18"), &a)
        .await
        .1;
    assert_eq!(week["days"].as_array().unwrap().len(), 7);
    assert_eq!(week["days"][0]["closure"]["name"], "Half term");
    // Releasing the lesson frees the slot.
    let (s, _) = t
        .send(
            "PUT",
            1,
            &format!("/api/v1/lessons/{maths}/releases/2037-03-09"),
            Some(&a),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = t
        .send(
            "POST",
            2,
            "/api/v1/bookings",
            Some(&a),
            Some(json!({"room_id": r1, "date": "2037-03-09", "period": "P1", "title": "Meeting"})),
            None,
        )
        .await;
    assert_eq!((s, v["period"].as_str()), (201, Some("P1")), "{v}");

    // A series on Mondays P1 from 2 March to 23 March: 9 March is taken now.
    let body = json!({"room_id": r1, "first_date": "2037-03-02", "until": "2037-03-23", "weekdays": [1], "period": "P1", "title": "Club"});
    let preview = post(&t, &a, "/api/v1/series/preview", body.clone()).await;
    assert_eq!(preview["count"], 4);
    // 2 March (week B) is free; 9 March is booked; 16 March is week B again (free);
    // 23 March is week A, so Maths clashes.
    let kinds: Vec<Option<&str>> = preview["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["conflicts_with"]["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [None, Some("booking"), None, Some("lesson")],
        "{preview}"
    );
    let (s, v) = t
        .send(
            "POST",
            3,
            "/api/v1/series",
            Some(&a),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(
        (
            s,
            v["code"].as_str(),
            v["conflicts"].as_array().map(Vec::len)
        ),
        (409, Some("series_conflicts"), Some(2)),
        "{v}"
    );
    let mut skip = body.clone();
    skip["mode"] = json!("skip_conflicts");
    let (s, v) = t
        .send("POST", 3, "/api/v1/series", Some(&a), Some(skip), None)
        .await;
    assert_eq!(
        (s, v["bookings"].as_array().map(Vec::len)),
        (201, Some(2)),
        "{v}"
    );

    // The bookings export is CSV in local time; the audit exports as CSV too.
    let csv = t
        .http
        .get(t.url(1, "/api/v1/bookings/export?from=2037-03-01&to=2037-03-31"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("id,room,start,end,title,status"), "{text}");
    assert!(
        text.contains("Room 1,2037-03-09T09:00:00,2037-03-09T10:00:00,Meeting,active"),
        "{text}"
    );
    let audit = t
        .http
        .get(t.url(2, "/api/v1/audit?format=csv"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit
        .lines()
        .next()
        .unwrap()
        .starts_with("id,at,actor,user_id,object,object_id,action"));
    assert!(
        audit.contains(",lesson,") && audit.contains(",released,"),
        "{audit}"
    );

    // A room feed is valid iCalendar with the zone's rules and local times. Feeds reach a
    // month back, so book a month ahead of today (outside any term: no lessons).
    let ahead = jiff::Zoned::now()
        .date()
        .checked_add(jiff::ToSpan::days(30))
        .unwrap();
    let (s, v) = t.send("POST", 1, "/api/v1/bookings", Some(&a), Some(json!({"room_id": r1, "date": ahead.to_string(), "start_time": "09:00", "end_time": "10:00", "title": "Governors"})), None).await;
    assert_eq!(s, 201, "{v}");
    let feed = post(&t, &a, "/api/v1/feeds", json!({"room_id": r1})).await;
    let url = feed["url"].as_str().unwrap().to_string();
    let resp = t.http.get(t.url(3, &url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let ics = resp.text().await.unwrap();
    let parsed: icalendar::Calendar = ics.parse().expect("the feed parses as iCalendar");
    assert!(!parsed.components.is_empty());
    assert!(
        ics.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/London"),
        "{ics}"
    );
    let dtstart = format!(
        "DTSTART;TZID=Europe/London:{}T090000",
        ahead.strftime("%Y%m%d")
    );
    assert!(ics.contains(&dtstart), "{ics}");
    assert!(ics.contains("SUMMARY:Governors"), "{ics}");
    // Revoked, it is gone.
    let id = feed["id"].as_u64().unwrap();
    assert_eq!(t.delete(1, &format!("/api/v1/feeds/{id}"), &a).await.0, 200);
    assert_eq!(
        t.http.get(t.url(2, &url)).send().await.unwrap().status(),
        404
    );
}
