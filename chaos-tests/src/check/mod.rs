//! Checkers, one invariant per file, over a run's history and every node's final state.

pub mod convergence;
pub mod duplicates;
pub mod linearizable;
pub mod lost;
pub mod overlap;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::Context;

use crate::cluster::Cluster;
use crate::history::{Call, History, Ret, Seen};
use crate::net::NodeId;
use crate::workload::parse_bookings;

/// A broken invariant, with the slice of history that shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub invariant: &'static str,
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant `{}` broken: {}", self.invariant, self.detail)
    }
}

/// One node's state once the faults stopped and the members converged.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    pub node: NodeId,
    /// Active bookings by room.
    pub active: BTreeMap<u64, Vec<Seen>>,
    /// Status (`active` or `cancelled`) of every booking the history names that is not active.
    pub status: BTreeMap<u64, String>,
}

impl FinalState {
    pub fn find(&self, id: u64) -> Option<&Seen> {
        self.active.values().flatten().find(|s| s.id == id)
    }
}

/// Reads node `node`'s own state (stale reads: exactly what that replica holds).
pub async fn final_state(
    c: &Cluster,
    node: NodeId,
    history: &History,
) -> anyhow::Result<FinalState> {
    let mut state = FinalState {
        node,
        ..Default::default()
    };
    for room in &c.rooms {
        let v = c
            .get(
                node,
                &format!("/api/v1/rooms/{room}/bookings?consistency=stale"),
                &c.admin,
            )
            .await?;
        state.active.insert(*room, parse_bookings(&v));
    }
    let active: BTreeSet<u64> = state.active.values().flatten().map(|s| s.id).collect();
    let mut named = BTreeSet::new();
    for op in &history.ops {
        match (&op.call, &op.ret) {
            (_, Ret::Booked { id }) | (Call::Cancel { id, .. }, _) => {
                named.insert(*id);
            }
            _ => {}
        }
    }
    for id in named.difference(&active) {
        let v = c
            .get(
                node,
                &format!("/api/v1/bookings/{id}?consistency=stale"),
                &c.admin,
            )
            .await
            .with_context(|| format!("booking {id} on node {node}"))?;
        state
            .status
            .insert(*id, v["status"].as_str().unwrap_or("?").to_string());
    }
    Ok(state)
}

/// Runs every history checker against every node's final state.
pub fn all(history: &History, states: &[FinalState]) -> Vec<Failure> {
    let mut failures = Vec::new();
    for s in states {
        failures.extend(lost::check(history, s).err());
        failures.extend(overlap::check(history, s).err());
        failures.extend(duplicates::check(history, s).err());
    }
    if let Some(first) = states.first() {
        failures.extend(linearizable::check(history, first).err());
    }
    failures
}
