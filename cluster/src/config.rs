use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::{NodeId, NodeInfo};

/// Everything a cluster member needs to start, apart from its TLS material.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id; unique for the cluster's lifetime, never reused.
    pub node_id: NodeId,
    /// Directory holding the sled database and the current snapshot.
    pub data_dir: PathBuf,
    /// Address the peer (Raft, mutual TLS) listener binds.
    pub peer_listen: SocketAddr,
    /// This node's addresses as the other members reach them.
    pub advertise: NodeInfo,
    /// Local address that outgoing peer connections bind to (a multi-homed host's cluster
    /// network; the chaos harness gives each node its own loopback address to tell links apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_source_ip: Option<IpAddr>,
    /// Members that form the cluster on its very first start; empty to join later as a learner.
    #[serde(default, with = "string_keys")]
    pub initial_members: BTreeMap<NodeId, NodeInfo>,
    /// Raft and request timing.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Build a snapshot (and purge the log before it) after this many applied entries.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every_entries: u64,
    /// Once the state holds more records than `snapshot_every_entries`, wait instead for as many
    /// entries as it held at the last snapshot. A snapshot copies the whole state, so this keeps
    /// its cost at about one record per entry however large a school's history grows.
    #[serde(default = "default_true")]
    pub snapshot_scales_with_state: bool,
    /// Log entries kept behind the latest snapshot, so briefly lagging followers need no snapshot.
    #[serde(default = "default_keep_logs")]
    pub keep_logs_after_snapshot: u64,
    /// Largest request body a peer accepts, in bytes (append batches and snapshot chunks).
    #[serde(default = "default_peer_body_limit")]
    pub peer_body_limit_bytes: usize,
}

fn default_snapshot_every() -> u64 {
    20_000
}
fn default_true() -> bool {
    true
}
fn default_keep_logs() -> u64 {
    2_000
}
fn default_peer_body_limit() -> usize {
    64 * 1024 * 1024
}

/// Raft and request timing, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Interval between leader heartbeats.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout.
    pub election_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    pub election_max_ms: u64,
    /// Deadline of one Raft RPC to a peer (append, vote).
    pub rpc_ms: u64,
    /// Deadline for one snapshot chunk.
    pub snapshot_chunk_ms: u64,
    /// Deadline for a client write or linearizable read, across forwarding and leader changes.
    pub request_ms: u64,
    /// Connect timeout for peer connections.
    pub connect_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            // openraft 0.9 lets a follower stand only after the leader lease (election_max) plus
            // its election timeout: 600–800 ms without a heartbeat, six or more missed ones.
            election_min_ms: 200,
            election_max_ms: 400,
            rpc_ms: 1_000,
            snapshot_chunk_ms: 10_000,
            request_ms: 5_000,
            connect_ms: 300,
        }
    }
}

impl Timeouts {
    pub(crate) fn request(&self) -> Duration {
        Duration::from_millis(self.request_ms)
    }
}

impl ClusterConfig {
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, crate::ClusterError> {
        let t = &self.timeouts;
        let config = openraft::Config {
            cluster_name: "roomraft".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_min_ms,
            election_timeout_max: t.election_max_ms,
            install_snapshot_timeout: t.snapshot_chunk_ms,
            // Snapshots are asked for by `cluster::snapshot_policy`, which also weighs the state's size.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            max_payload_entries: 1_000,
            ..Default::default()
        };
        config.validate().map_err(|e| crate::ClusterError::Config {
            reason: e.to_string(),
        })
    }
}

/// Node ids as string keys, so the map is valid TOML (`[cluster.initial_members.1]`).
mod string_keys {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::types::{NodeId, NodeInfo};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<NodeId, NodeInfo>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<NodeId, NodeInfo>, D::Error> {
        let raw = BTreeMap::<String, NodeInfo>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                k.parse()
                    .map(|id| (id, v))
                    .map_err(|_| D::Error::custom(format!("node id {k:?} is not a number")))
            })
            .collect()
    }
}
