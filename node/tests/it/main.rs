//! HTTP API tests against three in-process nodes over real HTTPS and mutual-TLS peers.

mod analytics;
mod api;
mod backup;
mod formats;
mod grids;
mod harness;
mod openapi;
mod ops;
mod school;
mod security;
