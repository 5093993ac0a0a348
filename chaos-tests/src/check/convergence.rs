//! Invariant: once the faults stop, every member converges to the same state (the same state
//! digest at the same applied index) within a bound.

use std::time::Duration;

use super::Failure;
use crate::cluster::Cluster;

/// How long members may take to agree after the last fault healed.
pub const BOUND: Duration = Duration::from_secs(30);

/// Returns how long convergence took.
pub async fn check(c: &Cluster) -> Result<Duration, Failure> {
    c.converged(BOUND).await.map_err(|e| Failure {
        invariant: "replicas converge",
        detail: format!("{e:#}"),
    })
}
