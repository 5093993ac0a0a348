//! Invariant: no retry created a duplicate. Every logical booking (one Idempotency-Key, which the
//! workload also uses as the title) maps to at most one booking id, across every answer, every
//! read and the final state.

use std::collections::{BTreeMap, BTreeSet};

use super::{Failure, FinalState};
use crate::history::{Call, History, Ret};

pub fn check(history: &History, state: &FinalState) -> Result<(), Failure> {
    let mut ids: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for op in &history.ops {
        match (&op.call, &op.ret) {
            (Call::Book { key, .. }, Ret::Booked { id }) => {
                ids.entry(key).or_default().insert(*id);
            }
            (_, Ret::Read(list)) => {
                for s in list {
                    ids.entry(&s.title).or_default().insert(s.id);
                }
            }
            _ => {}
        }
    }
    for s in state.active.values().flatten() {
        ids.entry(&s.title).or_default().insert(s.id);
    }
    for (key, set) in ids {
        if set.len() > 1 {
            return Err(Failure {
                invariant: "no duplicate from a retry",
                detail: format!(
                    "node {}: request {key} created bookings {set:?}\n{}",
                    state.node,
                    history
                        .ops
                        .iter()
                        .filter(|o| matches!(&o.call, Call::Book { key: k, .. } if k == key))
                        .map(|o| format!("  {o}\n"))
                        .collect::<String>()
                ),
            });
        }
    }
    Ok(())
}
