//! The system area's state: the cluster's identity, its backup slots and the quotas.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::model::{BackupSlot, ClusterIdentity, Quotas};

/// The system area's part of `Bookings`. Its fields are private to `system/`: only this area's
/// apply and `index_system` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemState {
    pub(super) identity: Option<ClusterIdentity>,
    /// The most recent scheduled backup slots, by slot start.
    pub(super) backups: BTreeMap<Timestamp, BackupSlot>,
    /// Per-school caps on stored records; `None` until an operator sets them: the defaults apply.
    pub(super) quotas: Option<Quotas>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl SystemState {
    pub(crate) fn quotas(&self) -> Option<&Quotas> {
        self.quotas.as_ref()
    }
}
