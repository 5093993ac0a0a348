//! Generic Raft replication for Roomraft.
//!
//! This crate knows nothing of bookings. It replicates any [`App`]: commands go in, outcomes come
//! out, and the application state is persisted in sled as records written atomically with the
//! last applied log id. It owns the openraft wiring, the sled log and state-machine storage, the
//! HTTP/2 mutual-TLS peer transport, forwarding of writes to the leader, linearizable reads on
//! every node, membership changes and snapshots.

mod batch;
mod cluster;
mod coalesce;
mod config;
mod error;
mod failover;
mod forward;
pub mod listener;
mod log_store;
mod metrics;
mod network;
mod peer_server;
mod restore;
mod state_machine;
mod store;
pub mod tls;
mod types;
mod wire;

pub use cluster::{AppliedState, Cluster, ClusterStatus, Consistency, MemberStatus, StateDigest};
pub use config::{ClusterConfig, Timeouts};
pub use error::{ClusterError, StoreError};
pub use log_store::LogStore;
pub use metrics::{registered, RaftMetrics};
pub use restore::{records_digest, restore_data_dir, stored_records, stored_state_digest};
pub use roomraft_replicated::{App, LoadError, Records, WriteSet};
pub use state_machine::StateMachineStore;
pub use store::Store;
pub use types::{NodeId, NodeInfo, TypeConfig};

/// Exposed for tests that drive openraft directly (the storage conformance suite).
pub use openraft;
