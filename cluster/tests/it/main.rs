//! Integration tests of the generic cluster crate, with a small claim-a-slot application.

mod harness;
mod replication;
mod store_suite;
mod transport;
