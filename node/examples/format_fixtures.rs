//! Writes format fixtures of the build that runs it: a small school built by version-1 log
//! commands, as the bytes the Raft log holds, the outcome bytes apply gave (what idempotency
//! records keep), and the state's records afterwards (what snapshots, journals and backups hold).
//! `node/tests/it/formats.rs` checks that the current build reads every committed set and, applying
//! the same commands, gives the same outcomes and records.
//!
//! ```sh
//! cargo run -p roomraft-node --example format_fixtures -- node/tests/fixtures/<release>
//! ```
//!
//! The commands include what later rules refuse (a booking that had ended, overlapping lessons,
//! two live tokens with one name), so the fixtures prove that an entry is applied by the rules it
//! was proposed under.

use jiff::civil::{date, time};
use jiff::Timestamp;
use roomraft_cluster::{App, WriteSet};
use roomraft_node::domain::booking::CreateBooking;
use roomraft_node::domain::people::{CreateSession, CreateToken, CreateUser};
use roomraft_node::domain::school::{CreateLesson, CreateRoom, CreateTenant, ImportLessons};
use roomraft_node::domain::{
    Actor, BookingDetails, Bookings, Command, LessonImport, LessonSpec, LogCommand, Op, Outcome,
    Role, RoomSpec, Rules, TenantId, UserId,
};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn actor(tenant: Option<TenantId>, role: Role, name: &str, user: Option<UserId>) -> Actor {
    Actor {
        tenant,
        role,
        name: name.into(),
        user,
    }
}

fn room(name: &str) -> RoomSpec {
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

fn lesson(start: (i8, i8), end: (i8, i8)) -> LessonSpec {
    LessonSpec {
        weekday: 1,
        period: None,
        start: time(start.0, start.1, 0, 0),
        end: time(end.0, end.1, 0, 0),
        subject: "Maths".into(),
        class_name: "9X".into(),
        teacher: "Ms Shah".into(),
        week: None,
        from: date(2026, 1, 1),
        to: date(2026, 12, 31),
    }
}

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: format_fixtures <folder>"),
    );
    std::fs::create_dir_all(&out).unwrap();
    let mut s = Bookings::default();
    let mut log: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut outcomes: Vec<Vec<u8>> = Vec::new();
    let mut index = 1u64;
    let mut now = at("2026-03-02T08:00:00Z");
    let mut run = |s: &mut Bookings, actor: Actor, op: Op| -> Outcome {
        now = now
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap();
        let cmd = LogCommand::V1(Command {
            time: now,
            actor,
            request_key: format!("fixture/{index}"),
            op,
        });
        log.push((index, bincode::serialize(&cmd).unwrap()));
        let o = s.apply(index, cmd, &mut WriteSet::default());
        outcomes.push(bincode::serialize(&o).unwrap());
        index += 1;
        o
    };
    let operator = actor(None, Role::Operator, "operator", None);
    let Outcome::TenantCreated(t) = run(
        &mut s,
        operator,
        Op::from(CreateTenant {
            slug: "oak".into(),
            name: "Oak Academy".into(),
            time_zone: "Europe/London".into(),
            admin_token_sha256: "a".repeat(64),
        }),
    ) else {
        panic!("tenant")
    };
    let admin = actor(Some(t.id), Role::Admin, "token:admin", None);
    let Outcome::RoomCreated(hall) = run(
        &mut s,
        admin.clone(),
        Op::from(CreateRoom {
            tenant: t.id,
            spec: room("Hall"),
        }),
    ) else {
        panic!("room")
    };
    let Outcome::User(jo) = run(
        &mut s,
        admin.clone(),
        Op::from(CreateUser {
            tenant: t.id,
            username: "jo".into(),
            name: "Jo Bloggs".into(),
            email: "jo@oak.example".into(),
            department: None,
            role: Role::Staff,
            password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        }),
    ) else {
        panic!("user")
    };
    let staff = actor(Some(t.id), Role::Staff, "user:jo", Some(jo.id));
    // A booking that had already ended when it was made, and one still to come.
    for (start, end) in [
        ("2026-02-02T09:00:00Z", "2026-02-02T10:00:00Z"),
        ("2026-03-09T09:00:00Z", "2026-03-09T10:00:00Z"),
    ] {
        run(
            &mut s,
            staff.clone(),
            Op::from(CreateBooking {
                tenant: t.id,
                room: hall.id,
                start: at(start),
                end: at(end),
                details: BookingDetails {
                    title: "Revision".into(),
                    ..Default::default()
                },
            }),
        );
    }
    // Overlapping lessons in one room, once singly and once by import.
    for l in [lesson((9, 0), (10, 0)), lesson((9, 30), (10, 30))] {
        run(
            &mut s,
            admin.clone(),
            Op::from(CreateLesson {
                tenant: t.id,
                room: hall.id,
                lesson: l,
            }),
        );
    }
    run(
        &mut s,
        admin.clone(),
        Op::from(ImportLessons {
            tenant: t.id,
            lessons: vec![
                LessonImport {
                    row: 2,
                    room: "Hall".into(),
                    lesson: lesson((9, 0), (10, 0)),
                },
                LessonImport {
                    row: 3,
                    room: "hall".into(),
                    lesson: lesson((9, 0), (10, 0)),
                },
            ],
            replace: false,
        }),
    );
    // Two live tokens with one name.
    for sha in ["b", "c"] {
        run(
            &mut s,
            admin.clone(),
            Op::from(CreateToken {
                tenant: t.id,
                name: "sync".into(),
                role: Role::Staff,
                sha256: sha.repeat(64),
            }),
        );
    }
    run(
        &mut s,
        staff.clone(),
        Op::from(CreateSession {
            tenant: t.id,
            user: jo.id,
            sha256: "d".repeat(64),
            csrf_sha256: "e".repeat(64),
            idle_secs: 7200,
            absolute_secs: 43200,
        }),
    );
    // A rejection, which idempotency records keep as an outcome.
    run(
        &mut s,
        staff,
        Op::from(CreateBooking {
            tenant: t.id,
            room: hall.id,
            start: at("2026-03-09T09:30:00Z"),
            end: at("2026-03-09T10:30:00Z"),
            details: BookingDetails {
                title: "Clash".into(),
                ..Default::default()
            },
        }),
    );
    let mut records = s.records();
    records.sort();
    std::fs::write(out.join("log.bin"), bincode::serialize(&log).unwrap()).unwrap();
    std::fs::write(
        out.join("outcomes.bin"),
        bincode::serialize(&outcomes).unwrap(),
    )
    .unwrap();
    std::fs::write(
        out.join("records.bin"),
        bincode::serialize(&records).unwrap(),
    )
    .unwrap();
    println!(
        "wrote {} commands, {} outcomes and {} records to {}",
        log.len(),
        outcomes.len(),
        records.len(),
        out.display()
    );
}
