//! The tally: visits, bounces, caps per day, the roll-up of old days and the tenant's days.

use jiff::civil::{date, Date};

use super::*;

fn view(visitor: u8, at: &str, path: &str) -> PageView {
    PageView {
        tenant: 7,
        at: at.parse().unwrap(),
        path: path.into(),
        source: None,
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: Device::Desktop,
        country: Some("GB".into()),
        city: Some("London".into()),
        visitor: [visitor; 16],
    }
}

fn add(t: &mut Tally, v: &PageView) {
    let day = v.at.to_zoned(jiff::tz::TimeZone::UTC).date();
    t.add(v, day, &mut Changes::default());
}

#[test]
fn visits_end_after_thirty_idle_minutes_and_one_page_visits_bounce() {
    let mut t = Tally::default();
    // Visitor 1: three pages over 20 minutes, then back after an hour for one page.
    add(&mut t, &view(1, "2026-11-23T09:00:00Z", "/v/oak"));
    add(&mut t, &view(1, "2026-11-23T09:10:00Z", "/v/oak/hall"));
    add(
        &mut t,
        &view(1, "2026-11-23T09:20:00Z", "/v/oak/hall?utm_source=x"),
    );
    add(&mut t, &view(1, "2026-11-23T10:30:00Z", "/v/oak"));
    // Visitor 2: one page.
    add(&mut t, &view(2, "2026-11-23T11:00:00Z", "/v/oak"));
    // Visitor 3: two pages, the second arriving first (batches from two nodes); the visit's
    // source is its first page's.
    let mut second = view(3, "2026-11-23T12:05:00Z", "/v/oak/pitch?utm_source=x");
    second.source = Some("x".into());
    add(&mut t, &second);
    let mut first = view(3, "2026-11-23T12:00:00Z", "/v/oak");
    first.source = Some("google.com".into());
    add(&mut t, &first);
    let r = t.report(7, date(2026, 11, 23), date(2026, 11, 23), 10);
    assert_eq!(r.page_views, 7);
    assert_eq!(r.visits, 4);
    assert_eq!(r.unique_visitors, 3);
    assert_eq!(r.bounce_rate, Some(0.5));
    // 20 min + 0 + 0 + 5 min over four visits.
    assert_eq!(r.average_visit_seconds, Some(375.0));
    assert_eq!(
        r.top_pages,
        vec![
            ("/v/oak".to_string(), 4),
            ("/v/oak/hall".to_string(), 2),
            ("/v/oak/pitch".to_string(), 1)
        ]
    );
    assert_eq!(r.countries, vec![("GB".to_string(), 4)]);
    assert_eq!(r.cities, vec![("London, GB".to_string(), 4)]);
    assert_eq!(
        r.referrers,
        vec![
            (super::tally::DIRECT.to_string(), 3),
            ("google.com".to_string(), 1)
        ]
    );
    // Another tenant sees none of it.
    assert_eq!(
        t.report(8, date(2026, 11, 1), date(2026, 11, 30), 10)
            .page_views,
        0
    );
}

#[test]
fn breakdowns_are_capped_per_day() {
    let mut t = Tally::default();
    for i in 0..2100u32 {
        let mut v = view((i % 200) as u8, "2026-11-23T09:00:00Z", &format!("/p/{i}"));
        v.visitor[0..4].copy_from_slice(&i.to_be_bytes());
        add(&mut t, &v);
    }
    let d = &t.days[&(7, date(2026, 11, 23))];
    assert_eq!(d.pages.len(), 2001);
    assert_eq!(d.pages[super::tally::OTHER], 100);
    assert_eq!(d.totals.views, 2100);
}

#[test]
fn old_detail_rolls_up_into_months_and_old_visitors_are_forgotten() {
    let mut t = Tally::default();
    add(&mut t, &view(1, "2025-09-10T09:00:00Z", "/a"));
    add(&mut t, &view(2, "2025-09-11T09:00:00Z", "/a"));
    add(&mut t, &view(1, "2025-10-01T09:00:00Z", "/b"));
    add(&mut t, &view(1, "2026-11-22T09:00:00Z", "/c"));
    let cutoff = retention_cutoff(date(2026, 11, 23), 13);
    assert_eq!(cutoff, date(2025, 10, 1));
    let mut ch = Changes::default();
    t.roll_up(cutoff, &mut ch);
    assert_eq!(ch.days.len(), 2);
    assert_eq!(
        ch.months.iter().copied().collect::<Vec<_>>(),
        vec![(7, 2025, 9)]
    );
    let before = t.clone();
    t.roll_up(cutoff, &mut Changes::default());
    assert_eq!(t, before, "rolling up again changes nothing");
    let r = t.report(7, date(2025, 9, 1), date(2026, 11, 30), 10);
    assert_eq!(r.page_views, 4);
    assert_eq!(r.visits, 4);
    assert_eq!(r.monthly.len(), 1);
    assert_eq!(r.monthly[0].period, "2025-09");
    assert_eq!(r.monthly[0].page_views, 2);
    // The rolled-up month's pages are gone; only kept days have detail.
    assert_eq!(
        r.top_pages.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        vec!["/b", "/c"]
    );
    assert_eq!(r.detail_from, Some(date(2025, 10, 1)));
    // A range that covers only part of a rolled-up month leaves it out.
    assert_eq!(
        t.report(7, date(2025, 9, 5), date(2025, 9, 30), 10)
            .page_views,
        0
    );

    let mut ch = Changes::default();
    t.expire_visitors(date(2026, 11, 22), &mut ch);
    assert_eq!(t.visitors.len(), 1);
    assert_eq!(ch.visitors.len(), 3);
}

#[test]
fn a_day_is_counted_in_the_tenant_time_zone() {
    let mut t = Tally::default();
    let v = view(1, "2026-06-30T23:30:00Z", "/");
    let london: Date =
        v.at.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
            .date();
    t.add(&v, london, &mut Changes::default());
    assert_eq!(
        t.report(7, date(2026, 7, 1), date(2026, 7, 1), 5)
            .page_views,
        1
    );
    assert_eq!(
        t.report(7, date(2026, 6, 30), date(2026, 6, 30), 5)
            .page_views,
        0
    );
}
