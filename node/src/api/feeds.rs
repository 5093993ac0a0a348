//! iCalendar (RFC 5545) feeds of a room or a user at secret, revocable URLs.
//!
//! Events carry `TZID` local times with a `VTIMEZONE` built from the bundled time zone
//! database's transitions, so Outlook and Google show the school's local times. (The
//! `icalendar` crate cannot emit `VTIMEZONE`, so the few lines of output are written here and
//! checked with its parser in the tests.)

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::tz::{Dst, TimeZone};
use jiff::{SignedDuration, Timestamp};
use roomraft_cluster::Consistency;
use serde::{Deserialize, Serialize};

use super::{
    caller, created, parse_id, parse_json, sha256_hex, AppError, Auth, Booking, BookingStatus,
    Bookings, Feed, FeedTarget, Path, Query, ReadParams, Role, RoomId, St,
};
use crate::domain::calendar::zone;
use crate::domain::feeds::{CreateFeed, RevokeFeed};

/// How far back and ahead a feed reaches.
const PAST: SignedDuration = SignedDuration::from_hours(24 * 30);
const FUTURE: SignedDuration = SignedDuration::from_hours(24 * 400);
/// Lessons are many: a room feed carries the next eight weeks of them.
const LESSONS_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 56);

/// A calendar feed as the API shows it; its address only in the answer that created it.
#[derive(Serialize)]
pub(super) struct FeedBody {
    id: crate::domain::FeedId,
    kind: &'static str,
    target_id: u64,
    created_at: Timestamp,
    revoked_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl From<&Feed> for FeedBody {
    fn from(f: &Feed) -> Self {
        let (kind, target_id) = match f.target {
            FeedTarget::Room(r) => ("room", r),
            FeedTarget::User(u) => ("user", u),
        };
        FeedBody {
            id: f.id,
            kind,
            target_id,
            created_at: f.created_at,
            revoked_at: f.revoked_at,
            url: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewFeed {
    room_id: Option<u64>,
    user_id: Option<u64>,
}

pub(super) async fn create_feed(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tenant = auth.tenant()?;
    let req: NewFeed = parse_json(&body)?;
    let target = match (req.room_id, req.user_id, auth.actor.user) {
        (Some(r), None, _) => FeedTarget::Room(r),
        (None, Some(u), _) => FeedTarget::User(u),
        (None, None, Some(me)) => FeedTarget::User(me),
        _ => {
            return Err(AppError::invalid(
                "room_id",
                "give room_id or user_id (one of them)",
            ))
        }
    };
    let token = hex::encode(rand::random::<[u8; 24]>());
    let command = CreateFeed {
        tenant,
        target,
        sha256: sha256_hex(&token),
    };
    let feed = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(created(FeedBody {
        url: Some(format!("/feeds/{token}.ics")),
        ..FeedBody::from(&feed)
    }))
}

pub(super) async fn list_feeds(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<FeedBody>>, AppError> {
    let tenant = auth.tenant()?;
    let admin = auth.actor.role == Role::Admin;
    let me = auth.actor.user;
    let mut list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .feeds()
                .filter(|f| admin || matches!(f.target, FeedTarget::User(u) if Some(u) == me))
                .map(|f| (f.id, FeedBody::from(f)))
                .collect::<Vec<_>>()
        })
        .await?;
    list.sort_by_key(|(id, _)| *id);
    Ok(Json(list.into_iter().map(|(_, v)| v).collect()))
}

pub(super) async fn revoke_feed(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FeedBody>, AppError> {
    let tenant = auth.tenant()?;
    let feed = parse_id("feed", &id)?;
    let f = s
        .submit(caller(&headers, &auth)?, RevokeFeed { tenant, feed })
        .await?;
    Ok(Json(FeedBody::from(&f)))
}

/// RFC 5545 TEXT escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line, folded at 75 octets on character boundaries, ended by CRLF.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn local(tz: &TimeZone, t: Timestamp) -> String {
    t.to_zoned(tz.clone())
        .datetime()
        .strftime("%Y%m%dT%H%M%S")
        .to_string()
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn offset(o: jiff::tz::Offset) -> String {
    let secs = o.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
}

/// A VTIMEZONE with every transition from `from` to `to`, and the offset in force at `from`.
fn vtimezone(out: &mut String, name: &str, tz: &TimeZone, from: Timestamp, to: Timestamp) {
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{name}"));
    let info = tz.to_offset_info(from);
    let kind = |dst: Dst| if dst.is_dst() { "DAYLIGHT" } else { "STANDARD" };
    let o = offset(info.offset());
    line(out, &format!("BEGIN:{}", kind(info.dst())));
    line(out, &format!("DTSTART:{}", local(tz, from)));
    line(out, &format!("TZOFFSETFROM:{o}"));
    line(out, &format!("TZOFFSETTO:{o}"));
    line(out, &format!("TZNAME:{}", escape(info.abbreviation())));
    line(out, &format!("END:{}", kind(info.dst())));
    let mut prev = info.offset();
    for t in tz
        .following(from)
        .take_while(|t| t.timestamp() <= to)
        .take(64)
    {
        let k = kind(t.dst());
        // DTSTART is the onset in the local time in force before it.
        let before = t.timestamp().to_zoned(TimeZone::fixed(prev)).datetime();
        line(out, &format!("BEGIN:{k}"));
        line(
            out,
            &format!("DTSTART:{}", before.strftime("%Y%m%dT%H%M%S")),
        );
        line(out, &format!("TZOFFSETFROM:{}", offset(prev)));
        line(out, &format!("TZOFFSETTO:{}", offset(t.offset())));
        line(out, &format!("TZNAME:{}", escape(t.abbreviation())));
        line(out, &format!("END:{k}"));
        prev = t.offset();
    }
    line(out, "END:VTIMEZONE");
}

pub(super) struct Event {
    uid: String,
    stamp: Timestamp,
    start: Timestamp,
    end: Timestamp,
    summary: String,
    description: String,
    location: String,
    tentative: bool,
}

/// The whole feed document.
fn calendar(name: &str, tz_name: &str, events: &[Event], now: Timestamp) -> String {
    let tz = zone(tz_name);
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//Roomraft//Roomraft feeds//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    line(&mut out, &format!("X-WR-TIMEZONE:{tz_name}"));
    line(&mut out, "REFRESH-INTERVAL;VALUE=DURATION:PT1H");
    let from = events.iter().map(|e| e.start).min().unwrap_or(now).min(now);
    let to = events.iter().map(|e| e.end).max().unwrap_or(now).max(now);
    vtimezone(
        &mut out,
        tz_name,
        &tz,
        from.saturating_sub(SignedDuration::from_hours(24))
            .unwrap_or(from),
        to,
    );
    for e in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", e.uid));
        line(&mut out, &format!("DTSTAMP:{}", utc(e.stamp)));
        line(
            &mut out,
            &format!("DTSTART;TZID={tz_name}:{}", local(&tz, e.start)),
        );
        line(
            &mut out,
            &format!("DTEND;TZID={tz_name}:{}", local(&tz, e.end)),
        );
        line(&mut out, &format!("SUMMARY:{}", escape(&e.summary)));
        if !e.description.is_empty() {
            line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        }
        line(&mut out, &format!("LOCATION:{}", escape(&e.location)));
        let status = if e.tentative {
            "TENTATIVE"
        } else {
            "CONFIRMED"
        };
        line(&mut out, &format!("STATUS:{status}"));
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// Everything a feed shows, read from the state.
fn feed_events(st: &Bookings, feed: &Feed, now: Timestamp) -> Option<(String, String, Vec<Event>)> {
    let school = st.for_tenant(feed.tenant);
    let t = school.tenant().filter(|t| !t.suspended)?;
    let from = now.saturating_sub(PAST).ok()?;
    let to = now.saturating_add(FUTURE).ok()?;
    let room_name = |id: RoomId| school.room(id).map(|r| r.name.clone()).unwrap_or_default();
    let booking_event = |b: &Booking| {
        let mut description = b.notes.clone();
        if !description.is_empty() {
            description.push('\n');
        }
        let _ = write!(description, "Booked by {}", b.created_by);
        Event {
            uid: format!("booking-{}@{}.roomraft", b.id, t.slug),
            stamp: b.created_at,
            start: b.start,
            end: b.end,
            summary: b.title.clone(),
            description,
            location: room_name(b.room),
            tentative: b.status == BookingStatus::Pending,
        }
    };
    let (name, events) = match feed.target {
        FeedTarget::Room(r) => {
            let room = school.room(r)?;
            let mut events: Vec<Event> = school
                .bookings_in(r, from, to)
                .into_iter()
                .map(booking_event)
                .collect();
            let lessons_to = now.saturating_add(LESSONS_AHEAD).ok()?;
            let lessons_from = now
                .saturating_sub(SignedDuration::from_hours(24 * 7))
                .ok()?;
            for (l, s, e) in school.lessons_in(r, lessons_from, lessons_to) {
                events.push(Event {
                    uid: format!("lesson-{}-{}@{}.roomraft", l.id, s.as_second(), t.slug),
                    stamp: s,
                    start: s,
                    end: e,
                    summary: format!("{} {}", l.spec.subject, l.spec.class_name)
                        .trim()
                        .to_string(),
                    description: l.spec.teacher.clone(),
                    location: room.name.clone(),
                    tentative: false,
                });
            }
            events.sort_by_key(|e| e.start);
            (format!("{} — {}", room.name, t.name), events)
        }
        FeedTarget::User(u) => {
            let user = school.user(u).filter(|x| x.active)?;
            let events = school
                .bookings_of_user(u, from)
                .into_iter()
                .filter(|b| b.status.holds_slot() && b.start < to)
                .map(booking_event)
                .collect();
            (format!("{} — {}", user.name, t.name), events)
        }
    };
    Some((name, t.time_zone.clone(), events))
}

/// `GET /feeds/{token}.ics`: no sign-in; the URL's secret is the credential.
pub(super) async fn feed(State(s): St, Path(token): Path<String>) -> Result<Response, AppError> {
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    let hash = sha256_hex(token);
    let now = Timestamp::now();
    let found = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            let feed = st.live_feed(&hash)?;
            feed_events(st, feed, now)
        })
        .await?;
    let (name, tz, events) = found.ok_or_else(|| AppError::not_found("feed", "at this URL"))?;
    let mut resp = (StatusCode::OK, calendar(&name, &tz, &events, now)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_on_character_boundaries() {
        let mut out = String::new();
        line(&mut out, &format!("SUMMARY:{}", "é".repeat(60)));
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{}\r\n", "é".repeat(60)));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn london_zone_has_both_changes_of_2026() {
        let tz = zone("Europe/London");
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let to: Timestamp = "2026-12-31T00:00:00Z".parse().unwrap();
        let mut out = String::new();
        vtimezone(&mut out, "Europe/London", &tz, from, to);
        assert!(out.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260329T010000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nTZNAME:BST"), "{out}");
        assert!(out.contains("BEGIN:STANDARD\r\nDTSTART:20261025T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nTZNAME:GMT"), "{out}");
    }
}
