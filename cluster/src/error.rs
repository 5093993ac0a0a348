use crate::types::NodeId;

/// Errors of the sled store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled error at {path}: {source}")]
    Sled { path: String, source: sled::Error },
    #[error("corrupt {what} in store: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("snapshot file {path}: {source}")]
    SnapshotFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot make {path} durable (fsync): {source}")]
    Sync {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up journal compression: {source}")]
    Compression { source: std::io::Error },
}

/// Errors a cluster member returns to its callers.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid cluster configuration: {reason}")]
    Config { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot bind peer listener {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("tls: {reason}")]
    Tls { reason: String },
    /// No leader could be reached before the deadline; the request was not applied.
    #[error("no leader is reachable; retry shortly")]
    NoLeader,
    /// The deadline passed after the request may have been proposed: its outcome is unknown.
    /// Retrying with the same idempotency key is safe.
    #[error("request timed out; its outcome is unknown, retry with the same idempotency key")]
    Timeout,
    #[error("membership change refused: {reason}")]
    Membership { reason: String },
    #[error("node {node_id} is shutting down or has stopped: {reason}")]
    Stopped { node_id: NodeId, reason: String },
    #[error("cannot decode {what}: {reason}")]
    Codec { what: &'static str, reason: String },
}

impl ClusterError {
    /// Whether a caller may retry (the cluster could not serve it now).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoLeader | ClusterError::Timeout | ClusterError::Stopped { .. }
        )
    }
}
