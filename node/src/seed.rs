//! A realistic school built through the public API: departments, rooms, a term calendar with
//! A/B weeks and holidays, a day of periods, a timetable imported as CSV, staff users and a few
//! bookings. `roomraft dev` seeds the demo school with it; the benchmarks seed big schools.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use jiff::civil::{date, Date};
use jiff::ToSpan;
use serde_json::{json, Value};

/// What to build.
#[derive(Debug, Clone)]
pub struct SchoolSpec {
    /// Teaching rooms (classrooms, labs, IT suites); the special rooms come on top.
    pub teaching_rooms: usize,
    /// Share of teaching-room periods with a lesson, in percent.
    pub occupancy_percent: u64,
    /// Staff users to create, with these passwords.
    pub users: Vec<DemoUser>,
}

#[derive(Debug, Clone)]
pub struct DemoUser {
    pub username: String,
    pub name: String,
    pub role: &'static str,
    pub department: Option<&'static str>,
    pub password: String,
}

const DEPARTMENTS: [&str; 7] = [
    "Maths",
    "English",
    "Science",
    "Humanities",
    "Computing",
    "PE",
    "Arts",
];

const SPECIAL_ROOMS: [(&str, &str, u32, bool); 7] = [
    ("Main Hall", "hall", 300, true),
    ("Sports Hall", "sports", 120, false),
    ("Drama Studio", "drama", 60, false),
    ("Library", "library", 80, false),
    ("Conference Room", "meeting", 16, false),
    ("Minibus A", "minibus", 16, true),
    ("Minibus B", "minibus", 16, true),
];

const PERIODS: [(&str, &str, &str, &str); 8] = [
    ("Registration", "08:40", "08:55", "registration"),
    ("P1", "08:55", "09:55", "lesson"),
    ("P2", "09:55", "10:55", "lesson"),
    ("Break", "10:55", "11:15", "break"),
    ("P3", "11:15", "12:15", "lesson"),
    ("Lunch", "12:15", "13:00", "lunch"),
    ("P4", "13:00", "14:00", "lesson"),
    ("P5", "14:00", "15:00", "lesson"),
];

const SUBJECTS: [(&str, &str); 7] = [
    ("Maths", "Mr Patel"),
    ("English", "Ms Okafor"),
    ("Science", "Dr Evans"),
    ("History", "Mrs Clarke"),
    ("Computing", "Mr Nowak"),
    ("Geography", "Ms Byrne"),
    ("Art", "Mr Hughes"),
];

/// Teaching room `i`: its name, category and capacity.
pub fn teaching_room(i: usize) -> (String, &'static str, u32) {
    match i % 10 {
        8 => (format!("Science Lab {}", i / 10 + 1), "lab", 28),
        9 => (format!("IT Suite {}", i / 10 + 1), "it-suite", 30),
        _ => (
            format!("Room {}", 101 + i),
            "classroom",
            30 + (i % 3) as u32 * 2,
        ),
    }
}

/// The Monday on or after `d`.
fn monday_from(d: Date) -> Date {
    let back = d.weekday().to_monday_zero_offset() as i64;
    if back == 0 {
        d
    } else {
        d.checked_add((7 - back).days()).unwrap_or(d)
    }
}

/// A term: its name, first and last day, and the week label it starts with.
pub type TermDates = (String, Date, Date, &'static str);
/// A holiday: its name, first and last day.
pub type HolidayDates = (String, Date, Date);

/// The English academic year starting in September of `y`: terms and holidays.
pub fn academic_year(y: i16) -> (Vec<TermDates>, Vec<HolidayDates>) {
    let autumn = monday_from(date(y, 9, 1)).checked_add(2.days()).unwrap();
    let christmas = monday_from(date(y, 12, 18));
    let spring = monday_from(date(y + 1, 1, 3));
    let easter = monday_from(date(y + 1, 3, 28));
    let summer = easter.checked_add(14.days()).unwrap();
    let friday = |monday: Date| monday.checked_add(4.days()).unwrap();
    let terms = vec![
        (
            "Autumn".to_string(),
            autumn,
            christmas.checked_sub(3.days()).unwrap(),
            "A",
        ),
        (
            "Spring".to_string(),
            spring,
            easter.checked_sub(3.days()).unwrap(),
            "A",
        ),
        (
            "Summer".to_string(),
            summer,
            friday(monday_from(date(y + 1, 7, 14))),
            "A",
        ),
    ];
    let half = |m: Date| (m, friday(m));
    let (a1, a2) = half(monday_from(date(y, 10, 24)));
    let (s1, s2) = half(monday_from(date(y + 1, 2, 13)));
    let (u1, u2) = half(monday_from(date(y + 1, 5, 25)));
    let holidays = vec![
        (
            "INSET day".to_string(),
            autumn.checked_sub(1.days()).unwrap(),
            autumn.checked_sub(1.days()).unwrap(),
        ),
        ("Autumn half term".to_string(), a1, a2),
        (
            "Christmas holidays".to_string(),
            christmas,
            spring.checked_sub(3.days()).unwrap(),
        ),
        ("Spring half term".to_string(), s1, s2),
        (
            "Easter holidays".to_string(),
            easter,
            friday(easter.checked_add(7.days()).unwrap()),
        ),
        ("Summer half term".to_string(), u1, u2),
    ];
    (terms, holidays)
}

/// The timetable CSV for `rooms` teaching rooms: deterministic, about `percent`% of periods.
pub fn timetable_csv(rooms: usize, percent: u64) -> (String, usize) {
    let mut csv = String::from("room,day,period,subject,class,teacher,week\n");
    let mut n = 0;
    for r in 0..rooms {
        let (room, _, _) = teaching_room(r);
        for (d, day) in ["Mon", "Tue", "Wed", "Thu", "Fri"].iter().enumerate() {
            for (p, period) in ["P1", "P2", "P3", "P4", "P5"].iter().enumerate() {
                let h = (r as u64 * 7919 + d as u64 * 104_729 + p as u64 * 1_299_709) % 100;
                if h >= percent {
                    continue;
                }
                let (subject, teacher) = SUBJECTS[(r + d + p) % SUBJECTS.len()];
                let year = 7 + (r + p) % 5;
                // Every seventh lesson runs in one week of the fortnight only.
                let week = match h % 7 {
                    0 => "A",
                    1 => "B",
                    _ => "",
                };
                let _ = writeln!(
                    csv,
                    "{room},{day},{period},{subject},{year}{},{teacher},{week}",
                    ["X", "Y", "Z"][r % 3]
                );
                n += 1;
            }
        }
    }
    (csv, n)
}

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await.context("request failed")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// Builds `spec` in the tenant whose admin token is `admin`, skipping what already exists, so an
/// interrupted seed completes when run again. `today` picks the academic year.
pub async fn seed_school(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    spec: &SchoolSpec,
    today: Date,
) -> anyhow::Result<()> {
    let get = |path: &str| client.get(format!("{url}{path}")).bearer_auth(admin);
    let post = |path: &str| client.post(format!("{url}{path}")).bearer_auth(admin);
    let put = |path: &str| client.put(format!("{url}{path}")).bearer_auth(admin);

    let existing = call(get("/api/v1/departments")).await?;
    let have = |v: &Value, key: &str, name: &str| {
        v.as_array()
            .into_iter()
            .flatten()
            .find(|x| x[key] == name)
            .and_then(|x| x["id"].as_u64())
    };
    let mut departments = std::collections::BTreeMap::new();
    for name in DEPARTMENTS {
        let id = match have(&existing, "name", name) {
            Some(id) => id,
            None => call(post("/api/v1/departments").json(&json!({ "name": name }))).await?["id"]
                .as_u64()
                .context("department id")?,
        };
        departments.insert(name, id);
    }

    let rooms = call(get("/api/v1/rooms")).await?;
    let mut wanted: Vec<Value> = (0..spec.teaching_rooms)
        .map(|i| {
            let (name, category, capacity) = teaching_room(i);
            json!({ "name": name, "category": category, "capacity": capacity,
                    "location": format!("Block {}", ["A", "B", "C"][i % 3]) })
        })
        .collect();
    for (name, category, capacity, approval) in SPECIAL_ROOMS {
        let mut v = json!({ "name": name, "category": category, "capacity": capacity,
                            "approval_required": approval,
                            "description": format!("The school's {}.", name.to_lowercase()) });
        if category == "sports" {
            v["allowed_department_ids"] = json!([departments["PE"]]);
        }
        if category == "minibus" {
            v["rules"] = json!({ "max_length_minutes": 600, "min_notice_minutes": 1440 });
        }
        wanted.push(v);
    }
    for room in wanted {
        let name = room["name"].as_str().unwrap_or_default();
        if have(&rooms, "name", name).is_none() {
            call(post("/api/v1/rooms").json(&room))
                .await
                .with_context(|| format!("cannot create room {name}"))?;
        }
    }

    let cal = call(get("/api/v1/calendar")).await?;
    let y = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    if cal["years"].as_array().is_none_or(|a| a.is_empty()) {
        call(put("/api/v1/calendar/week-cycle").json(&json!({ "labels": ["A", "B"] }))).await?;
        let year = call(post("/api/v1/calendar/years").json(&json!({
            "name": format!("{y}/{:02}", (y + 1) % 100),
            "start": date(y, 9, 1), "end": date(y + 1, 8, 31),
        })))
        .await?;
        let year_id = year["years"][0]["id"].as_u64().context("year id")?;
        let (terms, holidays) = academic_year(y);
        for (name, start, end) in holidays {
            call(
                post("/api/v1/calendar/closures")
                    .json(&json!({ "name": name, "kind": "holiday", "start": start, "end": end })),
            )
            .await?;
        }
        for (name, start, end, first) in terms {
            call(post("/api/v1/calendar/terms").json(&json!({
                "year_id": year_id, "name": name, "start": start, "end": end, "first_week": first,
            })))
            .await?;
        }
        let periods: Vec<Value> = (1..=5)
            .flat_map(|d| {
                PERIODS.map(|(name, start, end, kind)| {
                    json!({ "weekday": d, "name": name, "start": start, "end": end, "kind": kind })
                })
            })
            .collect();
        call(put("/api/v1/calendar/periods").json(&json!({ "periods": periods }))).await?;
    }

    let lessons = call(get("/api/v1/lessons")).await?;
    if lessons.as_array().is_none_or(|a| a.is_empty()) {
        let (csv, _) = timetable_csv(spec.teaching_rooms, spec.occupancy_percent);
        call(
            post("/api/v1/lessons/import?replace=true")
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await
        .context("cannot import the timetable")?;
    }

    let users = call(get("/api/v1/users")).await?;
    for u in &spec.users {
        if have(&users, "username", &u.username).is_none() {
            call(post("/api/v1/users").json(&json!({
                "username": u.username, "name": u.name,
                "email": format!("{}@demo-school.example", u.username),
                "department_id": u.department.map(|d| departments[d]),
                "role": u.role, "password": u.password,
            })))
            .await
            .with_context(|| format!("cannot create user {}", u.username))?;
        }
    }

    // The public facilities website, once: the hall, sports hall, drama studio and library.
    let site = call(get("/api/v1/site")).await?;
    if site["published"] != json!(true) && site["description"] == "" {
        let rooms = call(get("/api/v1/rooms")).await?;
        let hire: Vec<u64> = ["Main Hall", "Sports Hall", "Drama Studio", "Library"]
            .iter()
            .filter_map(|n| have(&rooms, "name", n))
            .collect();
        call(put("/api/v1/site").json(&json!({
            "published": true,
            "description": SITE_DESCRIPTION,
            "contact_email": "lettings@demo-school.example",
            "hire_room_ids": hire,
        })))
        .await
        .context("cannot set up the public website")?;
    }
    Ok(())
}

const SITE_DESCRIPTION: &str = "Demo School lets its hall, sports hall, drama studio and \
library to clubs, community groups and families in the evenings, at weekends and in the holidays.

Parking is free on site, every room is step-free, and our site team is on hand for every letting.";

/// The demo school's staff, with fresh passwords.
pub fn demo_users() -> Vec<DemoUser> {
    // Three different words and a number: long and not a pattern (NIST SP 800-63B-4).
    let pw = || {
        use rand::seq::SliceRandom;
        use rand::Rng;
        const WORDS: [&str; 12] = [
            "maple", "river", "copper", "lantern", "meadow", "harbour", "falcon", "orchard",
            "pebble", "thistle", "willow", "beacon",
        ];
        let mut r = rand::thread_rng();
        let words: Vec<&str> = WORDS.choose_multiple(&mut r, 3).copied().collect();
        format!("{}-{}", words.join("-"), r.gen_range(10..100))
    };
    let user = |username: &str, name: &str, role, department| DemoUser {
        username: username.into(),
        name: name.into(),
        role,
        department,
        password: pw(),
    };
    vec![
        user("head", "Helen Head", "admin", None),
        user("jpatel", "Jay Patel", "staff", Some("Maths")),
        user("sokafor", "Sade Okafor", "staff", Some("English")),
        user("tpe", "Tom Price", "staff", Some("PE")),
        user("site", "Sam Site", "viewer", None),
    ]
}
