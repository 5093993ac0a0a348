//! The staff grids as a signed-in browser gets them: every occupation of a room appears in every
//! grid (an evening letting, a weekend club, a lunchtime rehearsal between periods), and a grid
//! offers a Book link only where the viewer may book.

use serde_json::json;

use crate::harness::TestNodes;

/// Signs in through the API; the cookie works for the pages too.
async fn cookie(t: &TestNodes, login: &str) -> String {
    let r = t
        .http
        .post(t.url(1, "/api/v1/session"))
        .json(&json!({"tenant": "grid", "login": login, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = r.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_string()
}

async fn page(t: &TestNodes, cookie: &str, path: &str) -> String {
    let r = t
        .http
        .get(t.url(2, path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The next Monday in the school's zone, at least a week ahead.
fn monday() -> jiff::civil::Date {
    let mut d = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .date()
        .checked_add(jiff::ToSpan::days(7))
        .unwrap();
    while d.weekday() != jiff::civil::Weekday::Monday {
        d = d.tomorrow().unwrap();
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_occupation_shows_in_every_grid_and_book_links_follow_the_rules() {
    let t = TestNodes::start(26000).await;
    let admin = t.tenant("grid").await;
    let room = t.room(&admin, "Main Hall").await;
    t.periods(&admin).await;
    t.user(&admin, "jo", "staff").await;
    t.user(&admin, "sam", "viewer").await;
    let mon = monday();
    let sat = mon.checked_add(jiff::ToSpan::days(5)).unwrap();
    let book = |date: jiff::civil::Date, from: &str, to: &str, title: &str| {
        let body = json!({"room_id": room, "date": date.to_string(), "start_time": from,
                          "end_time": to, "title": title});
        let admin = admin.clone();
        let t = &t;
        async move {
            let (s, v) = t
                .send(
                    "POST",
                    3,
                    "/api/v1/bookings",
                    Some(&admin),
                    Some(body),
                    None,
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
    };
    book(mon, "18:30", "21:00", "Evening drama club").await;
    book(mon, "10:30", "10:45", "Break-time rehearsal").await;
    book(mon, "12:30", "13:00", "Lunch choir").await;
    book(sat, "10:00", "12:00", "Saturday football").await;
    book(mon, "09:00", "10:00", "Assembly").await;

    let jo = cookie(&t, "jo").await;
    let week = page(&t, &jo, &format!("/rooms/{room}/week?date={mon}")).await;
    for title in [
        "Evening drama club",
        "Break-time rehearsal",
        "Lunch choir",
        "Saturday football",
        "Assembly",
    ] {
        assert!(week.contains(title), "the week grid hides {title}");
    }
    assert!(week.contains("Other times"), "{week}");
    assert!(
        week.contains("18:30–21:00"),
        "times of what lies outside the periods"
    );
    assert!(!week.contains("No such period"));
    // Only period rows and the one "Other times" row: no hourly rows mixed in for Saturday.
    assert!(
        !week.contains(">08:00 <") && !week.contains(">17:00 <"),
        "{week}"
    );
    assert!(week.contains("Book"), "free periods offer a link to staff");

    let day = page(&t, &jo, &format!("/day?date={mon}")).await;
    for title in [
        "Evening drama club",
        "Break-time rehearsal",
        "Lunch choir",
        "Assembly",
    ] {
        assert!(day.contains(title), "the day grid hides {title}");
    }
    let saturday = page(&t, &jo, &format!("/day?date={sat}")).await;
    assert!(saturday.contains("Saturday football"));

    // A view-only user sees everything and is offered no booking.
    let sam = cookie(&t, "sam").await;
    let week = page(&t, &sam, &format!("/rooms/{room}/week?date={mon}")).await;
    assert!(week.contains("Evening drama club"));
    assert!(
        !week.contains("class=\"book\""),
        "a viewer is offered Book links"
    );
    // Nobody is offered a slot that has passed, nor one the rules refuse.
    let past = mon.checked_sub(jiff::ToSpan::weeks(3)).unwrap();
    let old = page(&t, &jo, &format!("/rooms/{room}/week?date={past}")).await;
    assert!(!old.contains("class=\"book\""), "Book links in a past week");
    let (s, v) = t
        .send(
            "PUT",
            1,
            "/api/v1/rules",
            Some(&admin),
            Some(json!({"max_days_ahead": 2})),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let far = page(&t, &jo, &format!("/rooms/{room}/week?date={mon}")).await;
    assert!(
        !far.contains("class=\"book\" href=\"/book?room"),
        "Book links beyond what the rules allow"
    );
}
