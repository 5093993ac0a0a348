//! Invariant: no two active bookings of one room overlap, on any node.

use super::{Failure, FinalState};
use crate::history::{Call, History};

pub fn check(history: &History, state: &FinalState) -> Result<(), Failure> {
    for (room, list) in &state.active {
        let mut spans = list.clone();
        spans.sort_by_key(|s| (s.start, s.end, s.id));
        for pair in spans.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if b.start < a.end {
                let made_by = |title: &str| {
                    history
                        .ops
                        .iter()
                        .filter(|o| matches!(&o.call, Call::Book { key, .. } if key == title))
                        .map(|o| format!("  {o}\n"))
                        .collect::<String>()
                };
                return Err(Failure {
                    invariant: "no overlapping bookings",
                    detail: format!(
                        "node {}: room {room}: booking {} [{}, {}) overlaps booking {} [{}, {})\n{}{}",
                        state.node,
                        a.id,
                        a.start,
                        a.end,
                        b.id,
                        b.start,
                        b.end,
                        made_by(&a.title),
                        made_by(&b.title)
                    ),
                });
            }
        }
    }
    Ok(())
}
