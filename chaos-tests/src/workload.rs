//! Concurrent clients through every node: contended and disjoint bookings, cancellations and
//! linearizable reads. Every write carries an Idempotency-Key and is retried (through the next
//! node) until it is decided or the client gives up, which is recorded as unknown, not failed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::history::{Call, History, Nanos, Op, Ret, Seen};
use crate::net::NodeId;

/// The first slot: Monday 5 January 2037, 08:00 UTC (bookings must not be in the past); slots
/// are half-hour steps from it.
pub const SLOT_ZERO: i64 = 2_114_755_200;
const STEP: i64 = 1800;
/// Slot starts per room: few, so clients collide often.
const SLOTS: i64 = 12;

/// How hard the clients push, and how.
#[derive(Debug, Clone)]
pub struct Workload {
    pub clients: usize,
    pub seed: u64,
    /// How long one logical operation is retried before it is recorded as unknown.
    pub give_up_after: Duration,
    /// A load balancer's base URL, and how many clients (the first ones) go only through it.
    pub balancer: Option<(String, usize)>,
}

/// What the clients that go through the balancer saw, attempt by attempt.
#[derive(Debug, Default, Clone)]
pub struct Balanced {
    pub attempts: usize,
    /// Attempts that failed as a client sees it: no answer, or a 5xx.
    pub errors: usize,
    /// Each stretch from a client's first failed answer to its next good one: when it began,
    /// and how long it lasted.
    pub windows: Vec<(Instant, Duration)>,
}

impl fmt::Display for Balanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempts, {} client-visible errors",
            self.attempts, self.errors
        )?;
        if !self.windows.is_empty() {
            let lengths: Vec<Duration> = self.windows.iter().map(|w| w.1).collect();
            write!(f, "; error windows {}", crate::schedule::summary(&lengths))?;
        }
        Ok(())
    }
}

impl Balanced {
    pub fn add(&mut self, other: Balanced) {
        self.attempts += other.attempts;
        self.errors += other.errors;
        self.windows.extend(other.windows);
    }
}

/// The shared, changeable list of node URLs (members come and go).
pub type Urls = Arc<Mutex<BTreeMap<NodeId, String>>>;

/// Runs clients until `stop` turns true; returns every operation they made, and what the
/// clients behind the balancer saw.
pub async fn run(
    w: Workload,
    http: reqwest::Client,
    urls: Urls,
    token: String,
    rooms: Vec<u64>,
    stop: watch::Receiver<bool>,
) -> (History, Balanced) {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..w.clients {
        let ctx = Client {
            id: client,
            rng: StdRng::seed_from_u64(w.seed.wrapping_mul(1000).wrapping_add(client as u64)),
            http: http.clone(),
            urls: urls.clone(),
            token: token.clone(),
            rooms: rooms.clone(),
            t0,
            give_up_after: w.give_up_after,
            next: 0,
            via: w
                .balancer
                .as_ref()
                .filter(|(_, n)| client < *n)
                .map(|(url, _)| url.clone()),
            seen: Balanced::default(),
            failing_since: None,
        };
        tasks.push(tokio::spawn(ctx.run(stop.clone())));
    }
    let mut history = History::default();
    let mut balanced = Balanced::default();
    for t in tasks {
        let (ops, seen) = t.await.expect("client task");
        history.ops.extend(ops);
        balanced.add(seen);
    }
    history.ops.sort_by_key(|o| o.invoke);
    (history, balanced)
}

struct Client {
    id: usize,
    rng: StdRng,
    http: reqwest::Client,
    urls: Urls,
    token: String,
    rooms: Vec<u64>,
    t0: Instant,
    give_up_after: Duration,
    next: u64,
    /// The balancer this client goes through, instead of the nodes themselves.
    via: Option<String>,
    seen: Balanced,
    failing_since: Option<Instant>,
}

enum Answer {
    Decided(Ret),
    /// Worth another try (5xx, connection failure, or the node is gone).
    Retry,
}

impl Client {
    fn now(&self) -> Nanos {
        self.t0.elapsed().as_nanos() as Nanos
    }

    async fn run(mut self, stop: watch::Receiver<bool>) -> (Vec<Op>, Balanced) {
        let mut ops = Vec::new();
        // Bookings this client made and has not tried to cancel: (room, id).
        let mut mine: Vec<(u64, u64)> = Vec::new();
        while !*stop.borrow() {
            let room = self.rooms[self.rng.gen_range(0..self.rooms.len())];
            let roll = self.rng.gen_range(0..100);
            self.next += 1;
            let key = format!("c{}-{}", self.id, self.next);
            let call = if roll < 20 && !mine.is_empty() {
                let (room, id) = mine.swap_remove(self.rng.gen_range(0..mine.len()));
                Call::Cancel { room, id, key }
            } else if roll < 45 {
                Call::Read { room }
            } else {
                let slot = self.rng.gen_range(0..SLOTS);
                let len = if self.rng.gen_bool(0.5) { 2 } else { 1 };
                let start = SLOT_ZERO + slot * STEP;
                Call::Book {
                    room,
                    start,
                    end: start + len * STEP,
                    key,
                }
            };
            let op = self.perform(call).await;
            if let (Call::Book { room, .. }, Ret::Booked { id }) = (&op.call, &op.ret) {
                mine.push((*room, *id));
            }
            ops.push(op);
        }
        if let Some(since) = self.failing_since.take() {
            self.seen.windows.push((since, since.elapsed()));
        }
        (ops, self.seen)
    }

    async fn perform(&mut self, call: Call) -> Op {
        let invoke = self.now();
        let deadline = Instant::now() + self.give_up_after;
        let mut attempt = self.rng.gen_range(0..16usize);
        let ret = loop {
            if Instant::now() >= deadline {
                break Ret::Unknown;
            }
            let base = match &self.via {
                Some(lb) => lb.clone(),
                None => {
                    let urls: Vec<String> = self.urls.lock().unwrap().values().cloned().collect();
                    urls[attempt % urls.len()].clone()
                }
            };
            attempt += 1;
            let answer = self.attempt(&base, &call, deadline).await;
            if self.via.is_some() {
                self.seen.attempts += 1;
                match answer {
                    Answer::Retry => {
                        self.seen.errors += 1;
                        self.failing_since.get_or_insert_with(Instant::now);
                    }
                    Answer::Decided(_) => {
                        if let Some(since) = self.failing_since.take() {
                            self.seen.windows.push((since, since.elapsed()));
                        }
                    }
                }
            }
            match answer {
                Answer::Decided(ret) => break ret,
                Answer::Retry => {
                    if matches!(call, Call::Read { .. }) {
                        // A read that failed changed nothing; record nothing for it.
                        break Ret::Unknown;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let complete = (ret != Ret::Unknown).then(|| self.now());
        Op {
            client: self.id,
            call,
            invoke,
            complete,
            ret,
        }
    }

    async fn attempt(&self, base: &str, call: &Call, deadline: Instant) -> Answer {
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(10));
        let req = match call {
            Call::Book {
                room,
                start,
                end,
                key,
            } => self
                .http
                .post(format!("{base}/api/v1/bookings"))
                .header("Idempotency-Key", key)
                .json(&json!({
                    "room_id": room,
                    "start": ts(*start),
                    "end": ts(*end),
                    "title": key,
                })),
            Call::Cancel { id, key, .. } => self
                .http
                .delete(format!("{base}/api/v1/bookings/{id}"))
                .header("Idempotency-Key", key),
            Call::Read { room } => self
                .http
                .get(format!("{base}/api/v1/rooms/{room}/bookings")),
        };
        let resp = match req.bearer_auth(&self.token).timeout(budget).send().await {
            Ok(r) => r,
            Err(_) => return Answer::Retry,
        };
        let status = resp.status().as_u16();
        let body: Value = match resp.json().await {
            Ok(v) => v,
            // The node died between the headers and the body: the answer was lost, not decided.
            Err(_) => return Answer::Retry,
        };
        match (call, status) {
            (Call::Book { .. }, 201) => match body["id"].as_u64() {
                Some(id) => Answer::Decided(Ret::Booked { id }),
                None => panic!("201 without an id: {body}"),
            },
            (Call::Book { .. }, 409) if body["code"] == "conflict" => {
                Answer::Decided(Ret::Conflict)
            }
            (Call::Cancel { .. }, 200) => Answer::Decided(Ret::Cancelled),
            (Call::Cancel { .. }, 409) => Answer::Decided(Ret::AlreadyCancelled),
            (Call::Read { .. }, 200) => Answer::Decided(Ret::Read(parse_bookings(&body))),
            (_, s) if s >= 500 => Answer::Retry,
            (_, s) => panic!("unexpected answer {s} {body} to {call:?}"),
        }
    }
}

pub fn ts(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .expect("in range")
        .to_string()
}

fn parse_ts(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

/// The bookings in a room listing (`[...]` or `{bookings: [...]}`), active ones only.
pub fn parse_bookings(body: &Value) -> Vec<Seen> {
    let list = body.get("bookings").unwrap_or(body);
    let mut seen: Vec<Seen> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a booking list: {body}"))
        .iter()
        .filter(|b| b["status"] == "active")
        .map(|b| Seen {
            id: b["id"].as_u64().expect("booking id"),
            start: parse_ts(&b["start"]),
            end: parse_ts(&b["end"]),
            title: b["title"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    seen.sort();
    seen
}
