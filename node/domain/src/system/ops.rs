//! Commands of this area: one struct each, and the enum `Op::System` holds.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::ClusterIdentity;
use crate::model::Outcome;
use crate::op::replies;

use crate::model::{BackupDone, Quotas};

/// The cluster's own records: its identity, scheduled backups and per-school quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemOp {
    SetClusterIdentity(SetClusterIdentity),
    ClaimBackup(ClaimBackup),
    MarkBackupDone(MarkBackupDone),
    SetQuotas(SetQuotas),
}

/// Names the cluster, once: the first proposal wins, later ones change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetClusterIdentity {
    pub id: String,
}

/// The leader of `term` asks to take the scheduled backup of `slot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimBackup {
    pub slot: Timestamp,
    pub node: u64,
    pub term: u64,
}

/// The claimed backup of `slot` is written and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkBackupDone {
    pub slot: Timestamp,
    pub done: BackupDone,
}

/// An operator sets the per-school caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetQuotas {
    pub quotas: Quotas,
}

replies! {
    SetClusterIdentity: ClusterIdentity { Outcome::Identity(id) => id }
    /// Whether this node may take the backup slot.
    ClaimBackup: bool { Outcome::BackupClaim { granted } => granted }
    MarkBackupDone: () { Outcome::Done => () }
    SetQuotas: Quotas { Outcome::Quotas(q) => q }
}
