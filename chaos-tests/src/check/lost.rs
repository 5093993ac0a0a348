//! Invariant: no acknowledged booking is lost. Every booking a client was told was created is
//! on every node, with the times it was booked for, and is still active unless a cancellation
//! of it was sent.

use super::{Failure, FinalState};
use crate::history::{Call, History, Ret};

pub fn check(history: &History, state: &FinalState) -> Result<(), Failure> {
    for op in &history.ops {
        let (Call::Book { start, end, .. }, Ret::Booked { id }) = (&op.call, &op.ret) else {
            continue;
        };
        let cancel_sent = history
            .ops
            .iter()
            .any(|o| matches!(&o.call, Call::Cancel { id: c, .. } if c == id));
        let fail = |why: String| Failure {
            invariant: "no acknowledged booking lost",
            detail: format!(
                "node {}: {why}\n  {op}\noperations on booking {id}:\n{}",
                state.node,
                history
                    .ops
                    .iter()
                    .filter(|o| matches!(&o.call, Call::Cancel { id: c, .. } if c == id))
                    .map(|o| format!("  {o}\n"))
                    .collect::<String>()
            ),
        };
        match state.find(*id) {
            Some(seen) if (seen.start, seen.end) != (*start, *end) => {
                return Err(fail(format!(
                    "booking {id} has times [{}, {}), not the acknowledged ones",
                    seen.start, seen.end
                )))
            }
            Some(_) => {}
            None => match state.status.get(id).map(String::as_str) {
                Some("cancelled") if cancel_sent => {}
                Some("cancelled") => {
                    return Err(fail(format!(
                        "booking {id} is cancelled, but nobody cancelled it"
                    )))
                }
                other => {
                    return Err(fail(format!(
                        "acknowledged booking {id} is missing (status {other:?})"
                    )))
                }
            },
        }
    }
    Ok(())
}
