//! The system area's stored records: the cluster's identity, backup slots and quotas, under
//! `cluster/` and `backup/` rather than any school.

use crate::apply::Bookings;
use crate::model::{BackupSlot, ClusterIdentity, Quotas};
use crate::records::Record;

/// A stored record of the system area; its wire tag is in `records.rs`'s table.
#[derive(Debug, Clone)]
pub(crate) enum SystemRecord {
    Identity(ClusterIdentity),
    BackupSlot(BackupSlot),
    Quotas(Quotas),
}

impl SystemRecord {
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            SystemRecord::Identity(_) => b"cluster/identity".to_vec(),
            SystemRecord::BackupSlot(b) => {
                format!("backup/{:020}", b.slot.as_second()).into_bytes()
            }
            SystemRecord::Quotas(_) => b"cluster/quotas".to_vec(),
        }
    }
}

impl From<SystemRecord> for Record {
    fn from(record: SystemRecord) -> Record {
        Record::System(record)
    }
}

impl Bookings {
    pub(crate) fn index_system(&mut self, record: SystemRecord) {
        match record {
            SystemRecord::Identity(i) => self.system.identity = Some(i),
            SystemRecord::BackupSlot(b) => {
                self.system.backups.insert(b.slot, b);
            }
            SystemRecord::Quotas(q) => self.system.quotas = Some(q),
        }
    }

    /// Only the oldest backup slots are deleted, as new ones are claimed.
    pub(crate) fn discard_system(&mut self, record: SystemRecord) {
        match record {
            SystemRecord::BackupSlot(b) => {
                self.system.backups.remove(&b.slot);
            }
            other => unreachable!("records of this kind are never deleted: {other:?}"),
        }
    }

    pub(crate) fn system_records(&self, out: &mut Vec<Record>) {
        let records = (self
            .system
            .identity
            .clone()
            .map(SystemRecord::Identity)
            .into_iter())
        .chain(
            self.system
                .backups
                .values()
                .cloned()
                .map(SystemRecord::BackupSlot),
        )
        .chain(self.system.quotas.clone().map(SystemRecord::Quotas));
        out.extend(records.map(Record::System));
    }
}
