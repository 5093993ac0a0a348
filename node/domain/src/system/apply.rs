//! The handlers of the cluster's own commands, and `reidentify` for a restored backup.

use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, Bookings, Ctx, Res};
use crate::model::{BackupDone, BackupSlot, ClusterIdentity, Outcome, RestoredFrom, Role};
use crate::records::Record;
use crate::system::SystemRecord;

use super::{ClaimBackup, MarkBackupDone, SetClusterIdentity, SetQuotas, SystemOp};

/// Scheduled backup slots remembered (a little over a week of hourly backups).
const SLOTS_KEPT: usize = 200;

impl Bookings {
    pub(crate) fn apply_system(
        &mut self,
        ctx: &mut Ctx,
        op: &SystemOp,
        writes: &mut WriteSet,
    ) -> Res {
        if !matches!(op, SystemOp::SetQuotas(_))
            && (ctx.actor.role != Role::Operator || ctx.actor.tenant.is_some())
        {
            return Err(forbidden(
                "only the cluster itself changes its identity and backups",
            ));
        }
        match op {
            SystemOp::SetQuotas(SetQuotas { quotas }) => self.set_quotas(ctx, quotas, writes),
            SystemOp::SetClusterIdentity(SetClusterIdentity { id }) => {
                if id.is_empty() || id.len() > 64 {
                    return Err(invalid("id", "must be 1 to 64 characters"));
                }
                if self.system.identity.is_none() {
                    let identity = ClusterIdentity {
                        id: id.clone(),
                        created: ctx.time,
                        restored_from: None,
                    };
                    self.store(SystemRecord::Identity(identity), writes);
                }
                Ok(Outcome::Identity(
                    self.system.identity.clone().expect("set above"),
                ))
            }
            SystemOp::ClaimBackup(ClaimBackup { slot, node, term }) => {
                let granted = match self.system.backups.get(slot) {
                    None => true,
                    Some(b) if b.done.is_some() => false,
                    // A newer leader takes over a claim whose holder may have died mid-backup;
                    // the holder may renew its own.
                    Some(b) => *term > b.term || (*term == b.term && *node == b.node),
                };
                if granted {
                    let claim = BackupSlot {
                        slot: *slot,
                        node: *node,
                        term: *term,
                        claimed_at: ctx.time,
                        done: None,
                    };
                    self.store(SystemRecord::BackupSlot(claim), writes);
                    while self.system.backups.len() > SLOTS_KEPT {
                        let oldest = self
                            .system
                            .backups
                            .values()
                            .next()
                            .cloned()
                            .expect("non-empty");
                        self.discard(SystemRecord::BackupSlot(oldest), writes);
                    }
                }
                Ok(Outcome::BackupClaim { granted })
            }
            SystemOp::MarkBackupDone(MarkBackupDone { slot, done }) => {
                let Some(mut b) = self.system.backups.get(slot).cloned() else {
                    return Err(invalid("slot", "no backup was claimed for this slot"));
                };
                b.done = Some(done.clone());
                self.store(SystemRecord::BackupSlot(b), writes);
                Ok(Outcome::Done)
            }
        }
    }

    /// The newest finished scheduled backup.
    pub fn last_backup(&self) -> Option<&BackupDone> {
        self.system
            .backups
            .values()
            .rev()
            .find_map(|b| b.done.as_ref())
    }

    /// The scheduled backup slot starting at `slot`, claimed or done.
    pub fn backup_slot(&self, slot: jiff::Timestamp) -> Option<&BackupSlot> {
        self.system.backups.get(&slot)
    }

    /// The cluster's name, once it has one.
    pub fn identity(&self) -> Option<&ClusterIdentity> {
        self.system.identity.as_ref()
    }
}

/// Rewrites a backup's records for a restored cluster: a new identity that names its origin.
/// Returns the records and the old identity.
pub fn reidentify(
    records: Vec<(Vec<u8>, Vec<u8>)>,
    new_id: &str,
    now: jiff::Timestamp,
    backup_id: &str,
    index: u64,
) -> Result<(roomraft_replicated::Records, Option<ClusterIdentity>), String> {
    let key = SystemRecord::Identity(ClusterIdentity {
        id: String::new(),
        created: now,
        restored_from: None,
    })
    .key();
    let mut old = None;
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(records.len() + 1);
    for (k, v) in records {
        if k == key {
            match Record::decode(&v)? {
                Record::System(SystemRecord::Identity(i)) => old = Some(i),
                other => return Err(format!("unexpected record at the identity key: {other:?}")),
            }
        } else {
            out.push((k, v));
        }
    }
    let identity = ClusterIdentity {
        id: new_id.to_string(),
        created: now,
        restored_from: Some(RestoredFrom {
            cluster_id: old.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
            backup_id: backup_id.to_string(),
            index,
        }),
    };
    let record = Record::from(SystemRecord::Identity(identity));
    out.push((record.key(), record.encode()));
    Ok((out, old))
}
