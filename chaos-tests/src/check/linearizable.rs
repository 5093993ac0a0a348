//! Invariant: every room's history of bookings, cancellations and reads is linearizable against
//! a sequential model of one room's schedule (a Wing–Gong search with memoisation, as in Lowe's
//! "Testing for linearizability"; rooms are independent, so each is checked alone).
//!
//! Operations without a decisive answer are resolved from the final state first: a booking whose
//! key (its title) is in the final state, or was ever read, did happen at some time after it was
//! sent; otherwise it never took effect and is left out. The same for a cancellation. Reads that
//! failed constrain nothing and are left out.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Failure, FinalState};
use crate::history::{Call, History, Nanos, Op, Ret};

/// The sequential model: a room's active bookings, and the ones cancelled.
#[derive(Default)]
struct Room {
    active: BTreeMap<u64, (i64, i64)>,
    cancelled: BTreeSet<u64>,
}

enum Undo {
    Nothing,
    Booked(u64),
    Cancelled(u64, (i64, i64)),
}

impl Room {
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.active.values().any(|(s, e)| *s < end && start < *e)
    }

    /// Applies `op` if the model allows its answer; returns how to undo it.
    fn step(&mut self, op: &Op) -> Option<Undo> {
        match (&op.call, &op.ret) {
            (Call::Book { start, end, .. }, Ret::Booked { id }) => {
                if self.overlaps(*start, *end)
                    || self.active.contains_key(id)
                    || self.cancelled.contains(id)
                {
                    return None;
                }
                self.active.insert(*id, (*start, *end));
                Some(Undo::Booked(*id))
            }
            (Call::Book { start, end, .. }, Ret::Conflict) => {
                self.overlaps(*start, *end).then_some(Undo::Nothing)
            }
            (Call::Cancel { id, .. }, Ret::Cancelled) => {
                let span = self.active.remove(id)?;
                self.cancelled.insert(*id);
                Some(Undo::Cancelled(*id, span))
            }
            (Call::Cancel { id, .. }, Ret::AlreadyCancelled) => {
                self.cancelled.contains(id).then_some(Undo::Nothing)
            }
            (Call::Read { .. }, Ret::Read(seen)) => {
                let ids: Vec<u64> = seen.iter().map(|s| s.id).collect();
                let same = ids.len() == self.active.len()
                    && seen
                        .iter()
                        .all(|s| self.active.get(&s.id) == Some(&(s.start, s.end)));
                same.then_some(Undo::Nothing)
            }
            _ => None,
        }
    }

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Nothing => {}
            Undo::Booked(id) => {
                self.active.remove(&id);
            }
            Undo::Cancelled(id, span) => {
                self.cancelled.remove(&id);
                self.active.insert(id, span);
            }
        }
    }
}

/// Replaces unknown outcomes by what the final state and the reads show, or drops the operation.
pub fn resolve(history: &History, last: &FinalState) -> Vec<Op> {
    let mut seen_keys: BTreeMap<&str, u64> = BTreeMap::new();
    for op in &history.ops {
        if let Ret::Read(list) = &op.ret {
            for s in list {
                seen_keys.insert(&s.title, s.id);
            }
        }
    }
    for list in last.active.values() {
        for s in list {
            seen_keys.insert(&s.title, s.id);
        }
    }
    let mut ops = Vec::new();
    for op in &history.ops {
        match (&op.call, &op.ret) {
            (Call::Book { key, .. }, Ret::Unknown) => {
                if let Some(id) = seen_keys.get(key.as_str()) {
                    ops.push(Op {
                        ret: Ret::Booked { id: *id },
                        complete: None,
                        ..op.clone()
                    });
                }
            }
            (Call::Cancel { id, .. }, Ret::Unknown) => {
                if last.status.get(id).is_some_and(|s| s == "cancelled") {
                    ops.push(Op {
                        ret: Ret::Cancelled,
                        complete: None,
                        ..op.clone()
                    });
                }
            }
            (Call::Read { .. }, Ret::Unknown) => {}
            _ => ops.push(op.clone()),
        }
    }
    ops
}

struct Search<'a> {
    ops: &'a [Op],
    /// The operations linearized so far, one bit each; also the memo key.
    done: Vec<u64>,
    count: usize,
    room: Room,
    memo: HashSet<Vec<u64>>,
    /// The most operations linearized on any path, and the candidates that were stuck there.
    best: (usize, Vec<usize>),
    budget: u64,
}

impl Search<'_> {
    fn is_done(&self, i: usize) -> bool {
        self.done[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.done[i / 64] ^= 1 << (i % 64);
    }

    /// Whether the remaining operations can be linearized from here.
    fn go(&mut self) -> Result<bool, ()> {
        if self.count == self.ops.len() {
            return Ok(true);
        }
        if self.budget == 0 {
            return Err(());
        }
        self.budget -= 1;
        if self.memo.contains(&self.done) {
            return Ok(false);
        }
        // An operation can go next only if it was invoked before every pending one completed.
        let horizon: Nanos = (0..self.ops.len())
            .filter(|i| !self.is_done(*i))
            .map(|i| self.ops[i].complete.unwrap_or(Nanos::MAX))
            .min()
            .unwrap_or(Nanos::MAX);
        let candidates: Vec<usize> = (0..self.ops.len())
            .filter(|i| !self.is_done(*i) && self.ops[*i].invoke <= horizon)
            .collect();
        for &i in &candidates {
            if let Some(undo) = self.room.step(&self.ops[i]) {
                self.flip(i);
                self.count += 1;
                if self.go()? {
                    return Ok(true);
                }
                self.flip(i);
                self.count -= 1;
                self.room.undo(undo);
            }
        }
        if self.count >= self.best.0 {
            self.best = (self.count, candidates);
        }
        self.memo.insert(self.done.clone());
        Ok(false)
    }
}

/// Checks one room's (resolved) operations.
pub fn check_room(room: u64, mut ops: Vec<Op>) -> Result<(), Failure> {
    ops.sort_by_key(|o| o.invoke);
    let mut s = Search {
        ops: &ops,
        done: vec![0; ops.len().div_ceil(64)],
        count: 0,
        room: Room::default(),
        memo: HashSet::new(),
        best: (0, Vec::new()),
        budget: 20_000_000,
    };
    // Deep histories recurse deeply: run the search on a thread with room for it.
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(scope, || (s.go(), s.best.clone()))
            .expect("spawn checker thread")
            .join()
            .expect("checker thread")
    });
    match outcome {
        (Ok(true), _) => Ok(()),
        (Err(()), _) => Err(Failure {
            invariant: "linearizable",
            detail: format!("room {room}: the search gave up after 20 million steps ({} operations); shorten the run", ops.len()),
        }),
        (Ok(false), (count, stuck)) => {
            let from = stuck.iter().map(|i| ops[*i].invoke).min().unwrap_or(0);
            let to = stuck.iter().filter_map(|i| ops[*i].complete).max().unwrap_or(from);
            Err(Failure {
                invariant: "linearizable",
                detail: format!(
                    "room {room}: no order of its {} operations fits a sequential schedule; the longest \
                     linearizable prefix has {count} operations, after which none of these can go next:\n{}\
                     operations overlapping them in time:\n{}",
                    ops.len(),
                    stuck.iter().map(|i| format!("  {}\n", ops[*i])).collect::<String>(),
                    History::slice(&ops, from, to),
                ),
            })
        }
    }
}

/// Checks every room.
pub fn check(history: &History, last: &FinalState) -> Result<(), Failure> {
    let resolved = History {
        ops: resolve(history, last),
    };
    for (room, ops) in resolved.by_room() {
        check_room(room, ops)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Seen;

    fn op(invoke: Nanos, complete: Option<Nanos>, call: Call, ret: Ret) -> Op {
        Op {
            client: 0,
            call,
            invoke,
            complete,
            ret,
        }
    }
    fn book(start: i64, key: &str) -> Call {
        Call::Book {
            room: 1,
            start,
            end: start + 10,
            key: key.into(),
        }
    }
    fn read(ids: &[(u64, i64)]) -> Ret {
        Ret::Read(
            ids.iter()
                .map(|(id, s)| Seen {
                    id: *id,
                    start: *s,
                    end: s + 10,
                    title: String::new(),
                })
                .collect(),
        )
    }

    #[test]
    fn concurrent_bookings_of_one_slot_with_one_winner_are_linearizable() {
        let ops = vec![
            op(0, Some(10), book(0, "a"), Ret::Conflict),
            op(1, Some(9), book(0, "b"), Ret::Booked { id: 7 }),
            op(11, Some(12), Call::Read { room: 1 }, read(&[(7, 0)])),
        ];
        assert!(check_room(1, ops).is_ok());
    }

    #[test]
    fn two_winners_for_one_slot_are_not() {
        let ops = vec![
            op(0, Some(10), book(0, "a"), Ret::Booked { id: 6 }),
            op(1, Some(9), book(5, "b"), Ret::Booked { id: 7 }),
        ];
        let e = check_room(1, ops).unwrap_err();
        assert_eq!(e.invariant, "linearizable");
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_booking_is_not() {
        let ops = vec![
            op(0, Some(5), book(0, "a"), Ret::Booked { id: 6 }),
            op(6, Some(8), Call::Read { room: 1 }, read(&[])),
        ];
        assert!(check_room(1, ops).is_err());
    }

    #[test]
    fn a_booking_whose_answer_was_lost_may_take_effect_late() {
        let ops = vec![
            // Sent at 0, never answered, yet seen by the second read: it happened after the first.
            op(0, None, book(0, "a"), Ret::Booked { id: 6 }),
            op(1, Some(2), Call::Read { room: 1 }, read(&[])),
            op(3, Some(4), Call::Read { room: 1 }, read(&[(6, 0)])),
        ];
        assert!(check_room(1, ops).is_ok());
    }

    #[test]
    fn a_cancelled_booking_frees_its_slot() {
        let ops = vec![
            op(0, Some(1), book(0, "a"), Ret::Booked { id: 6 }),
            op(
                2,
                Some(3),
                Call::Cancel {
                    room: 1,
                    id: 6,
                    key: "c".into(),
                },
                Ret::Cancelled,
            ),
            op(4, Some(5), book(0, "b"), Ret::Booked { id: 9 }),
            op(6, Some(7), book(0, "d"), Ret::Conflict),
            op(
                8,
                Some(9),
                Call::Cancel {
                    room: 1,
                    id: 6,
                    key: "e".into(),
                },
                Ret::AlreadyCancelled,
            ),
        ];
        assert!(check_room(1, ops).is_ok());
    }
}
