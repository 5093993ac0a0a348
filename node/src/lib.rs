//! Roomraft node: the use cases (`app`) over the booking domain, their two adapters (the JSON
//! API and the pages) on shared HTTP plumbing, configuration, wiring and the CLI commands.

pub mod analytics;
pub mod api;
pub mod app;
pub mod backup;
pub mod backup_cli;
pub mod client;
pub mod cluster_cli;
pub mod config;
pub mod dev;
pub mod http;
pub mod logging;
pub mod routes;
pub mod seed;
pub mod server;
pub mod web;

/// The booking domain, a crate of its own so that its purity is a Cargo fact.
pub use roomraft_domain as domain;
