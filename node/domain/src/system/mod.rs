//! The cluster's own records: its identity, the claims that make scheduled backups happen once
//! per slot, by one leader, and the per-school quotas an operator sets.

mod apply;
mod model;
mod ops;
mod records;
mod state;

pub use apply::reidentify;
pub use model::{BackupDone, BackupSlot, ClusterIdentity, Quotas, RestoredFrom};
pub use ops::{ClaimBackup, MarkBackupDone, SetClusterIdentity, SetQuotas, SystemOp};
pub(crate) use records::SystemRecord;
pub(crate) use state::SystemState;
