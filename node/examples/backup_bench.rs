//! Backup and restore figures for docs/benchmarks.md: a school state of N bookings (with their
//! audit trail) built through the real apply function, backed up to a local folder, then
//! restored into a new data directory; and raw encryption throughput.
//!
//! Run each phase as its own process so peak memory (VmHWM) is the phase's own:
//!   cargo run --release -p roomraft-node --example backup_bench -- backup  DIR N
//!   cargo run --release -p roomraft-node --example backup_bench -- restore DIR
//!   cargo run --release -p roomraft-node --example backup_bench -- crypto

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use roomraft_backup::crypto::{EncryptWriter, Kind};
use roomraft_backup::{
    backup_id, choose, read_backup, write_backup, Destination, Keyring, MasterKey, S3Options,
    Source, Trigger,
};
use roomraft_cluster::{records_digest, App, NodeInfo, WriteSet};
use roomraft_node::domain::booking::CreateBooking;
use roomraft_node::domain::school::{CreateRoom, CreateTenant};
use roomraft_node::domain::{
    Actor, BookingDetails, Bookings, Command, LogCommand, Op, Outcome, Role, RoomSpec, Rules,
};

/// A memory figure of this process from /proc/self/status (`VmHWM` peak, `VmRSS` now), in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
}

fn rss_mib() -> f64 {
    status_mib("VmRSS")
}

fn keys(dir: &Path) -> Keyring {
    let path = dir.join("bench.key");
    if !path.exists() {
        MasterKey::keygen(&path).unwrap();
    }
    Keyring::new(MasterKey::load(&path).unwrap(), vec![])
}

/// With `burst`, every booking is made at the same moment, so every request is still remembered
/// (as under load, when the last ten minutes' requests are); otherwise one a second.
fn build_state(n: u64, burst: bool) -> Bookings {
    let mut s = Bookings::default();
    let mut index = 1;
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let mut apply = |s: &mut Bookings, time: Timestamp, actor: Actor, op: Op| {
        let cmd = LogCommand::current(Command {
            time,
            actor,
            request_key: format!("req/{index}"),
            op,
        });
        index += 1;
        s.apply(index, cmd, &mut WriteSet::default())
    };
    let operator = Actor {
        tenant: None,
        role: Role::Operator,
        name: "bench".into(),
        user: None,
    };
    let Outcome::TenantCreated(t) = apply(
        &mut s,
        start,
        operator,
        Op::from(CreateTenant {
            slug: "bench".into(),
            name: "Bench Academy".into(),
            time_zone: "Europe/London".into(),
            admin_token_sha256: "0".repeat(64),
        }),
    ) else {
        panic!("tenant")
    };
    let admin = Actor {
        tenant: Some(t.id),
        role: Role::Admin,
        name: "token:admin".into(),
        user: None,
    };
    let rooms: Vec<u64> = (0..200)
        .map(|i| {
            let spec = RoomSpec {
                name: format!("Room {i}"),
                category: "classroom".into(),
                capacity: 30,
                location: "Main building".into(),
                description: String::new(),
                bookable: true,
                allowed_roles: vec![],
                allowed_departments: vec![],
                approval_required: false,
                rules: Rules::default(),
            };
            match apply(
                &mut s,
                start,
                admin.clone(),
                Op::from(CreateRoom { tenant: t.id, spec }),
            ) {
                Outcome::RoomCreated(r) => r.id,
                o => panic!("{o:?}"),
            }
        })
        .collect();
    // Hour-long bookings, one room after another, each hour of each day.
    for i in 0..n {
        let room = rooms[(i % 200) as usize];
        let slot = (i / 200) as i64;
        let begins = start + SignedDuration::from_hours(slot);
        let op = Op::from(CreateBooking {
            tenant: t.id,
            room,
            start: begins,
            end: begins + SignedDuration::from_mins(50),
            details: BookingDetails {
                title: format!("Year {} maths revision", 7 + i % 6),
                notes: "Bring calculators".into(),
                period: None,
                on_behalf_of: None,
                override_reason: None,
            },
        });
        // Command time moves on, so request keys expire as they would.
        let now = start + SignedDuration::from_secs(if burst { 0 } else { i as i64 });
        match apply(&mut s, now, admin.clone(), op) {
            Outcome::BookingCreated(_) => {}
            o => panic!("{o:?}"),
        }
    }
    s
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("backup") => {
            let dir = Path::new(&args[1]);
            let n: u64 = args[2].parse().unwrap();
            std::fs::create_dir_all(dir).unwrap();
            let t = Instant::now();
            let state = build_state(n, false);
            let built = t.elapsed();
            let keys = keys(dir);
            let dest =
                Destination::open(dir.join("backups").to_str().unwrap(), &S3Options::default())
                    .unwrap();
            let rss_state = peak_rss_mib();
            let t = Instant::now();
            let mut records = state.records();
            let sha = records_digest(&mut records);
            let copied = t.elapsed();
            let source = Source {
                cluster_id: "bench".into(),
                index: n + 202,
                term: 1,
                state_sha256: sha,
                records,
            };
            let id = backup_id(Timestamp::now(), Trigger::Manual);
            let t = Instant::now();
            let m = write_backup(
                &dest,
                &keys,
                source,
                &id,
                Trigger::Manual,
                Timestamp::now(),
                None,
            )
            .await
            .unwrap();
            let wrote = t.elapsed();
            println!(
                "bookings={n} records={} plaintext_mib={:.1} archive_mib={:.1} build_state={built:.1?} peak_rss_state_mib={rss_state:.0} copy_records={copied:.1?} write_backup={wrote:.1?} peak_rss_mib={:.0}",
                m.records,
                m.plaintext_bytes as f64 / 1048576.0,
                m.archive_bytes as f64 / 1048576.0,
                peak_rss_mib()
            );
        }
        Some("restore") => {
            let dir = Path::new(&args[1]);
            let keys = keys(dir);
            let dest =
                Destination::open(dir.join("backups").to_str().unwrap(), &S3Options::default())
                    .unwrap();
            let target = dir.join("restored");
            let _ = std::fs::remove_dir_all(&target);
            let t = Instant::now();
            let m = choose(&dest, &keys, None, None).await.unwrap();
            let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = records.clone();
            read_backup(
                &dest,
                &keys,
                &m,
                move |k, v| {
                    sink.lock().unwrap().push((k, v));
                    Ok(())
                },
                None,
            )
            .await
            .unwrap();
            let read = t.elapsed();
            let records = std::mem::take(&mut *records.lock().unwrap());
            let info = NodeInfo {
                peer_addr: "127.0.0.1:1".into(),
                client_addr: "127.0.0.1:2".into(),
            };
            roomraft_cluster::restore_data_dir::<Bookings>(&target, 1, info, m.index, records)
                .unwrap();
            let total = t.elapsed();
            let t = Instant::now();
            let (_, digest) = roomraft_cluster::stored_state_digest::<Bookings>(&target).unwrap();
            assert_eq!(digest, m.state_sha256);
            println!(
                "records={} download_decrypt_check={read:.1?} restore_total={total:.1?} open_and_load={:.1?} peak_rss_mib={:.0}",
                m.records,
                t.elapsed(),
                peak_rss_mib()
            );
        }
        Some("size") => {
            // Where a state's memory goes: resident size, then each kind of record's count and
            // encoded bytes, and how long copying the state takes (what a snapshot or backup
            // makes writes wait for).
            let n: u64 = args[1].parse().unwrap();
            let burst = args.get(2).is_some_and(|a| a == "burst");
            let before = rss_mib();
            let t = Instant::now();
            let state = build_state(n, burst);
            let built = t.elapsed();
            let resident = rss_mib() - before;
            let t = Instant::now();
            let copy = state.clone();
            let cloned = t.elapsed();
            drop(copy);
            let mut kinds: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            for (k, v) in state.records() {
                let key = String::from_utf8_lossy(&k).into_owned();
                let parts: Vec<&str> = key.split('/').collect();
                let kind = match parts.as_slice() {
                    ["t", _, kind, ..] => kind.to_string(),
                    [kind, ..] => kind.to_string(),
                    [] => String::new(),
                };
                let e = kinds.entry(kind).or_default();
                e.0 += 1;
                e.1 += (k.len() + v.len()) as u64;
            }
            println!(
                "bookings={n} build={built:.1?} resident_mib={resident:.0} bytes_per_booking={:.0} clone={cloned:.1?}",
                resident * 1048576.0 / n as f64
            );
            for (kind, (count, bytes)) in kinds {
                println!(
                    "  {kind:<12} {count:>9} records {:>8.1} MiB encoded",
                    bytes as f64 / 1048576.0
                );
            }
        }
        Some("crypto") => {
            let key = MasterKey::generate();
            let chunk = vec![0x5au8; 1 << 20];
            let total = 1024u64 << 20;
            let t = Instant::now();
            let mut w = EncryptWriter::new(std::io::sink(), Kind::Archive, &key).unwrap();
            for _ in 0..(total >> 20) {
                w.write_all(&chunk).unwrap();
            }
            w.finish().unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!("aes256gcm_stream_mb_per_s={:.0}", total as f64 / 1e6 / secs);
        }
        _ => eprintln!("usage: backup_bench backup DIR N | restore DIR | size N [burst] | crypto"),
    }
}
