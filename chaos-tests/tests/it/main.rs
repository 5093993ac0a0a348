//! Multi-process fault tests against the real `roomraft` binary.

mod kill_leader;
