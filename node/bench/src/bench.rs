//! The load generator that drives concurrent HTTPS clients against a running
//! cluster (or, for comparison, an etcd cluster's JSON gateway) and reports throughput and latency.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::json;

use roomraft_node::client::{call, https_client};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// New bookings through Roomraft's API (no conflicts: each client books its own room).
    Roomraft,
    /// New keys through etcd's v3 JSON gateway (`POST /v3/kv/put`).
    Etcd,
    /// "All rooms for a day" (`GET /api/v1/day`) on a freshly seeded big school.
    DayGrid,
    /// "Find a free room" (`GET /api/v1/free-rooms`, a period, with a capacity filter) on a big school.
    FreeRoom,
    /// Public page views (`POST /api/v1/sites/{site}/pageviews`), each client a different browser.
    PageViews,
    /// The web page of a busy room's week (`GET /rooms/{id}/week`), signed in, on a big school.
    WeekPage,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Comma-separated base URLs; clients are spread over them round robin.
    #[arg(
        long,
        default_value = "https://127.0.0.1:8441,https://127.0.0.1:8442,https://127.0.0.1:8443"
    )]
    urls: String,
    #[arg(long, value_enum, default_value_t = Target::Roomraft)]
    target: Target,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds to run after warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The cluster CA (Roomraft only).
    #[arg(long, default_value = "roomraft-dev/ca.pem")]
    ca: PathBuf,
    /// File with a tenant admin token (Roomraft only).
    #[arg(long, default_value = "roomraft-dev/admin.token")]
    token_file: PathBuf,
    /// File with the operator token (query targets: they seed a new big school).
    #[arg(long, default_value = "roomraft-dev/operator.token")]
    operator_token_file: PathBuf,
    /// Teaching rooms of the seeded school (query targets); 7 special rooms come on top.
    #[arg(long, default_value_t = 200)]
    school_rooms: usize,
    /// The school whose public pages get the views (page-views target).
    #[arg(long, default_value = "demo")]
    site: String,
    /// Also write every measured request to this file, one line each: when it started
    /// (microseconds after warm-up), its latency (microseconds) and the client's number.
    /// Clients go to the URLs round robin, so client `c` used URL `c % len`. For finding stalls.
    #[arg(long)]
    latency_log: Option<PathBuf>,
    /// Comma-separated process ids of the servers under test (Linux). The run then also reports
    /// the CPU time (user and system) each of them, and this load generator, spent per
    /// successful request over the measured seconds: on a saturated machine, throughput is the
    /// inverse of their sum.
    #[arg(long, value_delimiter = ',')]
    cpu_of: Vec<u32>,
}

/// 2100-01-01T00:00:00Z: where the bench's bookings start.
const BOOKING_BASE: i64 = 4_102_444_800;

struct Report {
    ok: u64,
    errors: u64,
    /// Errors by kind: the HTTP status, or what went wrong before one came back.
    kinds: std::collections::BTreeMap<String, u64>,
    hist: Histogram<u64>,
    /// (start after warm-up, latency, client) of each success, if `--latency-log` asks for them.
    log: Vec<(u64, u64, usize)>,
}

impl Report {
    fn new() -> anyhow::Result<Self> {
        Ok(Report {
            ok: 0,
            errors: 0,
            kinds: Default::default(),
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            log: Vec::new(),
        })
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.duration == 0 {
        bail!("--clients and --duration must be at least 1");
    }
    let urls: Vec<String> = args
        .urls
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .collect();
    // Opened now, so a path that cannot be written fails before the run rather than after it.
    let latency_log =
        match &args.latency_log {
            Some(path) => Some(std::fs::File::create(path).with_context(|| {
                format!("cannot create {}; check --latency-log", path.display())
            })?),
            None => None,
        };
    // Read once now, so a pid that is not running fails before the run rather than after it.
    if !args.cpu_of.is_empty() {
        cpu_ticks(&args.cpu_of)?;
    }
    let mut week_room = 0;
    let (http, token) = match args.target {
        Target::DayGrid | Target::FreeRoom | Target::WeekPage => {
            let http = https_client(&args.ca, Duration::from_secs(30))?;
            let op = std::fs::read_to_string(&args.operator_token_file).with_context(|| {
                format!(
                    "cannot read {}; pass --operator-token-file",
                    args.operator_token_file.display()
                )
            })?;
            let (slug, token) =
                seed_big_school(&http, &urls[0], op.trim(), args.school_rooms).await?;
            if args.target == Target::WeekPage {
                // The token becomes the session cookie; Room 101, fully timetabled, is made busier.
                let (cookie, room) = busy_week(&http, &urls[0], &slug, &token).await?;
                week_room = room;
                (http, cookie)
            } else {
                (http, token)
            }
        }
        Target::Roomraft => {
            let token = std::fs::read_to_string(&args.token_file).with_context(|| {
                format!(
                    "cannot read {}; pass --token-file",
                    args.token_file.display()
                )
            })?;
            (
                https_client(&args.ca, Duration::from_secs(30))?,
                token.trim().to_string(),
            )
        }
        Target::PageViews => (
            https_client(&args.ca, Duration::from_secs(30))?,
            String::new(),
        ),
        Target::Etcd => (
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            String::new(),
        ),
    };
    // One room per client, so every booking is new and none conflicts.
    let mut rooms = Vec::new();
    if args.target == Target::Roomraft {
        for i in 0..args.clients {
            let room = call(
                http.post(format!("{}/api/v1/rooms", urls[0]))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("bench-{}-{i}", rand::random::<u32>()), "category": "bench", "capacity": 1})),
            )
            .await?;
            rooms.push(room["id"].as_u64().context("room id")?);
        }
    }
    let run_id = rand::random::<u32>();
    let day = teaching_day();
    let start = Instant::now();
    let warmup = Duration::from_secs(1);
    let end = start + warmup + Duration::from_secs(args.duration);
    let token = Arc::new(token);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (http, token, url, target) = (
            http.clone(),
            token.clone(),
            urls[c % urls.len()].clone(),
            args.target,
        );
        let room = rooms.get(c).copied();
        let day = day.clone();
        let site = args.site.clone();
        let keep_log = args.latency_log.is_some();
        tasks.push(tokio::spawn(async move {
            let mut r = Report::new().expect("histogram bounds");
            let mut n: i64 = 0;
            while Instant::now() < end {
                n += 1;
                let req = match (target, room) {
                    (Target::Roomraft, Some(room)) => {
                        // From 2100 on: past every term date and closure the seeded calendar
                        // has, so a fast run's slots never land in a holiday.
                        let s = jiff::Timestamp::from_second(BOOKING_BASE + n * 3600).expect("in range");
                        let e = jiff::Timestamp::from_second(BOOKING_BASE + n * 3600 + 1800).expect("in range");
                        http.post(format!("{url}/api/v1/bookings"))
                            .bearer_auth(token.as_str())
                            .json(&json!({"room_id": room, "start": s.to_string(), "end": e.to_string(), "title": "bench"}))
                    }
                    (Target::DayGrid, _) => http
                        .get(format!("{url}/api/v1/day?date={day}"))
                        .bearer_auth(token.as_str()),
                    (Target::PageViews, _) => http
                        .post(format!("{url}/api/v1/sites/{site}/pageviews"))
                        .header("user-agent", format!("Mozilla/5.0 (X11; Linux x86_64; rv:{c}.0) Gecko/20100101 Firefox/{c}.0"))
                        .json(&json!({"path": format!("/v/{site}/page-{}", n % 50), "referrer": "https://www.google.com/"})),
                    (Target::WeekPage, _) => http
                        .get(format!("{url}/rooms/{week_room}/week?date={day}"))
                        .header("cookie", token.as_str()),
                    (Target::FreeRoom, _) => http
                        .get(format!("{url}/api/v1/free-rooms?date={day}&period=P{}&min_capacity=30", 1 + n % 5))
                        .bearer_auth(token.as_str()),
                    _ => {
                        use base64::Engine;
                        let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
                        let key = format!("bench/{run_id}/{c}/{n}");
                        http.post(format!("{url}/v3/kv/put")).json(&json!({"key": encode(key.as_bytes()), "value": encode(b"booked")}))
                    }
                };
                let t0 = Instant::now();
                let failed = match req.send().await {
                    // The answer is read to its end, as a real client does. Dropping it unread
                    // made the HTTP/2 client reset each stream early; after 1,024 such resets on
                    // a connection it closed it ("too_many_internal_resets"), failing every
                    // request in flight on it, and HTTP/1.1 connections could not be reused.
                    Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                        Ok(_) => None,
                        Err(e) => Some(no_answer(&e)),
                    },
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp.text().await.unwrap_or_default();
                        let code = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v["code"].as_str().map(str::to_string));
                        Some(match code {
                            Some(code) => format!("{status} {code}"),
                            None => status.to_string(),
                        })
                    }
                    Err(e) if e.is_timeout() => Some("timeout".to_string()),
                    Err(e) => Some(no_answer(&e)),
                };
                let took = t0.elapsed();
                if t0 >= start + warmup {
                    match failed {
                        None => {
                            r.ok += 1;
                            let _ = r.hist.record(took.as_micros() as u64);
                            if keep_log {
                                let at = (t0 - start - warmup).as_micros() as u64;
                                r.log.push((at, took.as_micros() as u64, c));
                            }
                        }
                        Some(kind) => {
                            r.errors += 1;
                            *r.kinds.entry(kind).or_default() += 1;
                        }
                    }
                }
            }
            r
        }));
    }
    let mut cpu_before = None;
    if !args.cpu_of.is_empty() {
        tokio::time::sleep_until((start + warmup).into()).await;
        cpu_before = Some(cpu_ticks(&args.cpu_of)?);
    }
    let mut total = Report::new()?;
    for t in tasks {
        let r = t.await?;
        total.ok += r.ok;
        total.errors += r.errors;
        for (kind, n) in r.kinds {
            *total.kinds.entry(kind).or_default() += n;
        }
        total.hist.add(&r.hist)?;
        total.log.extend(r.log);
    }
    // A server that ended during the run costs the CPU figures, not the report.
    let cpu_after = cpu_before.as_ref().map(|_| cpu_ticks(&args.cpu_of));
    if let (Some(file), Some(path)) = (latency_log, &args.latency_log) {
        write_latency_log(file, &mut total.log)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let secs = args.duration as f64;
    let ms = |q: f64| total.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "target={} clients={} duration={}s ok={} errors={} throughput={:.0}/s p50={:.1}ms p99={:.1}ms max={:.1}ms",
        match args.target {
            Target::Roomraft => "roomraft",
            Target::Etcd => "etcd",
            Target::DayGrid => "day-grid",
            Target::FreeRoom => "free-room",
            Target::PageViews => "page-views",
            Target::WeekPage => "week-page",
        },
        args.clients,
        args.duration,
        total.ok,
        total.errors,
        total.ok as f64 / secs,
        ms(0.5),
        ms(0.99),
        total.hist.max() as f64 / 1000.0
    );
    if !total.kinds.is_empty() {
        let kinds: Vec<String> = total
            .kinds
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        println!("errors by kind: {}", kinds.join(", "));
    }
    match (cpu_before, cpu_after) {
        (Some(before), Some(Ok(after))) => println!(
            "{}",
            cpu_line(
                &args.cpu_of,
                &before,
                &after,
                total.ok,
                clock_ticks_per_second()
            )
        ),
        (_, Some(Err(e))) => println!("cpu per request: not measured: {e:#}"),
        _ => {}
    }
    Ok(())
}

/// The clock ticks a second that `/proc/PID/stat` counts CPU time in.
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// CPU time (user plus system, in clock ticks) of each process in `pids`, then of this one.
fn cpu_ticks(pids: &[u32]) -> anyhow::Result<Vec<u64>> {
    let read = |what: String| -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{what}/stat"))
            .with_context(|| format!("cannot read /proc/{what}/stat; check --cpu-of"))?;
        proc_stat_cpu(&stat).with_context(|| format!("cannot parse /proc/{what}/stat"))
    };
    let mut ticks = pids
        .iter()
        .map(|p| read(p.to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    ticks.push(read("self".to_string())?);
    Ok(ticks)
}

/// utime + stime from a `/proc/PID/stat` line. The command name (field 2) is in parentheses and
/// may hold spaces, so the fields are counted from the last `)`.
fn proc_stat_cpu(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// "cpu per request: servers 450 us (pid 10: 160 us, ...), load generator 95 us".
/// `hz` is the clock ticks a second that `before` and `after` count in.
fn cpu_line(pids: &[u32], before: &[u64], after: &[u64], ok: u64, hz: f64) -> String {
    let per = |i: usize| after[i].saturating_sub(before[i]) as f64 / hz * 1e6 / ok.max(1) as f64;
    let servers: Vec<String> = pids
        .iter()
        .enumerate()
        .map(|(i, p)| format!("pid {p}: {:.0} us", per(i)))
        .collect();
    let sum: f64 = (0..pids.len()).map(per).sum();
    format!(
        "cpu per request: servers {sum:.0} us ({}), load generator {:.0} us",
        servers.join(", "),
        per(pids.len())
    )
}

/// Writes `log` in start order, one `start_us latency_us client` line per request.
fn write_latency_log(file: std::fs::File, log: &mut [(u64, u64, usize)]) -> std::io::Result<()> {
    use std::io::Write;
    log.sort_unstable();
    let mut out = std::io::BufWriter::new(file);
    for (at, took, client) in log.iter() {
        writeln!(out, "{at} {took} {client}")?;
    }
    out.flush()
}

/// The error kind of a request that got no (whole) answer, with the innermost error behind it:
/// why the connection gave none.
fn no_answer(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    format!("no answer ({inner})")
}

/// A Wednesday in the second week of this academic year's autumn term (the seed's calendar).
fn teaching_day() -> String {
    let today = jiff::Zoned::now().date();
    let y = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    let (terms, _) = roomraft_node::seed::academic_year(y);
    terms[0]
        .1
        .checked_add(jiff::ToSpan::days(7))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// Fills Room 101's free periods of the bench week with bookings and signs in a member of
/// staff; returns the session's `Cookie` header and the room.
async fn busy_week(
    http: &reqwest::Client,
    url: &str,
    slug: &str,
    admin: &str,
) -> anyhow::Result<(String, u64)> {
    let rooms = call(http.get(format!("{url}/api/v1/rooms")).bearer_auth(admin)).await?;
    let room = rooms
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "Room 101")
        .and_then(|r| r["id"].as_u64())
        .context("the seeded school has Room 101")?;
    let day: jiff::civil::Date = teaching_day().parse()?;
    let monday = day.checked_sub(jiff::ToSpan::days(
        day.weekday().to_monday_zero_offset() as i64
    ))?;
    for d in 0..5 {
        let date = monday.checked_add(jiff::ToSpan::days(d))?;
        for period in ["Registration", "Break", "Lunch"] {
            call(
                http.post(format!("{url}/api/v1/bookings"))
                    .bearer_auth(admin)
                    .json(&json!({"room_id": room, "date": date, "period": period,
                                   "title": format!("{period} club"), "notes": "bench"})),
            )
            .await?;
        }
    }
    let password = format!("bench-{:032x}", rand::random::<u128>());
    call(
        http.post(format!("{url}/api/v1/users"))
            .bearer_auth(admin)
            .json(
                &json!({"username": "bench", "name": "Bench Staff", "email": "bench@bench.example",
                           "role": "staff", "password": password}),
            ),
    )
    .await?;
    let resp = http
        .post(format!("{url}/api/v1/session"))
        .json(&json!({"tenant": slug, "login": "bench", "password": password}))
        .send()
        .await?
        .error_for_status()?;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_string();
    Ok((cookie, room))
}

/// Creates a tenant and seeds it with `rooms` fully timetabled teaching rooms; returns its slug
/// and admin token.
async fn seed_big_school(
    http: &reqwest::Client,
    url: &str,
    operator: &str,
    rooms: usize,
) -> anyhow::Result<(String, String)> {
    let slug = format!("bench-{}", rand::random::<u32>());
    let t = call(
        http.post(format!("{url}/api/v1/tenants"))
            .bearer_auth(operator)
            .json(&json!({ "slug": slug, "name": "Bench Academy" })),
    )
    .await?;
    let admin = t["admin_token"]
        .as_str()
        .context("admin token")?
        .to_string();
    let spec = roomraft_node::seed::SchoolSpec {
        teaching_rooms: rooms,
        occupancy_percent: 100,
        users: Vec::new(),
    };
    let started = Instant::now();
    roomraft_node::seed::seed_school(http, url, &admin, &spec, jiff::Zoned::now().date()).await?;
    let lessons = call(
        http.get(format!("{url}/api/v1/lessons"))
            .bearer_auth(&admin),
    )
    .await?;
    println!(
        "seeded {slug}: {} rooms, {} lessons in {:.1}s",
        rooms + 7,
        lessons.as_array().map_or(0, Vec::len),
        started.elapsed().as_secs_f64()
    );
    Ok((slug, admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_cpu_counts_fields_after_the_command_name() {
        // A command name with a space and a parenthesis, as `/proc/PID/stat` may show one.
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 731 269 0 0 20 0 9 0";
        assert_eq!(proc_stat_cpu(stat), Some(1000));
        assert_eq!(proc_stat_cpu("4242 (x) S 1"), None);
    }

    #[test]
    fn the_cpu_line_splits_each_server_and_the_load_generator() {
        // 1,000 requests; the first server spent one second, the second half, this process a tenth.
        let line = cpu_line(&[7, 8], &[0, 0, 0], &[100, 50, 10], 1000, 100.0);
        assert_eq!(
            line,
            "cpu per request: servers 1500 us (pid 7: 1000 us, pid 8: 500 us), load generator 100 us"
        );
    }

    #[test]
    fn cpu_ticks_reads_this_process_and_names_a_missing_one() {
        let own = std::process::id();
        let ticks = cpu_ticks(&[own]).expect("this process has a stat file");
        assert_eq!(ticks.len(), 2);
        let err = cpu_ticks(&[u32::MAX]).unwrap_err();
        assert!(format!("{err:#}").contains("--cpu-of"), "{err:#}");
    }
}
