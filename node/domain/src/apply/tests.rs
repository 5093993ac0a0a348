//! Apply tests: scripted commands against a seeded school, each outcome checked, and every
//! script replayed (determinism) and reloaded from its records (persistence).

use std::collections::BTreeSet;

use jiff::civil::{date, time, Date};
use proptest::prelude::*;
use roomraft_replicated::{App, WriteSet};

use super::super::calendar::{expand_weekly, instant, zone};
use super::super::quotas::Kind;
use super::*;
use crate::analytics::{RecordPageViews, SetAnalyticsSalt};
use crate::booking::{CancelBooking, CreateBooking, CreateSeries, DecideBooking};
use crate::people::{
    CreateDepartment, CreateSession, CreateToken, CreateUser, EndSession, EndUserSessions,
    RecordSignInFailure, RevokeToken, SetPassword, UpdateUser,
};
use crate::school::{
    CreateClosure, CreateLesson, CreateRoom, CreateTenant, CreateTerm, CreateYear, ImportLessons,
    SetLessonRelease, SetPeriods, SetTenantRules, SetWeekCycle, UpdateRoom,
};
use crate::system::{SetClusterIdentity, SetQuotas};
use crate::venue::{CreateEnquiry, SetEnquiryHandled, SetSite};
use crate::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A state under test plus the log that built it.
struct World {
    s: Bookings,
    log: Vec<(u64, LogCommand)>,
    index: u64,
    now: Timestamp,
    /// The command version proposed (`LogCommand::CURRENT` unless a test says otherwise).
    version: u8,
}

fn operator() -> Actor {
    Actor {
        tenant: None,
        role: Role::Operator,
        name: "operator".into(),
        user: None,
    }
}

fn admin(t: TenantId) -> Actor {
    Actor {
        tenant: Some(t),
        role: Role::Admin,
        name: "token:admin".into(),
        user: None,
    }
}

fn staff(t: TenantId, user: UserId, name: &str) -> Actor {
    Actor {
        tenant: Some(t),
        role: Role::Staff,
        name: format!("user:{name}"),
        user: Some(user),
    }
}

fn room_spec(name: &str) -> RoomSpec {
    RoomSpec {
        name: name.into(),
        category: "classroom".into(),
        capacity: 30,
        location: String::new(),
        description: String::new(),
        bookable: true,
        allowed_roles: Vec::new(),
        allowed_departments: Vec::new(),
        approval_required: false,
        rules: Rules::default(),
    }
}

fn details(title: &str) -> BookingDetails {
    BookingDetails {
        title: title.into(),
        ..Default::default()
    }
}

/// School A (tenant `a`) with rooms `r1`, `r2` and staff user `u`; school B with room `rb`.
struct Seed {
    a: TenantId,
    b: TenantId,
    r1: RoomId,
    r2: RoomId,
    rb: RoomId,
    u: UserId,
}

impl World {
    fn new() -> (World, Seed) {
        let mut w = World {
            s: Bookings::default(),
            log: Vec::new(),
            index: 1,
            now: at("2026-03-01T07:00:00Z"),
            version: LogCommand::CURRENT,
        };
        let tenant = |w: &mut World, slug: &str| match w.run(
            operator(),
            Op::from(CreateTenant {
                slug: slug.into(),
                name: slug.to_uppercase(),
                time_zone: "Europe/London".into(),
                admin_token_sha256: format!("tok-{slug}"),
            }),
        ) {
            Outcome::TenantCreated(t) => t.id,
            o => panic!("{o:?}"),
        };
        let a = tenant(&mut w, "a");
        let b = tenant(&mut w, "b");
        let r1 = w.room(a, "R1");
        let r2 = w.room(a, "R2");
        let rb = w.room(b, "RB");
        let u = match w.run(
            admin(a),
            Op::from(CreateUser {
                tenant: a,
                username: "jo".into(),
                name: "Jo Bloggs".into(),
                email: "jo@a.sch.uk".into(),
                department: None,
                role: Role::Staff,
                password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            }),
        ) {
            Outcome::User(u) => u.id,
            o => panic!("{o:?}"),
        };
        (
            w,
            Seed {
                a,
                b,
                r1,
                r2,
                rb,
                u,
            },
        )
    }

    fn room(&mut self, t: TenantId, name: &str) -> RoomId {
        match self.run(
            admin(t),
            Op::from(CreateRoom {
                tenant: t,
                spec: room_spec(name),
            }),
        ) {
            Outcome::RoomCreated(r) => r.id,
            o => panic!("{o:?}"),
        }
    }

    /// Applies `op` with a fresh request key.
    fn run(&mut self, actor: Actor, op: Op) -> Outcome {
        let key = format!("k{}", self.index);
        self.run_keyed(actor, op, &key)
    }

    fn run_keyed(&mut self, actor: Actor, op: Op, key: &str) -> Outcome {
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap();
        let sent = op.clone();
        let command = Command {
            time: self.now,
            actor,
            request_key: key.into(),
            op,
        };
        let cmd = match self.version {
            1 => LogCommand::V1(command),
            _ => LogCommand::current(command),
        };
        self.log.push((self.index, cmd.clone()));
        let mut writes = WriteSet::default();
        let out = self.s.apply(self.index, cmd, &mut writes);
        assert!(
            sent.replies_as_declared(&out),
            "{sent:?} answered {out:?}, not the reply its Request declares"
        );
        let written: Vec<(Vec<u8>, Vec<u8>)> = (writes.ops().iter())
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        crate::records::tests::same_as_flat(&written);
        self.index += 1;
        out
    }

    fn book(&mut self, actor: Actor, t: TenantId, room: RoomId, from: &str, to: &str) -> Outcome {
        self.run(
            actor,
            Op::from(CreateBooking {
                tenant: t,
                room,
                start: at(from),
                end: at(to),
                details: details("Meeting"),
            }),
        )
    }

    /// An admin of `t` creates a staff token `name` whose hash is `sha`.
    fn token(&mut self, t: TenantId, name: &str, sha: &str) -> Outcome {
        self.run(
            admin(t),
            Op::from(CreateToken {
                tenant: t,
                name: name.into(),
                role: Role::Staff,
                sha256: sha.into(),
            }),
        )
    }

    fn revoke(&mut self, t: TenantId, token: TokenId) -> Outcome {
        self.run(admin(t), Op::from(RevokeToken { tenant: t, token }))
    }

    /// Replaying the log gives the same state; so does loading the records.
    fn check_replay(&self) {
        let mut replay = Bookings::default();
        for (i, cmd) in &self.log {
            replay.apply(*i, cmd.clone(), &mut WriteSet::default());
        }
        assert_eq!(replay, self.s, "replay differs");
        let records = self.s.records();
        crate::records::tests::same_as_flat(&records);
        let loaded = Bookings::load(&mut records.into_iter()).unwrap();
        assert_eq!(loaded, self.s, "reload differs");
    }
}

fn booked(o: &Outcome) -> BookingId {
    match o {
        Outcome::BookingCreated(b) => b.id,
        o => panic!("expected a booking, got {o:?}"),
    }
}

fn rejected(o: &Outcome) -> &Rejection {
    match o {
        Outcome::Rejected(r) => r,
        o => panic!("expected a rejection, got {o:?}"),
    }
}

#[test]
fn overlaps_conflict_and_touching_or_other_rooms_do_not() {
    let (mut w, k) = World::new();
    let a = admin(k.a);
    booked(&w.book(
        a.clone(),
        k.a,
        k.r1,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    for (from, to) in [
        ("2026-03-02T09:30:00Z", "2026-03-02T10:30:00Z"),
        ("2026-03-02T08:00:00Z", "2026-03-02T11:00:00Z"),
        ("2026-03-02T09:10:00Z", "2026-03-02T09:20:00Z"),
    ] {
        let o = w.book(a.clone(), k.a, k.r1, from, to);
        assert!(
            matches!(rejected(&o), Rejection::Conflict(Clash::Booking { .. })),
            "{from}"
        );
    }
    booked(&w.book(
        a.clone(),
        k.a,
        k.r1,
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
    ));
    booked(&w.book(
        a.clone(),
        k.a,
        k.r1,
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    ));
    booked(&w.book(
        a.clone(),
        k.a,
        k.r2,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    let o = w.book(
        a.clone(),
        k.a,
        k.r1,
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::Invalid { field, .. } if field == "end"));
    w.check_replay();
}

#[test]
fn commands_sharing_a_log_entry_get_distinct_ids() {
    let (mut w, k) = World::new();
    let a = admin(k.a);
    let room = |name: &str| {
        Op::from(CreateRoom {
            tenant: k.a,
            spec: room_spec(name),
        })
    };
    let first = match w.run_keyed(a.clone(), room("Lab 1"), "same-entry-1") {
        Outcome::RoomCreated(r) => r.id,
        o => panic!("{o:?}"),
    };
    // The cluster batches commands under load: the next ones share the previous one's entry.
    w.index -= 1;
    let second = match w.run_keyed(a.clone(), room("Lab 2"), "same-entry-2") {
        Outcome::RoomCreated(r) => r.id,
        o => panic!("{o:?}"),
    };
    w.index -= 1;
    let booking = booked(&w.run_keyed(
        a.clone(),
        Op::from(CreateBooking {
            tenant: k.a,
            room: first,
            start: at("2026-03-02T09:00:00Z"),
            end: at("2026-03-02T10:00:00Z"),
            details: details("Meeting"),
        }),
        "same-entry-3",
    ));
    let ids = BTreeSet::from([first, second, booking]);
    assert_eq!(ids.len(), 3, "ids {first}, {second}, {booking} collide");
    assert_eq!(w.s.school.rooms()[&first].name, "Lab 1");
    assert_eq!(w.s.school.rooms()[&second].name, "Lab 2");
    // A new entry starts its own ids.
    let later = booked(&w.book(
        a,
        k.a,
        second,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    assert!(later > booking);
    w.check_replay();
}

#[test]
fn tenants_cannot_see_or_touch_each_other() {
    let (mut w, k) = World::new();
    let id = booked(&w.book(
        admin(k.a),
        k.a,
        k.r1,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    // B's admin naming A's room, or claiming A's tenant id.
    let o = w.book(
        admin(k.b),
        k.b,
        k.r1,
        "2026-03-02T11:00:00Z",
        "2026-03-02T12:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::NotFound { .. }));
    let o = w.book(
        admin(k.b),
        k.a,
        k.r1,
        "2026-03-02T11:00:00Z",
        "2026-03-02T12:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::NotFound { .. }));
    for op in [
        Op::from(CancelBooking {
            tenant: k.b,
            booking: id,
            scope: CancelScope::One,
        }),
        Op::from(CancelBooking {
            tenant: k.a,
            booking: id,
            scope: CancelScope::One,
        }),
        Op::from(UpdateRoom {
            tenant: k.a,
            room: k.r1,
            spec: room_spec("X"),
        }),
        Op::from(CreateDepartment {
            tenant: k.a,
            name: "Maths".into(),
        }),
        Op::from(SetPeriods {
            tenant: k.a,
            periods: Vec::new(),
        }),
        Op::from(EndUserSessions {
            tenant: k.a,
            user: k.u,
        }),
    ] {
        let o = w.run(admin(k.b), op.clone());
        assert!(
            matches!(rejected(&o), Rejection::NotFound { .. }),
            "{op:?}: {o:?}"
        );
    }
    let o = w.run(
        admin(k.b),
        Op::from(UpdateRoom {
            tenant: k.b,
            room: k.r1,
            spec: room_spec("X"),
        }),
    );
    assert!(matches!(rejected(&o), Rejection::NotFound { .. }));
    let o = w.book(
        admin(k.b),
        k.b,
        k.rb,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    booked(&o);
    w.check_replay();
}

#[test]
fn retries_return_the_first_outcome_and_reused_keys_are_refused() {
    let (mut w, k) = World::new();
    let op = |room| {
        Op::from(CreateBooking {
            tenant: k.a,
            room,
            start: at("2026-03-02T09:00:00Z"),
            end: at("2026-03-02T10:00:00Z"),
            details: details("x"),
        })
    };
    let first = w.run_keyed(admin(k.a), op(k.r1), "idem/1/a");
    let again = w.run_keyed(admin(k.a), op(k.r1), "idem/1/a");
    assert_eq!(first, again);
    let other = w.run_keyed(admin(k.a), op(k.r2), "idem/1/a");
    assert_eq!(rejected(&other), &Rejection::IdempotencyKeyReused);
    assert_eq!(w.s.booking.bookings().len(), 1);
    w.check_replay();
}

#[test]
fn dedup_entries_expire_by_command_time() {
    let (mut w, k) = World::new();
    w.book(
        admin(k.a),
        k.a,
        k.r1,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    let key = format!("k{}", w.index - 1);
    assert!(w.s.dedup.contains_key(key.as_str()));
    w.now = at("2026-03-03T09:00:00Z");
    w.book(
        admin(k.a),
        k.a,
        k.r2,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    assert!(!w.s.dedup.contains_key(key.as_str()));
    w.check_replay();
}

/// A calendar: year 2025/26, spring term 5 Jan–27 Mar 2026 starting in week A, half term
/// 16–20 Feb, periods P1 09:00–10:00 and P2 10:00–11:00 every weekday.
fn school_calendar(w: &mut World, t: TenantId) -> (CalendarId, CalendarId) {
    let a = admin(t);
    w.run(
        a.clone(),
        Op::from(SetWeekCycle {
            tenant: t,
            labels: vec!["A".into(), "B".into()],
        }),
    );
    let year = match w.run(
        a.clone(),
        Op::from(CreateYear {
            tenant: t,
            name: "2025/26".into(),
            start: date(2025, 9, 1),
            end: date(2026, 8, 31),
        }),
    ) {
        Outcome::Calendar(c) => c.years[0].id,
        o => panic!("{o:?}"),
    };
    w.run(
        a.clone(),
        Op::from(CreateTerm {
            tenant: t,
            year,
            name: "Spring".into(),
            start: date(2026, 1, 5),
            end: date(2026, 3, 27),
            first_week: "A".into(),
        }),
    );
    w.run(
        a.clone(),
        Op::from(CreateTerm {
            tenant: t,
            year,
            name: "Summer".into(),
            start: date(2026, 4, 13),
            end: date(2026, 7, 17),
            first_week: "B".into(),
        }),
    );
    let half_term = match w.run(
        a.clone(),
        Op::from(CreateClosure {
            tenant: t,
            name: "Half term".into(),
            kind: ClosureKind::Holiday,
            start: date(2026, 2, 16),
            end: date(2026, 2, 20),
        }),
    ) {
        Outcome::Calendar(c) => c.closures[0].id,
        o => panic!("{o:?}"),
    };
    let periods = (1..=5)
        .flat_map(|d| {
            [("P1", 9), ("P2", 10)].map(|(n, h)| Period {
                weekday: d,
                name: n.into(),
                start: time(h, 0, 0, 0),
                end: time(h + 1, 0, 0, 0),
                kind: PeriodKind::Lesson,
            })
        })
        .collect();
    let o = w.run(a, Op::from(SetPeriods { tenant: t, periods }));
    assert!(matches!(o, Outcome::Calendar(_)), "{o:?}");
    (year, half_term)
}

#[test]
fn week_cycle_counts_term_weeks_and_skips_closed_weeks() {
    let (mut w, k) = World::new();
    school_calendar(&mut w, k.a);
    let cal = w.s.calendar(k.a);
    let label = |d: Date| cal.week_label(d).map(str::to_string);
    assert_eq!(label(date(2026, 1, 5)).as_deref(), Some("A"));
    assert_eq!(label(date(2026, 1, 16)).as_deref(), Some("B"));
    assert_eq!(label(date(2026, 2, 9)).as_deref(), Some("B")); // week 6
                                                               // Half term does not count: the week after it carries on the cycle.
    assert_eq!(label(date(2026, 2, 23)).as_deref(), Some("A"));
    assert_eq!(label(date(2026, 4, 1)), None); // Easter holiday: no term
    assert_eq!(label(date(2026, 4, 13)).as_deref(), Some("B")); // summer starts in B
}

fn lesson(weekday: u8, week: Option<&str>, start: (i8, i8), end: (i8, i8)) -> LessonSpec {
    LessonSpec {
        weekday,
        period: None,
        start: time(start.0, start.1, 0, 0),
        end: time(end.0, end.1, 0, 0),
        subject: "Maths".into(),
        class_name: "9X1".into(),
        teacher: "Ms Smith".into(),
        week: week.map(str::to_string),
        from: date(2026, 1, 1),
        to: date(2026, 12, 31),
    }
}

#[test]
fn lessons_occupy_rooms_in_their_weeks_of_term_and_can_be_released() {
    let (mut w, k) = World::new();
    school_calendar(&mut w, k.a);
    // Mondays 09:00–10:00 local in week A only.
    let l = match w.run(
        admin(k.a),
        Op::from(CreateLesson {
            tenant: k.a,
            room: k.r1,
            lesson: lesson(1, Some("A"), (9, 0), (10, 0)),
        }),
    ) {
        Outcome::Lesson(l) => l.id,
        o => panic!("{o:?}"),
    };
    let jo = staff(k.a, k.u, "jo");
    // 9 Mar 2026 is a Monday in week A (the half-term week does not count; GMT, so local = UTC).
    let o = w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-09T09:30:00Z",
        "2026-03-09T10:30:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::Conflict(Clash::Lesson { id, .. }) if *id == l));
    // 2 Mar is week B: free.
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-02T09:30:00Z",
        "2026-03-02T10:30:00Z",
    ));
    // The other room is free in week A.
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r2,
        "2026-03-09T09:30:00Z",
        "2026-03-09T10:30:00Z",
    ));
    // Easter holidays are out of term: no lesson.
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-30T09:00:00Z",
        "2026-03-30T10:00:00Z",
    ));
    // Releasing the lesson for 9 Mar frees it; unreleasing after a booking is refused.
    let o = w.run(
        jo.clone(),
        Op::from(SetLessonRelease {
            tenant: k.a,
            lesson: l,
            date: date(2026, 3, 9),
            released: true,
        }),
    );
    assert!(matches!(o, Outcome::Lesson(_)), "{o:?}");
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-09T09:30:00Z",
        "2026-03-09T10:00:00Z",
    ));
    let o = w.run(
        jo.clone(),
        Op::from(SetLessonRelease {
            tenant: k.a,
            lesson: l,
            date: date(2026, 3, 9),
            released: false,
        }),
    );
    assert!(matches!(
        rejected(&o),
        Rejection::Conflict(Clash::Booking { .. })
    ));
    // Releasing on a day it does not run is refused.
    let o = w.run(
        jo,
        Op::from(SetLessonRelease {
            tenant: k.a,
            lesson: l,
            date: date(2026, 3, 2),
            released: true,
        }),
    );
    assert!(matches!(rejected(&o), Rejection::Invalid { field, .. } if field == "date"));
    w.check_replay();
}

#[test]
fn closures_refuse_bookings_unless_an_admin_overrides_with_a_reason() {
    let (mut w, k) = World::new();
    // Commands sent in January, so February's half term is still to come.
    w.now = at("2026-01-15T07:00:00Z");
    school_calendar(&mut w, k.a);
    let jo = staff(k.a, k.u, "jo");
    let o = w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-02-17T09:00:00Z",
        "2026-02-17T10:00:00Z",
    );
    assert!(
        matches!(rejected(&o), Rejection::Conflict(Clash::Closure { name, .. }) if name == "Half term")
    );
    let mut d = details("Holiday club");
    d.override_reason = Some("approved by head".into());
    let op = Op::from(CreateBooking {
        tenant: k.a,
        room: k.r1,
        start: at("2026-02-17T09:00:00Z"),
        end: at("2026-02-17T10:00:00Z"),
        details: d,
    });
    let o = w.run(jo, op.clone());
    assert!(
        matches!(rejected(&o), Rejection::Forbidden { .. }),
        "staff cannot override"
    );
    let b = match w.run(admin(k.a), op) {
        Outcome::BookingCreated(b) => b,
        o => panic!("{o:?}"),
    };
    assert_eq!(b.override_reason.as_deref(), Some("approved by head"));
    // An override never allows a double booking.
    let mut d = details("Second");
    d.override_reason = Some("really".into());
    let o = w.run(
        admin(k.a),
        Op::from(CreateBooking {
            tenant: k.a,
            room: k.r1,
            start: at("2026-02-17T09:30:00Z"),
            end: at("2026-02-17T10:30:00Z"),
            details: d,
        }),
    );
    assert!(matches!(
        rejected(&o),
        Rejection::Conflict(Clash::Booking { .. })
    ));
    w.check_replay();
}

#[test]
fn weekly_occurrences_keep_local_time_across_both_clock_changes() {
    let (mut w, k) = World::new();
    school_calendar(&mut w, k.a);
    let cal = w.s.calendar(k.a);
    let tz = zone("Europe/London");
    let rule = |first, until| WeeklyRule {
        first,
        until,
        weekdays: vec![1],
        week: None,
        start: time(9, 0, 0, 0),
        end: time(10, 0, 0, 0),
    };
    // Spring: Mondays 23 and 30 March 2026 (clocks go forward on Sunday 29 March).
    let occ = expand_weekly(&cal, &tz, &rule(date(2026, 3, 23), date(2026, 3, 30)));
    let starts: Vec<String> = occ.iter().map(|o| o.start.to_string()).collect();
    assert_eq!(starts, ["2026-03-23T09:00:00Z", "2026-03-30T08:00:00Z"]);
    // Autumn: Mondays 19 and 26 October 2026 (clocks go back on Sunday 25 October).
    let occ = expand_weekly(&cal, &tz, &rule(date(2026, 10, 19), date(2026, 10, 26)));
    let starts: Vec<String> = occ.iter().map(|o| o.start.to_string()).collect();
    assert_eq!(starts, ["2026-10-19T08:00:00Z", "2026-10-26T09:00:00Z"]);
    // A lesson at 09:00 local occupies 08:00Z after the spring change (30 March is outside
    // term, so use the summer term's first Monday, 13 April, week B).
    w.run(
        admin(k.a),
        Op::from(CreateLesson {
            tenant: k.a,
            room: k.r1,
            lesson: lesson(1, None, (9, 0), (10, 0)),
        }),
    );
    let o = w.book(
        admin(k.a),
        k.a,
        k.r1,
        "2026-04-13T08:30:00Z",
        "2026-04-13T08:45:00Z",
    );
    assert!(matches!(
        rejected(&o),
        Rejection::Conflict(Clash::Lesson { .. })
    ));
    booked(&w.book(
        admin(k.a),
        k.a,
        k.r1,
        "2026-04-13T09:00:00Z",
        "2026-04-13T09:30:00Z",
    ));
    // The spring-forward gap: 01:30 local on 29 March does not exist; it moves forward.
    assert_eq!(
        instant(&tz, date(2026, 3, 29), time(1, 30, 0, 0)).to_string(),
        "2026-03-29T01:30:00Z"
    );
    w.check_replay();
}

fn series_op(k: &Seed, occ: Vec<Occurrence>, mode: SeriesMode) -> Op {
    Op::from(CreateSeries {
        tenant: k.a,
        room: k.r1,
        rule: "Mon weekly".into(),
        occurrences: occ,
        mode,
        details: details("Club"),
    })
}

#[test]
fn series_are_all_or_nothing_or_skip_conflicts_and_cancel_by_scope() {
    let (mut w, k) = World::new();
    w.now = at("2026-01-15T07:00:00Z");
    school_calendar(&mut w, k.a);
    let cal = w.s.calendar(k.a);
    let tz = zone("Europe/London");
    let occ = expand_weekly(
        &cal,
        &tz,
        &WeeklyRule {
            first: date(2026, 2, 2),
            until: date(2026, 3, 9),
            weekdays: vec![1],
            week: None,
            start: time(15, 30, 0, 0),
            end: time(16, 30, 0, 0),
        },
    );
    // Five Mondays from 2 Feb to 9 Mar, minus half term (16 Feb).
    assert_eq!(occ.len(), 5);
    let jo = staff(k.a, k.u, "jo");
    let taken = booked(&w.book(
        admin(k.a),
        k.a,
        k.r1,
        "2026-02-23T16:00:00Z",
        "2026-02-23T17:00:00Z",
    ));
    let o = w.run(
        jo.clone(),
        series_op(&k, occ.clone(), SeriesMode::AllOrNothing),
    );
    match rejected(&o) {
        Rejection::SeriesConflicts(list) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].0.date, date(2026, 2, 23));
            assert!(matches!(&list[0].1, Clash::Booking { id, .. } if *id == taken));
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(w.s.booking.bookings().len(), 1, "nothing booked");
    let (series, ids) = match w.run(jo.clone(), series_op(&k, occ, SeriesMode::SkipConflicts)) {
        Outcome::SeriesCreated { series, bookings } => {
            (series, bookings.iter().map(|b| b.id).collect::<Vec<_>>())
        }
        o => panic!("{o:?}"),
    };
    assert_eq!(ids.len(), 4);
    assert_eq!(series.skipped.len(), 1);
    // Cancel the third and following: two cancelled, two left.
    let o = w.run(
        jo.clone(),
        Op::from(CancelBooking {
            tenant: k.a,
            booking: ids[2],
            scope: CancelScope::ThisAndFollowing,
        }),
    );
    match o {
        Outcome::BookingsCancelled(list) => {
            assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), ids[2..])
        }
        o => panic!("{o:?}"),
    }
    // Another staff member may not cancel Jo's series.
    let o = w.run(
        staff(k.a, 999, "other"),
        Op::from(CancelBooking {
            tenant: k.a,
            booking: ids[0],
            scope: CancelScope::Series,
        }),
    );
    assert!(matches!(rejected(&o), Rejection::Forbidden { .. }));
    w.now = at("2026-02-10T07:00:00Z");
    let o = w.run(
        jo,
        Op::from(CancelBooking {
            tenant: k.a,
            booking: ids[0],
            scope: CancelScope::Series,
        }),
    );
    // The whole series: what has not ended yet, and the one named (9 Feb is past and stays).
    assert!(
        matches!(o, Outcome::BookingsCancelled(ref l) if l.len() == 1 && l[0].id == ids[0]),
        "{o:?}"
    );
    w.check_replay();
}

#[test]
fn rules_limit_bookings_and_admins_override_them() {
    let (mut w, k) = World::new();
    let rules = Rules {
        max_days_ahead: Some(30),
        min_notice_minutes: Some(60),
        max_length_minutes: Some(120),
        max_active_per_user: vec![(Role::Staff, 2)],
    };
    assert!(matches!(
        w.run(admin(k.a), Op::from(SetTenantRules { tenant: k.a, rules })),
        Outcome::Tenant(_)
    ));
    let jo = staff(k.a, k.u, "jo");
    // w.now is 2026-03-01T07:00 plus a few seconds.
    let cases = [
        (
            "2026-03-01T07:30:00Z",
            "2026-03-01T08:00:00Z",
            "min_notice_minutes",
        ),
        (
            "2026-04-15T09:00:00Z",
            "2026-04-15T10:00:00Z",
            "max_days_ahead",
        ),
        (
            "2026-03-02T09:00:00Z",
            "2026-03-02T12:00:00Z",
            "max_length_minutes",
        ),
    ];
    for (from, to, which) in cases {
        let o = w.book(jo.clone(), k.a, k.r1, from, to);
        assert!(
            matches!(rejected(&o), Rejection::Rule { rule, .. } if rule == which),
            "{which}: {o:?}"
        );
    }
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-03T09:00:00Z",
        "2026-03-03T10:00:00Z",
    ));
    let o = w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-04T09:00:00Z",
        "2026-03-04T10:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::Rule { rule, .. } if rule == "max_active_per_user"));
    // A room's own rule beats the tenant's.
    let mut spec = room_spec("R2");
    spec.rules.max_length_minutes = Some(30);
    w.run(
        admin(k.a),
        Op::from(UpdateRoom {
            tenant: k.a,
            room: k.r2,
            spec,
        }),
    );
    let o = w.book(
        admin(k.a),
        k.a,
        k.r2,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::Rule { rule, .. } if rule == "max_length_minutes"));
    let mut d = details("Long");
    d.override_reason = Some("exam".into());
    let o = w.run(
        admin(k.a),
        Op::from(CreateBooking {
            tenant: k.a,
            room: k.r2,
            start: at("2026-03-02T09:00:00Z"),
            end: at("2026-03-02T10:00:00Z"),
            details: d,
        }),
    );
    booked(&o);
    w.check_replay();
}

#[test]
fn approval_rooms_hold_pending_bookings_until_decided() {
    let (mut w, k) = World::new();
    let mut spec = room_spec("Hall");
    spec.approval_required = true;
    let hall = match w.run(admin(k.a), Op::from(CreateRoom { tenant: k.a, spec })) {
        Outcome::RoomCreated(r) => r.id,
        o => panic!("{o:?}"),
    };
    let jo = staff(k.a, k.u, "jo");
    let o = w.book(
        jo.clone(),
        k.a,
        hall,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    let pending = match o {
        Outcome::BookingCreated(b) => {
            assert_eq!(b.status, BookingStatus::Pending);
            b.id
        }
        o => panic!("{o:?}"),
    };
    let o = w.book(
        admin(k.a),
        k.a,
        hall,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    assert!(
        matches!(rejected(&o), Rejection::Conflict(_)),
        "a pending booking holds the slot"
    );
    let o = w.run(
        jo,
        Op::from(DecideBooking {
            tenant: k.a,
            booking: pending,
            approve: true,
        }),
    );
    assert!(matches!(
        rejected(&o),
        Rejection::NotFound { .. } | Rejection::Forbidden { .. }
    ));
    let o = w.run(
        admin(k.a),
        Op::from(DecideBooking {
            tenant: k.a,
            booking: pending,
            approve: false,
        }),
    );
    assert!(
        matches!(o, Outcome::BookingDecided(ref b) if b.status == BookingStatus::Declined),
        "{o:?}"
    );
    booked(&w.book(
        admin(k.a),
        k.a,
        hall,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    let o = w.run(
        admin(k.a),
        Op::from(DecideBooking {
            tenant: k.a,
            booking: pending,
            approve: true,
        }),
    );
    assert!(matches!(rejected(&o), Rejection::NotPending { .. }));
    w.check_replay();
}

#[test]
fn sessions_end_on_password_change_sign_out_and_deactivation() {
    let (mut w, k) = World::new();
    let jo = staff(k.a, k.u, "jo");
    let session = |w: &mut World, sha: &str| {
        w.run(
            jo.clone(),
            Op::from(CreateSession {
                tenant: k.a,
                user: k.u,
                sha256: sha.into(),
                csrf_sha256: "c".into(),
                idle_secs: 3600,
                absolute_secs: 36000,
            }),
        )
    };
    assert!(matches!(session(&mut w, "s1"), Outcome::Session(_)));
    assert!(matches!(session(&mut w, "s2"), Outcome::Session(_)));
    // Nobody else opens a session for Jo.
    let o = w.run(
        admin(k.a),
        Op::from(CreateSession {
            tenant: k.a,
            user: k.u,
            sha256: "s3".into(),
            csrf_sha256: "c".into(),
            idle_secs: 1,
            absolute_secs: 1,
        }),
    );
    assert!(matches!(rejected(&o), Rejection::Forbidden { .. }));
    let now = w.now;
    assert!(w.s.live_session("s1", now).is_some());
    // A password change from s1 keeps s1 and ends s2.
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA".to_string();
    w.run(
        jo.clone(),
        Op::from(SetPassword {
            tenant: k.a,
            user: k.u,
            password_phc: phc,
            keep_session: Some("s1".into()),
        }),
    );
    assert!(w.s.people.sessions().contains_key("s1") && !w.s.people.sessions().contains_key("s2"));
    // Idle expiry is judged at read time.
    let later = now
        .checked_add(jiff::SignedDuration::from_secs(3601))
        .unwrap();
    assert!(w.s.live_session("s1", later).is_none());
    w.run(
        admin(k.a),
        Op::from(EndUserSessions {
            tenant: k.a,
            user: k.u,
        }),
    );
    assert!(w.s.people.sessions().is_empty());
    session(&mut w, "s4");
    let o = w.run(
        admin(k.a),
        Op::from(UpdateUser {
            tenant: k.a,
            user: k.u,
            name: "Jo".into(),
            email: "jo@a.sch.uk".into(),
            department: None,
            role: Role::Staff,
            active: false,
        }),
    );
    assert!(matches!(o, Outcome::User(_)), "{o:?}");
    assert!(
        w.s.people.sessions().is_empty(),
        "deactivation ends sessions"
    );
    // The audit history never holds a password hash.
    assert!(w
        .s
        .audit
        .all()
        .all(|a| !a.after.as_deref().unwrap_or("").contains("argon2")));
    w.check_replay();
}

#[test]
fn users_are_unique_per_tenant_by_username_and_email() {
    let (mut w, k) = World::new();
    let new_user = |t: TenantId, username: &str, email: &str| {
        Op::from(CreateUser {
            tenant: t,
            username: username.into(),
            name: "X".into(),
            email: email.into(),
            department: None,
            role: Role::Staff,
            password_phc: "$argon2id$x".into(),
        })
    };
    let o = w.run(admin(k.a), new_user(k.a, "JO", "x@a.sch.uk"));
    assert!(matches!(rejected(&o), Rejection::AlreadyExists { .. }));
    let o = w.run(admin(k.a), new_user(k.a, "sam", "Jo@A.sch.uk"));
    assert!(matches!(rejected(&o), Rejection::AlreadyExists { .. }));
    let o = w.run(admin(k.a), new_user(k.a, "sam", "not-an-email"));
    assert!(matches!(rejected(&o), Rejection::Invalid { field, .. } if field == "email"));
    assert!(matches!(
        w.run(admin(k.b), new_user(k.b, "jo", "jo@a.sch.uk")),
        Outcome::User(_)
    ));
    let o = w.run(staff(k.a, k.u, "jo"), new_user(k.a, "sam", "sam@a.sch.uk"));
    assert!(matches!(rejected(&o), Rejection::Forbidden { .. }));
    w.check_replay();
}

#[test]
fn timetable_import_is_all_or_nothing_with_row_errors() {
    let (mut w, k) = World::new();
    let row = |row, room: &str, weekday| LessonImport {
        row,
        room: room.into(),
        lesson: lesson(weekday, None, (9, 0), (10, 0)),
    };
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: vec![row(2, "R1", 1), row(3, "Nowhere", 2), row(4, "r2", 9)],
            replace: false,
        }),
    );
    match rejected(&o) {
        Rejection::Rows(errs) => {
            let got: Vec<(u32, &str)> = errs.iter().map(|e| (e.row, e.field.as_str())).collect();
            assert_eq!(got, [(3, "room"), (4, "weekday")]);
        }
        r => panic!("{r:?}"),
    }
    assert!(w.s.school.lessons().is_empty());
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: vec![row(2, "R1", 1), row(3, "r2", 2)],
            replace: false,
        }),
    );
    assert_eq!(
        o,
        Outcome::TimetableImported {
            imported: 2,
            unchanged: 0
        }
    );
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: vec![row(2, "R1", 3)],
            replace: true,
        }),
    );
    assert_eq!(
        o,
        Outcome::TimetableImported {
            imported: 1,
            unchanged: 0
        }
    );
    assert_eq!(w.s.school.lessons().len(), 1);
    w.check_replay();
}

#[test]
fn audit_records_who_changed_what_before_and_after() {
    let (mut w, k) = World::new();
    let jo = staff(k.a, k.u, "jo");
    let id = booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ));
    w.run(
        jo,
        Op::from(CancelBooking {
            tenant: k.a,
            booking: id,
            scope: CancelScope::One,
        }),
    );
    let entries = w.s.audit_of(k.a, Some(("booking", id)), None, 10);
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["cancelled", "created"]);
    assert_eq!(entries[0].user, Some(k.u));
    assert!(entries[0].before.as_deref().unwrap().contains("\"active\""));
    assert!(entries[0]
        .after
        .as_deref()
        .unwrap()
        .contains("\"cancelled\""));
    assert_eq!(w.s.audit_of(k.a, None, Some(k.u), 10).len(), 2);
    assert!(w
        .s
        .audit_of(k.b, Some(("booking", id)), None, 10)
        .is_empty());
    w.check_replay();
}

/// A random step of the property test.
#[derive(Debug, Clone)]
enum Step {
    Book {
        room: usize,
        day: u8,
        start: u8,
        len: u8,
        admin: bool,
        over: bool,
    },
    Cancel {
        pick: usize,
    },
    Series {
        room: usize,
        start: u8,
        skip: bool,
    },
    Release {
        pick: usize,
        day: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize, 0..10u8, 0..20u8, 1..6u8, any::<bool>(), any::<bool>())
            .prop_map(|(room, day, start, len, admin, over)| Step::Book { room, day, start, len, admin, over }),
        2 => (0..64usize).prop_map(|pick| Step::Cancel { pick }),
        1 => (0..2usize, 0..20u8, any::<bool>()).prop_map(|(room, start, skip)| Step::Series { room, start, skip }),
        1 => (0..64usize, 0..10u8).prop_map(|(pick, day)| Step::Release { pick, day }),
    ]
}

/// A local date in the two weeks from Monday 2 March 2026, and a quarter-hour from 08:00.
fn slot(day: u8, q: u8) -> (Date, jiff::civil::Time) {
    let d = date(2026, 3, 2)
        .checked_add(jiff::Span::new().days(day as i64))
        .unwrap();
    (d, time(8 + (q / 4) as i8, (q % 4) as i8 * 15, 0, 0))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random interleavings never leave two occupations of one room overlapping: no two
    /// bookings ever, and no booking over a lesson unless an admin overrode it. Replaying
    /// the log and reloading the records give the same state.
    #[test]
    fn random_interleavings_never_double_book(steps in proptest::collection::vec(step(), 1..40)) {
        let (mut w, k) = World::new();
        school_calendar(&mut w, k.a);
        let rooms = [k.r1, k.r2];
        for (i, room) in rooms.iter().enumerate() {
            w.run(admin(k.a), Op::from(CreateLesson { tenant: k.a, room: *room, lesson: lesson(1 + i as u8, Some("A"), (9, 0), (10, 0)) }));
            w.run(admin(k.a), Op::from(CreateLesson { tenant: k.a, room: *room, lesson: lesson(3, None, (11, 0), (12, 0)) }));
        }
        let tz = zone("Europe/London");
        let jo = staff(k.a, k.u, "jo");
        for s in steps {
            match s {
                Step::Book { room, day, start, len, admin: as_admin, over } => {
                    let (d, t) = slot(day, start);
                    let from = instant(&tz, d, t);
                    let to = from.checked_add(jiff::SignedDuration::from_mins(15 * len as i64)).unwrap();
                    let mut det = details("p");
                    if over { det.override_reason = Some("why".into()); }
                    let actor = if as_admin { admin(k.a) } else { jo.clone() };
                    w.run(actor, Op::from(CreateBooking { tenant: k.a, room: rooms[room], start: from, end: to, details: det }));
                }
                Step::Cancel { pick } => {
                    if let Some(b) = w.s.booking.bookings().values().nth(pick % w.s.booking.bookings().len().max(1)).map(|b| b.id) {
                        w.run(admin(k.a), Op::from(CancelBooking { tenant: k.a, booking: b, scope: if pick % 3 == 0 { CancelScope::Series } else { CancelScope::One } }));
                    }
                }
                Step::Series { room, start, skip } => {
                    let (_, t) = slot(0, start);
                    let cal = w.s.calendar(k.a);
                    let rule = WeeklyRule { first: date(2026, 3, 2), until: date(2026, 3, 13), weekdays: vec![1, 3, 5], week: None, start: t, end: t.checked_add(jiff::SignedDuration::from_mins(45)).unwrap() };
                    let occ = expand_weekly(&cal, &tz, &rule);
                    let mode = if skip { SeriesMode::SkipConflicts } else { SeriesMode::AllOrNothing };
                    w.run(jo.clone(), Op::from(CreateSeries { tenant: k.a, room: rooms[room], rule: "r".into(), occurrences: occ, mode, details: details("s") }));
                }
                Step::Release { pick, day } => {
                    if let Some(l) = w.s.school.lessons().keys().nth(pick % w.s.school.lessons().len()).copied() {
                        let (d, _) = slot(day, 0);
                        w.run(jo.clone(), Op::from(SetLessonRelease { tenant: k.a, lesson: l, date: d, released: pick % 2 == 0 }));
                    }
                }
            }
        }
        let t = w.s.school.tenants()[&k.a].clone();
        for room in rooms {
            let mut held: Vec<&Booking> = w.s.booking.bookings().values().filter(|b| b.room == room && b.status.holds_slot()).map(|b| &**b).collect();
            held.sort_by_key(|b| b.start);
            for pair in held.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "overlap: {:?} {:?}", pair[0], pair[1]);
            }
            for b in &held {
                if b.override_reason.is_none() {
                    let lessons = w.s.lessons_in(&t, room, b.start, b.end);
                    prop_assert!(lessons.is_empty(), "booking {:?} over lesson {:?}", b, lessons[0].0);
                }
            }
        }
        w.check_replay();
    }
}

fn page_view(tenant: TenantId, visitor: u8, at_: &str, path: &str) -> PageView {
    PageView {
        tenant,
        at: at(at_),
        path: path.into(),
        source: Some("google.com".into()),
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: crate::analytics::Device::Desktop,
        country: Some("GB".into()),
        city: Some("London".into()),
        visitor: [visitor; 16],
    }
}

#[test]
fn page_views_are_counted_per_tenant_and_salts_and_visitors_expire_after_two_days() {
    let (mut w, k) = World::new();
    let salt = "ab".repeat(32);
    let today = date(2026, 3, 1);
    let set_salt = |day: Date, salt: &str| {
        Op::from(SetAnalyticsSalt {
            day,
            salt: salt.into(),
        })
    };
    assert!(matches!(
        rejected(&w.run(operator(), set_salt(today, "zz"))),
        Rejection::Invalid { field, .. } if field == "salt"
    ));
    assert!(matches!(
        rejected(&w.run(operator(), set_salt(date(2026, 2, 20), &salt))),
        Rejection::Invalid { field, .. } if field == "day"
    ));
    assert_eq!(w.run(operator(), set_salt(today, &salt)), Outcome::Done);
    // The first salt of a day stays: every node keys that day's visitors alike.
    assert_eq!(
        w.run(operator(), set_salt(today, &"cd".repeat(32))),
        Outcome::Done
    );
    assert_eq!(w.s.analytics_salt(today), Some(salt.as_str()));

    let batch = Op::from(RecordPageViews {
        views: vec![
            page_view(k.a, 1, "2026-03-01T07:00:10Z", "/v/a"),
            page_view(k.a, 1, "2026-03-01T07:03:10Z", "/v/a/hall?utm_source=x"),
            page_view(k.a, 2, "2026-03-01T07:04:00Z", "/v/a"),
            page_view(k.b, 1, "2026-03-01T07:04:00Z", "/v/b"),
            // Unknown tenant, two days old, from the far future, and malformed: skipped.
            page_view(999, 1, "2026-03-01T07:04:00Z", "/v/x"),
            page_view(k.a, 3, "2026-02-27T07:06:00Z", "/v/a"),
            page_view(k.a, 3, "2026-03-01T09:00:00Z", "/v/a"),
            page_view(k.a, 3, "2026-03-01T07:04:00Z", "no-slash"),
        ],
        retention_months: 13,
    });
    assert!(matches!(
        rejected(&w.run(admin(k.a), batch.clone())),
        Rejection::Forbidden { .. }
    ));
    assert_eq!(
        w.run(operator(), batch),
        Outcome::PageViewsRecorded {
            recorded: 4,
            skipped: 4
        }
    );
    let r = w.s.analytics_report(k.a, today, today, 10);
    assert_eq!((r.page_views, r.visits, r.unique_visitors), (3, 2, 2));
    assert_eq!(r.bounce_rate, Some(0.5));
    assert_eq!(r.average_visit_seconds, Some(90.0));
    assert_eq!(r.referrers, vec![("google.com".to_string(), 2)]);
    assert_eq!(w.s.analytics_report(k.b, today, today, 10).page_views, 1);
    assert_eq!(w.s.analytics.tally().visitors.len(), 3);

    // Salts and visitor state never reach a backup; the counts do.
    let private = |records: &[(Vec<u8>, Vec<u8>)]| {
        records
            .iter()
            .filter(|(key, _)| key.starts_with(b"analytics/"))
            .count()
    };
    assert_eq!(private(&w.s.records()), 4);
    assert_eq!(private(&w.s.backup_records()), 0);
    assert_eq!(w.s.backup_records().len(), w.s.records().len() - 4);
    w.check_replay();

    // Two days on, the salt and the visitors are gone and the day's counts remain.
    w.now = at("2026-03-03T00:00:01Z");
    w.run(operator(), set_salt(date(2026, 3, 3), &salt));
    assert_eq!(w.s.analytics_salt(today), None);
    assert!(w.s.analytics.tally().visitors.is_empty());
    assert_eq!(w.s.analytics_report(k.a, today, today, 10).page_views, 3);
    w.check_replay();
}

fn public(t: TenantId) -> Actor {
    Actor {
        tenant: Some(t),
        role: Role::Viewer,
        name: "public:enquiry".into(),
        user: None,
    }
}

fn enquiry(room: Option<RoomId>, first: Date) -> EnquirySpec {
    EnquirySpec {
        name: "Priya".into(),
        phone: "+44 (0)20 7946 0000".into(),
        email: "priya@example.org".into(),
        room,
        first_date: first,
        last_date: None,
        message: "Netball on Saturdays".into(),
    }
}

#[test]
fn the_public_site_takes_enquiries_only_when_published_and_only_for_its_rooms() {
    let (mut w, k) = World::new();
    let today = date(2026, 3, 1);
    let ask = |e: EnquirySpec| {
        Op::from(CreateEnquiry {
            tenant: k.a,
            enquiry: e,
        })
    };
    // Not published yet: no enquiries, and nothing public.
    assert!(matches!(
        rejected(&w.run(public(k.a), ask(enquiry(None, today)))),
        Rejection::Forbidden { .. }
    ));
    assert!(w.s.public_site("a").is_none());
    let site = |rooms: Vec<RoomId>, email: &str| {
        Op::from(SetSite {
            tenant: k.a,
            site: SiteSpec {
                published: true,
                description: "Our hall.".into(),
                contact_email: email.into(),
                hire_rooms: rooms,
            },
        })
    };
    // Only admins set it; rooms must be the tenant's, once each; the email must be one.
    assert!(matches!(
        rejected(&w.run(staff(k.a, k.u, "jo"), site(vec![k.r1], ""))),
        Rejection::Forbidden { .. }
    ));
    assert!(matches!(
        rejected(&w.run(admin(k.a), site(vec![k.rb], ""))),
        Rejection::NotFound { .. }
    ));
    assert!(matches!(
        rejected(&w.run(admin(k.a), site(vec![k.r1, k.r1], ""))),
        Rejection::Invalid { field, .. } if field == "hire_rooms"
    ));
    assert!(matches!(
        rejected(&w.run(admin(k.a), site(vec![k.r1], "lettings"))),
        Rejection::Invalid { field, .. } if field == "contact_email"
    ));
    assert!(matches!(
        w.run(admin(k.a), site(vec![k.r1], "lettings@a.sch.uk")),
        Outcome::Site(_)
    ));
    assert_eq!(w.s.public_site("a").map(|(t, _)| t.id), Some(k.a));
    assert!(w.s.public_site("b").is_none());

    // Field by field, what a visitor may send.
    let cases: Vec<(EnquirySpec, &str)> = vec![
        (enquiry(Some(k.r2), today), "room"),
        (enquiry(None, date(2026, 2, 28)), "first_date"),
        (enquiry(None, date(2029, 1, 1)), "first_date"),
        (
            EnquirySpec {
                last_date: Some(date(2026, 2, 27)),
                first_date: date(2026, 3, 2),
                ..enquiry(None, today)
            },
            "last_date",
        ),
        (
            EnquirySpec {
                email: "priya".into(),
                ..enquiry(None, today)
            },
            "email",
        ),
        (
            EnquirySpec {
                phone: "call me".into(),
                ..enquiry(None, today)
            },
            "phone",
        ),
        (
            EnquirySpec {
                name: " ".into(),
                ..enquiry(None, today)
            },
            "name",
        ),
        (
            EnquirySpec {
                message: "x".repeat(4001),
                ..enquiry(None, today)
            },
            "message",
        ),
    ];
    for (e, field) in cases {
        match rejected(&w.run(public(k.a), ask(e))) {
            Rejection::Invalid { field: f, .. } => assert_eq!(f, field),
            r => panic!("{field}: {r:?}"),
        }
    }
    // The other school's visitor actor cannot write into this school.
    assert!(matches!(
        rejected(&w.run(public(k.b), ask(enquiry(None, today)))),
        Rejection::NotFound { .. }
    ));
    let id = match w.run(public(k.a), ask(enquiry(Some(k.r1), today))) {
        Outcome::Enquiry(e) => e.id,
        o => panic!("{o:?}"),
    };
    assert_eq!(w.s.enquiries_of(k.a, false).len(), 1);
    assert!(w.s.enquiries_of(k.b, true).is_empty());

    // Admins mark it dealt with (audited) and can reopen it.
    let handled = |h: bool| {
        Op::from(SetEnquiryHandled {
            tenant: k.a,
            enquiry: id,
            handled: h,
        })
    };
    assert!(matches!(
        rejected(&w.run(staff(k.a, k.u, "jo"), handled(true))),
        Rejection::Forbidden { .. }
    ));
    assert!(matches!(
        w.run(admin(k.a), handled(true)),
        Outcome::Enquiry(Enquiry {
            handled_at: Some(_),
            ..
        })
    ));
    assert!(w.s.enquiries_of(k.a, false).is_empty());
    assert_eq!(w.s.enquiries_of(k.a, true).len(), 1);
    assert_eq!(w.s.audit_of(k.a, Some(("enquiry", id)), None, 10).len(), 1);
    w.check_replay();
}

fn create_lesson(w: &mut World, k: &Seed, room: RoomId, spec: LessonSpec) -> Outcome {
    w.run(
        admin(k.a),
        Op::from(CreateLesson {
            tenant: k.a,
            room,
            lesson: spec,
        }),
    )
}

#[test]
fn version_1_commands_keep_the_rules_they_were_proposed_under() {
    // An entry proposed by the previous release is applied as that release applied it, on every
    // replica and every replay: no new rule turns an accepted entry into a refused one.
    let (mut w, k) = World::new();
    w.version = 1;
    let past = w.book(
        staff(k.a, k.u, "jo"),
        k.a,
        k.r1,
        "2026-02-02T09:00:00Z",
        "2026-02-02T10:00:00Z",
    );
    booked(&past);
    let l = lesson(1, None, (9, 0), (10, 0));
    assert!(matches!(
        create_lesson(&mut w, &k, k.r1, l.clone()),
        Outcome::Lesson(_)
    ));
    assert!(matches!(
        create_lesson(&mut w, &k, k.r1, l.clone()),
        Outcome::Lesson(_)
    ));
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: vec![LessonImport {
                row: 2,
                room: "R1".into(),
                lesson: l.clone(),
            }],
            replace: false,
        }),
    );
    assert_eq!(o, Outcome::LessonsImported { count: 1 });
    assert_eq!(w.s.school.lessons().len(), 3);
    // The same commands of version 2 are refused.
    w.version = 2;
    let o = w.book(
        staff(k.a, k.u, "jo"),
        k.a,
        k.r2,
        "2026-02-02T09:00:00Z",
        "2026-02-02T10:00:00Z",
    );
    assert!(matches!(rejected(&o), Rejection::Rule { rule, .. } if rule == "not_in_past"));
    let o = create_lesson(&mut w, &k, k.r1, lesson(1, None, (9, 30), (10, 30)));
    assert!(matches!(rejected(&o), Rejection::Invalid { field, .. } if field == "start"));
    w.check_replay();
}

#[test]
fn bookings_that_have_ended_are_refused_unless_an_admin_records_one_with_a_reason() {
    let (mut w, k) = World::new();
    let jo = staff(k.a, k.u, "jo");
    // World time is 2026-03-01T07:00 and on.
    let o = w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-02-27T09:00:00Z",
        "2026-02-27T10:00:00Z",
    );
    match rejected(&o) {
        Rejection::Rule { rule, message } => {
            assert_eq!(rule, "not_in_past");
            assert!(message.contains("already passed"), "{message}");
        }
        r => panic!("{r:?}"),
    }
    // One under way may be booked (the rest of this period).
    booked(&w.book(
        jo.clone(),
        k.a,
        k.r1,
        "2026-03-01T06:30:00Z",
        "2026-03-01T08:00:00Z",
    ));
    // An admin records a past booking, with a reason.
    let mut d = details("Governors' meeting (recorded late)");
    d.override_reason = Some("entered after the event".into());
    let mut past = CreateBooking {
        tenant: k.a,
        room: k.r2,
        start: at("2026-02-27T09:00:00Z"),
        end: at("2026-02-27T10:00:00Z"),
        details: d,
    };
    booked(&w.run(admin(k.a), past.clone().into()));
    // Staff cannot override.
    past.start = at("2026-02-26T09:00:00Z");
    past.end = at("2026-02-26T10:00:00Z");
    assert!(matches!(
        rejected(&w.run(jo.clone(), past.into())),
        Rejection::Forbidden { .. }
    ));
    // A series whose first occurrence has ended is refused as a whole.
    let occ = vec![
        Occurrence {
            date: date(2026, 2, 23),
            start: at("2026-02-23T15:00:00Z"),
            end: at("2026-02-23T16:00:00Z"),
        },
        Occurrence {
            date: date(2026, 3, 2),
            start: at("2026-03-02T15:00:00Z"),
            end: at("2026-03-02T16:00:00Z"),
        },
    ];
    let o = w.run(jo, series_op(&k, occ, SeriesMode::SkipConflicts));
    assert!(
        matches!(rejected(&o), Rejection::Rule { rule, message } if rule == "not_in_past" && message.contains("2026-02-23"))
    );
    w.check_replay();
}

#[test]
fn a_rooms_lessons_may_not_overlap_unless_they_run_in_different_weeks() {
    let (mut w, k) = World::new();
    school_calendar(&mut w, k.a);
    let maths = lesson(1, None, (9, 0), (10, 0));
    assert!(matches!(
        create_lesson(&mut w, &k, k.r1, maths.clone()),
        Outcome::Lesson(_)
    ));
    for (what, spec) in [
        ("the same times", maths.clone()),
        ("a later start", lesson(1, None, (9, 30), (10, 30))),
        (
            "week A of every week",
            lesson(1, Some("A"), (9, 0), (10, 0)),
        ),
    ] {
        let o = create_lesson(&mut w, &k, k.r1, spec);
        match rejected(&o) {
            Rejection::Invalid { field, message } => {
                assert_eq!(field, "start", "{what}");
                assert!(message.contains("overlaps lesson"), "{what}: {message}");
            }
            r => panic!("{what}: {r:?}"),
        }
    }
    // Touching, another day, another room, or alternating weeks: all fine.
    for (room, spec) in [
        (k.r1, lesson(1, None, (10, 0), (11, 0))),
        (k.r1, lesson(2, None, (9, 0), (10, 0))),
        (k.r2, maths.clone()),
        (k.r2, lesson(3, Some("A"), (9, 0), (10, 0))),
        (k.r2, lesson(3, Some("B"), (9, 0), (10, 0))),
    ] {
        assert!(matches!(
            create_lesson(&mut w, &k, room, spec),
            Outcome::Lesson(_)
        ));
    }
    let before = w.s.school.lessons().len();
    // An import: a row already there exactly is left as it is, an overlapping one and a repeat
    // are reported, every problem at once.
    let row = |row, room: &str, spec: LessonSpec| LessonImport {
        row,
        room: room.into(),
        lesson: spec,
    };
    let rows = vec![
        row(2, "R1", maths.clone()),
        row(3, "R1", lesson(4, None, (9, 0), (10, 0))),
        row(4, "R1", lesson(4, None, (9, 0), (10, 0))),
        row(5, "R1", lesson(1, None, (9, 15), (9, 45))),
        row(6, "R1", lesson(4, None, (9, 30), (10, 30))),
    ];
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: rows.clone(),
            replace: false,
        }),
    );
    match rejected(&o) {
        Rejection::Rows(errs) => {
            let got: Vec<(u32, &str, &str)> = errs
                .iter()
                .map(|e| {
                    (
                        e.row,
                        e.field.as_str(),
                        e.message.split(' ').next().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    (4, "row", "repeats"),
                    (5, "start", "overlaps"),
                    (6, "start", "overlaps")
                ]
            );
            assert!(errs[2].message.contains("row 3"), "{:?}", errs[2]);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(w.s.school.lessons().len(), before, "nothing imported");
    let good = rows[..2].to_vec();
    for _ in 0..2 {
        w.run(
            admin(k.a),
            Op::from(ImportLessons {
                tenant: k.a,
                lessons: good.clone(),
                replace: false,
            }),
        );
    }
    // The same file twice: the same timetable.
    assert_eq!(w.s.school.lessons().len(), before + 1);
    let o = w.run(
        admin(k.a),
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: good.clone(),
            replace: false,
        }),
    );
    assert_eq!(
        o,
        Outcome::TimetableImported {
            imported: 0,
            unchanged: 2
        }
    );
    w.check_replay();
}

#[test]
fn quotas_cap_what_one_school_stores_per_kind() {
    let (mut w, k) = World::new();
    let q = Quotas {
        rooms: 3,
        lessons: 2,
        ..Default::default()
    };
    assert!(matches!(
        rejected(&w.run(admin(k.a), Op::from(SetQuotas { quotas: q.clone() }))),
        Rejection::Forbidden { .. }
    ));
    let mut zero = q.clone();
    zero.users = 0;
    assert!(matches!(
        rejected(&w.run(operator(), Op::from(SetQuotas { quotas: zero }))),
        Rejection::Invalid { field, .. } if field == "users"
    ));
    assert_eq!(
        w.run(operator(), Op::from(SetQuotas { quotas: q.clone() })),
        Outcome::Quotas(q)
    );
    // School A has two rooms: one more fits, then no more; school B is counted apart.
    w.room(k.a, "R3");
    let o = w.run(
        admin(k.a),
        Op::from(CreateRoom {
            tenant: k.a,
            spec: room_spec("R4"),
        }),
    );
    assert_eq!(
        rejected(&o),
        &Rejection::QuotaExceeded {
            kind: "rooms".into(),
            limit: 3,
            stored: 3
        }
    );
    w.room(k.b, "RB2");
    assert_eq!(w.s.stored(k.b, Kind::Room), 2);
    // Lessons: an import that would pass the cap is refused whole; replacing counts what goes.
    let row = |row, weekday| LessonImport {
        row,
        room: "R1".into(),
        lesson: lesson(weekday, None, (9, 0), (10, 0)),
    };
    let import = |rows, replace| {
        Op::from(ImportLessons {
            tenant: k.a,
            lessons: rows,
            replace,
        })
    };
    let o = w.run(
        admin(k.a),
        import(vec![row(2, 1), row(3, 2), row(4, 3)], false),
    );
    assert!(matches!(rejected(&o), Rejection::QuotaExceeded { kind, .. } if kind == "lessons"));
    w.run(admin(k.a), import(vec![row(2, 1), row(3, 2)], false));
    let o = w.run(admin(k.a), import(vec![row(2, 4), row(3, 5)], true));
    assert!(
        matches!(o, Outcome::TimetableImported { imported: 2, .. }),
        "{o:?}"
    );
    assert_eq!(w.s.stored(k.a, Kind::Lesson), 2);
    // Counts are derived state: a reload rebuilds them exactly.
    w.check_replay();
}

#[test]
fn a_second_live_token_is_refused_by_its_quota_or_its_name_until_the_first_is_revoked() {
    // (api_tokens quota, the second token's name, why it is refused). The admin token counts.
    for (quota, second, refused) in [(2, "other", "quota"), (500, "sync", "name")] {
        let (mut w, k) = World::new();
        let q = Quotas {
            api_tokens: quota,
            ..Default::default()
        };
        w.run(operator(), Op::from(SetQuotas { quotas: q }));
        let Outcome::TokenCreated(t) = w.token(k.a, "sync", "s1") else {
            panic!()
        };
        let o = w.token(k.a, second, "s2");
        match (refused, rejected(&o)) {
            ("quota", Rejection::QuotaExceeded { kind, .. }) => assert_eq!(kind, "api_tokens"),
            ("name", Rejection::AlreadyExists { what, .. }) => assert_eq!(what, "token"),
            (_, r) => panic!("{refused}: {r:?}"),
        }
        w.revoke(k.a, t.id);
        assert!(matches!(
            w.token(k.a, second, "s3"),
            Outcome::TokenCreated(_)
        ));
        w.check_replay();
    }
}

#[test]
fn wrong_passwords_lock_the_account_wherever_they_were_tried() {
    let (mut w, k) = World::new();
    let policy = SignInPolicy {
        failures: 3,
        refill_secs: 60,
        lock_max_secs: 120,
    };
    let sign_in = Actor {
        tenant: Some(k.a),
        role: Role::Viewer,
        name: "sign-in".into(),
        user: None,
    };
    let fail = |w: &mut World| match w.run(
        sign_in.clone(),
        Op::from(RecordSignInFailure {
            tenant: k.a,
            user: k.u,
            policy,
        }),
    ) {
        Outcome::SignInGuard(g) => g,
        o => panic!("{o:?}"),
    };
    // Three failures are absorbed (commands one second apart), the fourth locks.
    for n in 1..=3 {
        let g = fail(&mut w);
        assert_eq!((g.failures, g.locked_at(w.now)), (n, None));
    }
    let g = fail(&mut w);
    let until = g.locked_at(w.now).expect("locked");
    assert!(
        until > w.now
            && until
                <= w.now
                    .checked_add(jiff::SignedDuration::from_secs(120))
                    .unwrap()
    );
    assert_eq!(w.s.sign_in_lock(k.u, w.now), Some(until));
    // The audit says so, once.
    let locked: Vec<_> =
        w.s.audit_of(k.a, Some(("user", k.u)), None, 10)
            .into_iter()
            .filter(|a| a.action == "sign_in_locked")
            .collect();
    assert_eq!(locked.len(), 1);
    // While locked, even a right password (checked on a node that had not seen the lock) opens
    // no session, and the user's own password change is refused; an admin's reset is not.
    let jo = staff(k.a, k.u, "jo");
    let o = w.run(
        jo.clone(),
        Op::from(CreateSession {
            tenant: k.a,
            user: k.u,
            sha256: "s".into(),
            csrf_sha256: "c".into(),
            idle_secs: 60,
            absolute_secs: 600,
        }),
    );
    assert_eq!(rejected(&o), &Rejection::Locked { until });
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3";
    let o = w.run(
        jo.clone(),
        Op::from(SetPassword {
            tenant: k.a,
            user: k.u,
            password_phc: phc.into(),
            keep_session: None,
        }),
    );
    assert!(matches!(rejected(&o), Rejection::Locked { .. }));
    let o = w.run(
        admin(k.a),
        Op::from(SetPassword {
            tenant: k.a,
            user: k.u,
            password_phc: phc.into(),
            keep_session: None,
        }),
    );
    assert!(matches!(o, Outcome::User(_)));
    // Once the lock is over, a session opens; once the bucket has drained, the guard is gone.
    w.now = until;
    assert!(matches!(
        w.run(
            jo,
            Op::from(CreateSession {
                tenant: k.a,
                user: k.u,
                sha256: "s".into(),
                csrf_sha256: "c".into(),
                idle_secs: 60,
                absolute_secs: 600,
            }),
        ),
        Outcome::Session(_)
    ));
    w.now = w
        .now
        .checked_add(jiff::SignedDuration::from_mins(10))
        .unwrap();
    w.run(operator(), Op::from(SetClusterIdentity { id: "x".into() }));
    assert!(
        w.s.people.sign_in_guards().is_empty(),
        "{:?}",
        w.s.people.sign_in_guards()
    );
    w.check_replay();
}

#[test]
fn a_change_is_refused_once_its_token_is_revoked_or_its_session_ended() {
    let (mut w, k) = World::new();
    let Outcome::TokenCreated(t) = w.token(k.a, "sync", "sha-sync") else {
        panic!()
    };
    let by_token = Actor {
        tenant: Some(k.a),
        role: Role::Staff,
        name: "token:sync".into(),
        user: None,
    };
    let book = |w: &mut World, actor: Actor, credential: Credential, hour: u8| {
        w.now = w
            .now
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap();
        let cmd = LogCommand::signed(
            Command {
                time: w.now,
                actor,
                request_key: format!("c{}", w.index),
                op: Op::from(CreateBooking {
                    tenant: k.a,
                    room: k.r1,
                    start: at(&format!("2026-03-09T{hour:02}:00:00Z")),
                    end: at(&format!("2026-03-09T{hour:02}:30:00Z")),
                    details: details("Sync"),
                }),
            },
            Some(credential),
        );
        w.log.push((w.index, cmd.clone()));
        let o = w.s.apply(w.index, cmd, &mut WriteSet::default());
        w.index += 1;
        o
    };
    let token = Credential::Token("sha-sync".into());
    booked(&book(&mut w, by_token.clone(), token.clone(), 9));
    w.revoke(k.a, t.id);
    // The receiving node may not have seen the revocation; apply has.
    assert_eq!(
        rejected(&book(&mut w, by_token, token, 10)),
        &Rejection::Unauthorized
    );
    let jo = staff(k.a, k.u, "jo");
    w.run(
        jo.clone(),
        Op::from(CreateSession {
            tenant: k.a,
            user: k.u,
            sha256: "sess".into(),
            csrf_sha256: "c".into(),
            idle_secs: 3600,
            absolute_secs: 36000,
        }),
    );
    let session = Credential::Session("sess".into());
    booked(&book(&mut w, jo.clone(), session.clone(), 11));
    w.run(
        jo.clone(),
        Op::from(EndSession {
            sha256: "sess".into(),
        }),
    );
    assert_eq!(
        rejected(&book(&mut w, jo, session, 12)),
        &Rejection::Unauthorized
    );
    w.check_replay();
}

/// `run` checks every record a command writes against the flat record enum of earlier releases
/// (`records/tests.rs`); this writes the kinds no other test here leaves behind.
#[test]
fn departments_feeds_and_backup_slots_are_written_as_earlier_releases_wrote_them() {
    let (mut w, k) = World::new();
    let department = w.run(
        admin(k.a),
        Op::from(CreateDepartment {
            tenant: k.a,
            name: "Science".into(),
        }),
    );
    assert!(
        matches!(department, Outcome::Department(_)),
        "{department:?}"
    );
    let feed = w.run(
        admin(k.a),
        Op::from(crate::feeds::CreateFeed {
            tenant: k.a,
            target: FeedTarget::Room(k.r1),
            sha256: "f".repeat(64),
        }),
    );
    assert!(matches!(feed, Outcome::FeedCreated(_)), "{feed:?}");
    let claim = w.run(
        operator(),
        Op::from(crate::system::ClaimBackup {
            slot: at("2026-09-07T09:00:00Z"),
            node: 1,
            term: 3,
        }),
    );
    assert_eq!(claim, Outcome::BackupClaim { granted: true });
    w.check_replay();
}
