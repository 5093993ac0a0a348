//! Building the first node of a new cluster from a backup's records.
//!
//! Like etcd's snapshot restore, this never touches a running member: it writes a fresh data
//! directory whose state is the backup's records applied at the backup's log index, in a new
//! cluster whose only member is the given node. Log indexes carry on from the backup's, so ids
//! the application derives from them stay unique. The node starts with `roomraft serve` and
//! elects itself; the other members join it with `roomraft cluster add-node`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::{CommittedLeaderId, Membership};

use crate::error::StoreError;
use crate::log_store::{COMMITTED, LAST_PURGED, VOTE};
use crate::state_machine::write_restored;
use crate::store::{encode, sled_err, Store};
use crate::types::{LogId, NodeId, NodeInfo, StoredMembership, Vote};
use roomraft_replicated::App;

/// Writes a new data directory at `dir` for node `node_id` holding `records` as applied at log
/// `index`. Refuses a directory that already holds a node's state, and records that `A` cannot
/// load. Returns the state digest of the restored records (as `Cluster::state_digest` computes
/// it) for comparison with the backup's.
pub fn restore_data_dir<A: App>(
    dir: &Path,
    node_id: NodeId,
    node: NodeInfo,
    index: u64,
    mut records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<String, StoreError> {
    A::load(&mut records.iter().cloned()).map_err(|e| StoreError::Corrupt {
        what: "restored record",
        reason: e.to_string(),
    })?;
    let digest = records_digest(&mut records);
    let store = Store::open(dir)?;
    let err = sled_err(dir);
    if !store.is_fresh()? || !store.sm.is_empty() {
        return Err(StoreError::Corrupt {
            what: "restore target",
            reason: format!(
                "{} already holds a node's state; restore only into an empty folder (never into a running member)",
                dir.display()
            ),
        });
    }
    // A new cluster: term 1, led by the restored node, with everything up to `index` committed
    // and purged from the (empty) log.
    let log_id = LogId::new(CommittedLeaderId::new(1, node_id), index);
    let membership = StoredMembership::new(
        Some(log_id),
        Membership::new(
            vec![BTreeSet::from([node_id])],
            BTreeMap::from([(node_id, node)]),
        ),
    );
    write_restored(&store, log_id, membership, records)?;
    let mut meta = sled::Batch::default();
    meta.insert(VOTE, encode(&Vote::new_committed(1, node_id)));
    meta.insert(COMMITTED, encode(&Some(log_id)));
    meta.insert(LAST_PURGED, encode(&log_id));
    store.raft_meta.apply_batch(meta).map_err(&err)?;
    store.flush_blocking()?;
    Ok(digest)
}

/// Hex SHA-256 over the records in key order (sorts them): the state digest.
pub fn records_digest(records: &mut [(Vec<u8>, Vec<u8>)]) -> String {
    use sha2::{Digest, Sha256};
    records.sort_unstable();
    let mut hash = Sha256::new();
    for (k, v) in records.iter() {
        hash.update((k.len() as u64).to_be_bytes());
        hash.update(k);
        hash.update((v.len() as u64).to_be_bytes());
        hash.update(v);
    }
    hex::encode(hash.finalize())
}

/// Opens the store in `dir` as a node would (the application loaded from its records) and
/// returns the applied index and the state digest. Used to check a restore end to end.
pub fn stored_state_digest<A: App>(dir: &Path) -> Result<(u64, String), StoreError> {
    let (index, mut records) = stored_records::<A>(dir)?;
    Ok((index, records_digest(&mut records)))
}

/// Opens the store in `dir` as a node would and returns the applied index and the
/// application's records, sorted by key (what a snapshot of it would hold).
pub fn stored_records<A: App>(
    dir: &Path,
) -> Result<(u64, roomraft_replicated::Records), StoreError> {
    let sm = crate::state_machine::StateMachineStore::<A>::open(Store::open(dir)?)?;
    let mut records = sm.shared.app.read().records();
    records.sort_unstable();
    Ok((sm.shared.applied_index(), records))
}
