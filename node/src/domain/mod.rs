//! The booking domain: pure, deterministic, no I/O. `apply` takes time and identity from the
//! command and the log index, never from the clock.

mod apply;
mod model;

pub use apply::{Bookings, STATE_FORMAT};
pub use model::*;
