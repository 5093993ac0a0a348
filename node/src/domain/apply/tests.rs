//! Table-driven apply tests: each case is a script of commands and the outcome each must give.

use roomraft_cluster::{App, WriteSet};

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Created,
    Cancelled,
    Conflict,
    NotFound,
    Invalid,
    Forbidden,
    AlreadyCancelled,
    KeyReused,
    Same, // exactly the outcome of the step it repeats
}

fn at(h: u32, m: u32) -> Timestamp {
    format!("2026-03-02T{h:02}:{m:02}:00Z").parse().unwrap()
}

fn admin(tenant: u64) -> Actor {
    Actor {
        tenant: Some(tenant),
        role: Role::Admin,
        name: "token:admin".into(),
    }
}

/// A state with tenant 1 (rooms 2 and 3) and tenant 4 (room 5).
fn seeded() -> (Bookings, u64) {
    let mut s = Bookings::default();
    let op = |op| {
        LogCommand::V1(Command {
            time: at(7, 0),
            actor: Actor {
                tenant: None,
                role: Role::Operator,
                name: "op".into(),
            },
            request_key: String::new(),
            op,
        })
    };
    let mut w = WriteSet::default();
    let mut key = |s: &mut Bookings, i: u64, c: LogCommand| {
        let LogCommand::V1(mut c) = c;
        c.request_key = format!("seed-{i}");
        s.apply(i, LogCommand::V1(c), &mut w)
    };
    key(
        &mut s,
        1,
        op(Op::CreateTenant {
            slug: "a".into(),
            name: "A".into(),
            time_zone: "Europe/London".into(),
            admin_token_sha256: "x".into(),
        }),
    );
    for (i, tenant) in [(2, 1), (3, 1)] {
        let c = LogCommand::V1(Command {
            time: at(7, 0),
            actor: admin(tenant),
            request_key: String::new(),
            op: Op::CreateRoom {
                tenant,
                name: format!("R{i}"),
                category: "classroom".into(),
                capacity: 30,
            },
        });
        key(&mut s, i, c);
    }
    key(
        &mut s,
        4,
        op(Op::CreateTenant {
            slug: "b".into(),
            name: "B".into(),
            time_zone: "Europe/London".into(),
            admin_token_sha256: "y".into(),
        }),
    );
    let c = LogCommand::V1(Command {
        time: at(7, 0),
        actor: admin(4),
        request_key: String::new(),
        op: Op::CreateRoom {
            tenant: 4,
            name: "R5".into(),
            category: "hall".into(),
            capacity: 200,
        },
    });
    key(&mut s, 5, c);
    (s, 6)
}

fn book(room: u64, from: (u32, u32), to: (u32, u32)) -> Op {
    Op::CreateBooking {
        tenant: 1,
        room,
        start: at(from.0, from.1),
        end: at(to.0, to.1),
        title: "Lesson".into(),
        notes: String::new(),
    }
}

fn classify(o: &Outcome) -> Expect {
    match o {
        Outcome::BookingCreated(_)
        | Outcome::RoomCreated(_)
        | Outcome::TenantCreated(_)
        | Outcome::TokenCreated { .. } => Expect::Created,
        Outcome::BookingCancelled(_) => Expect::Cancelled,
        Outcome::Rejected(Rejection::Conflict { .. }) => Expect::Conflict,
        Outcome::Rejected(Rejection::NotFound { .. }) => Expect::NotFound,
        Outcome::Rejected(Rejection::Invalid { .. }) => Expect::Invalid,
        Outcome::Rejected(Rejection::Forbidden { .. }) => Expect::Forbidden,
        Outcome::Rejected(Rejection::AlreadyCancelled { .. }) => Expect::AlreadyCancelled,
        Outcome::Rejected(Rejection::IdempotencyKeyReused) => Expect::KeyReused,
        Outcome::Rejected(Rejection::AlreadyExists { .. }) => Expect::Invalid,
    }
}

/// Runs `steps` (request key, actor tenant, op, expected) on the seeded state; asserts each outcome,
/// and that replaying the same log on a fresh state and loading the records give the same state.
fn check(name: &str, steps: &[(&str, u64, Op, Expect)]) {
    let (mut s, mut index) = seeded();
    let mut log = Vec::new();
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    for (i, (key, tenant, op, expect)) in steps.iter().enumerate() {
        let cmd = LogCommand::V1(Command {
            time: at(8, i as u32),
            actor: admin(*tenant),
            request_key: key.to_string(),
            op: op.clone(),
        });
        log.push((index, cmd.clone()));
        let mut w = WriteSet::default();
        let out = s.apply(index, cmd, &mut w);
        index += 1;
        if *expect == Expect::Same {
            let earlier = outcomes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, o)| o.clone());
            assert_eq!(
                Some(&out),
                earlier.as_ref(),
                "{name}: step {i} should repeat the earlier outcome"
            );
        } else {
            assert_eq!(classify(&out), *expect, "{name}: step {i}: {out:?}");
        }
        outcomes.push((key.to_string(), out));
    }
    // Determinism: replaying the same log gives the same state.
    let (mut replay, _) = seeded();
    for (i, cmd) in log {
        replay.apply(i, cmd, &mut WriteSet::default());
    }
    assert_eq!(replay, s, "{name}: replay differs");
    // Persistence: loading the records gives the same state.
    let loaded = Bookings::load(&mut s.records().into_iter()).unwrap();
    assert_eq!(loaded, s, "{name}: reload differs");
}

#[test]
fn apply_cases() {
    use Expect::*;
    check(
        "free slot books",
        &[("k1", 1, book(2, (9, 0), (10, 0)), Created)],
    );
    check(
        "overlap conflicts",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(2, (9, 30), (10, 30)), Conflict),
        ],
    );
    check(
        "enclosing conflicts",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(2, (8, 0), (11, 0)), Conflict),
        ],
    );
    check(
        "inside conflicts",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(2, (9, 10), (9, 20)), Conflict),
        ],
    );
    check(
        "back to back is fine",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(2, (10, 0), (11, 0)), Created),
            ("k3", 1, book(2, (8, 0), (9, 0)), Created),
        ],
    );
    check(
        "other room is fine",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(3, (9, 0), (10, 0)), Created),
        ],
    );
    check(
        "end before start",
        &[("k1", 1, book(2, (10, 0), (9, 0)), Invalid)],
    );
    check(
        "empty slot",
        &[("k1", 1, book(2, (10, 0), (10, 0)), Invalid)],
    );
    check(
        "unknown room",
        &[("k1", 1, book(99, (9, 0), (10, 0)), NotFound)],
    );
    check(
        "another tenant's room",
        &[("k1", 1, book(5, (9, 0), (10, 0)), NotFound)],
    );
    check(
        "cancel frees the slot",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            (
                "k2",
                1,
                Op::CancelBooking {
                    tenant: 1,
                    booking: 6,
                },
                Cancelled,
            ),
            ("k3", 1, book(2, (9, 0), (10, 0)), Created),
        ],
    );
    check(
        "cancel twice",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            (
                "k2",
                1,
                Op::CancelBooking {
                    tenant: 1,
                    booking: 6,
                },
                Cancelled,
            ),
            (
                "k3",
                1,
                Op::CancelBooking {
                    tenant: 1,
                    booking: 6,
                },
                AlreadyCancelled,
            ),
        ],
    );
    check(
        "cancel another tenant's booking",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            (
                "k2",
                4,
                Op::CancelBooking {
                    tenant: 4,
                    booking: 6,
                },
                NotFound,
            ),
            (
                "k3",
                4,
                Op::CancelBooking {
                    tenant: 1,
                    booking: 6,
                },
                NotFound,
            ),
        ],
    );
    check(
        "retry returns the original",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k1", 1, book(2, (9, 0), (10, 0)), Same),
        ],
    );
    check(
        "retry of a conflict stays a conflict",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k2", 1, book(2, (9, 0), (10, 0)), Conflict),
            ("k2", 1, book(2, (9, 0), (10, 0)), Same),
        ],
    );
    check(
        "key reused for another request",
        &[
            ("k1", 1, book(2, (9, 0), (10, 0)), Created),
            ("k1", 1, book(3, (9, 0), (10, 0)), KeyReused),
        ],
    );
    check(
        "staff cannot create rooms",
        &[(
            "k1",
            1,
            Op::CreateRoom {
                tenant: 4,
                name: "X".into(),
                category: "hall".into(),
                capacity: 1,
            },
            NotFound,
        )],
    );
    check(
        "admin cannot create tenants",
        &[(
            "k1",
            1,
            Op::CreateTenant {
                slug: "c".into(),
                name: "C".into(),
                time_zone: "Europe/London".into(),
                admin_token_sha256: "z".into(),
            },
            Forbidden,
        )],
    );
}

#[test]
fn dedup_entries_expire_by_command_time() {
    let (mut s, index) = seeded();
    let cmd = |h: u32, key: &str| {
        LogCommand::V1(Command {
            time: format!("2026-03-0{}T{h:02}:00:00Z", if h < 24 { 2 } else { 4 })
                .replace("T24", "T00")
                .parse()
                .unwrap(),
            actor: admin(1),
            request_key: key.into(),
            op: book(2, (9, 0), (10, 0)),
        })
    };
    s.apply(index, cmd(8, "idem/1/k"), &mut WriteSet::default());
    assert!(s.dedup.contains_key("idem/1/k"));
    // Two days later by command time, the key is forgotten.
    s.apply(index + 1, cmd(24, "other"), &mut WriteSet::default());
    assert!(!s.dedup.contains_key("idem/1/k"));
}

#[test]
fn bookings_in_window_includes_one_running_into_it() {
    let (mut s, index) = seeded();
    for (i, (a, b)) in [((8, 0), (9, 30)), ((9, 30), (10, 0)), ((11, 0), (12, 0))]
        .into_iter()
        .enumerate()
    {
        let c = LogCommand::V1(Command {
            time: at(7, 0),
            actor: admin(1),
            request_key: format!("w{i}"),
            op: book(2, a, b),
        });
        assert_eq!(
            classify(&s.apply(index + i as u64, c, &mut WriteSet::default())),
            Expect::Created
        );
    }
    let got: Vec<u64> = s
        .bookings_in(2, at(9, 0), at(11, 0))
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(got, vec![index, index + 1]);
}
