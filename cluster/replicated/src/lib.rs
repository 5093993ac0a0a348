//! The contract between the Raft runtime (`roomraft-cluster`) and the application it replicates:
//! [`App`], the records one apply changes ([`WriteSet`]) and [`LoadError`]. Depends on serde and
//! thiserror only, so an application can be a pure crate.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Records as `(key, value)` pairs: what a snapshot, a backup or a load holds.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The application a cluster replicates.
///
/// `apply` must be deterministic: the same commands in the same order give the same outcomes and
/// the same records on every replica. No wall clock, randomness or I/O: time and identity come from
/// the command and the log index.
pub trait App: Clone + Send + Sync + 'static {
    /// A command as written to the Raft log (its bincode encoding is a storage format: version it).
    type Command: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static;
    /// What applying a command produced; rejections are outcomes, not errors.
    type Outcome: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static;

    /// Applies one committed command at log `index`, recording every changed record in `writes`.
    ///
    /// Under load several commands share a log entry: they are applied one after another, in
    /// order, all with that entry's `index`. Identities derived from the index must therefore
    /// also count the commands of the entry applied before (see roomraft-node's `Ctx::new_id`).
    fn apply(&mut self, index: u64, command: Self::Command, writes: &mut WriteSet)
        -> Self::Outcome;

    /// Rebuilds the state from its persisted records, given in key order.
    fn load(records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Self, LoadError>;

    /// Every record describing the current state, in any order (used for snapshots).
    fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)>;

    /// The records a backup keeps: by default all of them. An application leaves out secrets
    /// that must not outlive the cluster's own short retention of them; a restored cluster
    /// starts without those records.
    fn backup_records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.records()
    }
}

/// A record that could not be decoded when the state was loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode record {key}: {reason}")]
pub struct LoadError {
    /// The record's key, printable.
    pub key: String,
    /// Why it could not be decoded.
    pub reason: String,
}

/// The records one apply changed; persisted atomically with the last applied log id.
#[derive(Debug, Default)]
pub struct WriteSet {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.ops.push((key.into(), Some(value)));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// The operations in the order they were recorded.
    pub fn ops(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.ops
    }
}
