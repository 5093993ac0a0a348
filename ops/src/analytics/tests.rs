use std::net::IpAddr;
use std::path::PathBuf;

use super::enrich::{clean_path, referrer_domain};
use super::*;

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn geoip() -> (PathBuf, bool) {
    test_database()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn hit(client: &str, ua: &str, path: &str, referrer: Option<&str>) -> Hit {
    Hit {
        tenant: 7,
        at: "2026-11-23T10:00:00Z".parse().unwrap(),
        client: ip(client),
        user_agent: ua.into(),
        path: path.into(),
        referrer: referrer.map(str::to_string),
        host: Some("roomraft.example:8443".into()),
    }
}

#[test]
fn locations_come_from_the_geoip_database() {
    let (path, test_db) = geoip();
    let e = Enricher::open(Some(&path));
    assert!(e.has_geoip());
    if test_db {
        let london = e.locate(ip("81.2.69.142"));
        assert_eq!(london.country.as_deref(), Some("GB"));
        assert_eq!(london.city.as_deref(), Some("London"));
        assert_eq!(
            e.locate(ip("216.160.83.56")).city.as_deref(),
            Some("Milton")
        );
        assert_eq!(e.locate(ip("89.160.20.112")).country.as_deref(), Some("SE"));
        // An IPv4-mapped IPv6 address is the same client.
        assert_eq!(e.locate(ip("::ffff:81.2.69.142")), london);
    } else {
        // A production GeoLite2 database: countries of long-stable allocations.
        assert_eq!(e.locate(ip("81.2.69.142")).country.as_deref(), Some("GB"));
        assert_eq!(e.locate(ip("89.160.20.112")).country.as_deref(), Some("SE"));
    }
    assert_eq!(e.locate(ip("127.0.0.1")), Location::default());
    assert_eq!(e.locate(ip("10.0.0.1")), Location::default());
}

#[test]
fn no_database_or_a_broken_one_means_unknown_locations() {
    let missing = Enricher::open(Some(std::path::Path::new("/nonexistent/city.mmdb")));
    assert!(!missing.has_geoip());
    assert_eq!(missing.locate(ip("81.2.69.142")), Location::default());
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(!Enricher::open(Some(&junk)).has_geoip());
    let none = Enricher::open(None);
    let v = none
        .enrich(&hit("81.2.69.142", CHROME_WINDOWS, "/", None), b"salt")
        .unwrap();
    assert_eq!((v.country, v.city), (None, None));
}

#[test]
fn user_agents_give_browser_os_and_device_and_bots_are_skipped() {
    let e = Enricher::open(None);
    let (b, os, d) = e.classify(CHROME_WINDOWS).unwrap();
    assert_eq!((b.as_str(), d), ("Chrome", Device::Desktop));
    assert!(os.starts_with("Windows"), "{os}");
    let (b, os, d) = e.classify(SAFARI_IPHONE).unwrap();
    assert_eq!(
        (b.as_str(), os.as_str(), d),
        ("Safari", "iPhone", Device::Mobile)
    );
    assert_eq!(e.classify(SAFARI_IPAD).unwrap().2, Device::Tablet);
    let (b, os, d) = e.classify(FIREFOX_LINUX).unwrap();
    assert_eq!(
        (b.as_str(), os.as_str(), d),
        ("Firefox", "Linux", Device::Desktop)
    );
    assert_eq!(e.classify(GOOGLEBOT), Err(Skip::Bot));
    let (b, os, d) = e.classify("").unwrap();
    assert_eq!(
        (b.as_str(), os.as_str(), d),
        ("Unknown", "Unknown", Device::Other)
    );
}

#[test]
fn paths_keep_only_campaign_tags_and_referrers_only_their_domain() {
    assert_eq!(
        clean_path("/v/oak/hall?email=a@b.c&utm_source=News&x=1#top"),
        "/v/oak/hall?utm_source=News"
    );
    assert_eq!(
        clean_path("https://school.example/a/b?token=secret"),
        "/a/b"
    );
    assert_eq!(
        clean_path("/v/oak?ref=leaflet&q=private"),
        "/v/oak?ref=leaflet"
    );
    assert_eq!(clean_path(""), "/");
    assert!(clean_path(&format!("/{}", "é".repeat(600))).len() <= 512);
    assert_eq!(
        referrer_domain("https://www.Google.co.uk/search?q=hall+hire", None).as_deref(),
        Some("google.co.uk")
    );
    // Internal navigation and non-web referrers are not sources.
    assert_eq!(
        referrer_domain(
            "https://roomraft.example/v/oak",
            Some("roomraft.example:8443")
        ),
        None
    );
    assert_eq!(referrer_domain("javascript:alert(1)", None), None);
    assert_eq!(referrer_domain("not a url", None), None);
}

#[test]
fn a_page_view_holds_nothing_that_identifies_the_visitor() {
    let (path, _) = geoip();
    let e = Enricher::open(Some(&path));
    let h = hit(
        "81.2.69.142",
        CHROME_WINDOWS,
        "/v/oak?utm_source=newsletter&name=Jo",
        Some("https://www.facebook.com/groups/parents"),
    );
    let v = e.enrich(&h, b"day-salt").unwrap();
    assert_eq!(v.path, "/v/oak?utm_source=newsletter");
    assert_eq!(v.source.as_deref(), Some("newsletter"));
    assert_eq!(v.country.as_deref(), Some("GB"));
    let stored = serde_json::to_string(&v).unwrap();
    for secret in [
        "81.2.69.142",
        "Windows NT 10.0",
        "Jo",
        "facebook.com/groups",
    ] {
        assert!(!stored.contains(secret), "{secret} leaked into {stored}");
    }
    // Without a campaign tag the referrer's domain is the source.
    let v = e
        .enrich(
            &hit(
                "81.2.69.142",
                CHROME_WINDOWS,
                "/v/oak",
                Some("https://www.facebook.com/x"),
            ),
            b"s",
        )
        .unwrap();
    assert_eq!(v.source.as_deref(), Some("facebook.com"));
    assert_eq!(
        e.enrich(&hit("1.2.3.4", GOOGLEBOT, "/", None), b"s"),
        Err(Skip::Bot)
    );
}

#[test]
fn visitor_ids_change_with_the_salt_the_tenant_the_address_and_the_browser() {
    let a = ip("192.0.2.1");
    let base = visitor_id(b"monday", 1, a, CHROME_WINDOWS);
    assert_eq!(base, visitor_id(b"monday", 1, a, CHROME_WINDOWS));
    assert_eq!(
        base,
        visitor_id(b"monday", 1, ip("::ffff:192.0.2.1"), CHROME_WINDOWS)
    );
    assert_ne!(base, visitor_id(b"tuesday", 1, a, CHROME_WINDOWS));
    assert_ne!(base, visitor_id(b"monday", 2, a, CHROME_WINDOWS));
    assert_ne!(
        base,
        visitor_id(b"monday", 1, ip("192.0.2.2"), CHROME_WINDOWS)
    );
    assert_ne!(base, visitor_id(b"monday", 1, a, FIREFOX_LINUX));
}

#[test]
fn the_collector_limits_each_address_and_bounds_its_queue() {
    let c = Collector::new(&AnalyticsConfig {
        per_address_per_minute: 1,
        per_address_burst: 3,
        queue_capacity: 5,
        ..AnalyticsConfig::default()
    });
    for _ in 0..3 {
        c.record(hit("192.0.2.1", CHROME_WINDOWS, "/", None))
            .unwrap();
    }
    match c.record(hit("192.0.2.1", CHROME_WINDOWS, "/", None)) {
        Err(NotQueued::RateLimited(r)) => {
            assert_eq!(r.scope, "analytics");
            assert!((1..=60).contains(&r.retry_after_secs), "{r:?}");
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    c.record(hit("192.0.2.2", CHROME_WINDOWS, "/", None))
        .unwrap();
    c.record(hit("192.0.2.3", CHROME_WINDOWS, "/", None))
        .unwrap();
    assert_eq!(
        c.record(hit("192.0.2.4", CHROME_WINDOWS, "/", None)),
        Err(NotQueued::Full)
    );
    assert_eq!(c.pending(), 5);
    let batch = c.drain(4);
    assert_eq!(batch.len(), 4);
    assert_eq!(batch[0].client, ip("192.0.2.1"));
    assert_eq!(c.pending(), 1);
}
