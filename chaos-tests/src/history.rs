//! The record of what clients asked and what they were told.

use std::collections::BTreeMap;
use std::fmt;

/// Nanoseconds since the workload started.
pub type Nanos = u64;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Book `room` for `[start, end)` (Unix seconds); `key` is the Idempotency-Key and the title.
    Book {
        room: u64,
        start: i64,
        end: i64,
        key: String,
    },
    /// Cancel booking `id` of `room`.
    Cancel { room: u64, id: u64, key: String },
    /// A linearizable read of `room`'s active bookings.
    Read { room: u64 },
}

impl Call {
    pub fn room(&self) -> u64 {
        match self {
            Call::Book { room, .. } | Call::Cancel { room, .. } | Call::Read { room } => *room,
        }
    }
}

/// An active booking as a read returned it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub id: u64,
    pub start: i64,
    pub end: i64,
    pub title: String,
}

/// What the client was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    Booked {
        id: u64,
    },
    Conflict,
    Cancelled,
    AlreadyCancelled,
    Read(Vec<Seen>),
    /// No decisive answer before the client gave up: it may or may not have happened.
    Unknown,
}

/// One logical operation: every retry of it (same Idempotency-Key) is part of it.
#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub call: Call,
    /// When the first attempt was sent.
    pub invoke: Nanos,
    /// When the decisive answer arrived; `None` when it never did.
    pub complete: Option<Nanos>,
    pub ret: Ret,
}

impl Op {
    pub fn overlaps(&self, from: Nanos, to: Nanos) -> bool {
        self.invoke <= to && self.complete.unwrap_or(Nanos::MAX) >= from
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |n: Nanos| n as f64 / 1e6;
        let done = match self.complete {
            Some(c) => format!("{:>10.1}", ms(c)),
            None => format!("{:>10}", "never"),
        };
        let call = match &self.call {
            Call::Book {
                room,
                start,
                end,
                key,
            } => format!("book room {room} [{start}, {end}) key {key}"),
            Call::Cancel { room, id, key } => format!("cancel room {room} booking {id} key {key}"),
            Call::Read { room } => format!("read room {room}"),
        };
        let ret = match &self.ret {
            Ret::Read(list) => format!(
                "read {:?}",
                list.iter()
                    .map(|s| (s.id, s.start, s.end))
                    .collect::<Vec<_>>()
            ),
            other => format!("{other:?}"),
        };
        write!(
            f,
            "{:>10.1} ms .. {done} ms  client {:>2}  {call:<60} -> {ret}",
            ms(self.invoke),
            self.client
        )
    }
}

/// Every operation of a run.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn by_room(&self) -> BTreeMap<u64, Vec<Op>> {
        let mut rooms: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
        for op in &self.ops {
            rooms.entry(op.call.room()).or_default().push(op.clone());
        }
        rooms
    }

    pub fn count(&self, f: impl Fn(&Op) -> bool) -> usize {
        self.ops.iter().filter(|o| f(o)).count()
    }

    /// The operations overlapping `[from, to]` in time, by invocation, as printable lines.
    pub fn slice(ops: &[Op], from: Nanos, to: Nanos) -> String {
        let mut within: Vec<&Op> = ops.iter().filter(|o| o.overlaps(from, to)).collect();
        within.sort_by_key(|o| o.invoke);
        within.iter().map(|o| format!("  {o}\n")).collect()
    }
}
