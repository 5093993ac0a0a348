//! The replicated state machine: an [`App`] held in memory, persisted as a snapshot plus a
//! journal of changes in sled.
//!
//! The persisted state is `snapshot.bin` (every application record as of the snapshot's log id,
//! written with temp file, fsync, rename, fsync of the directory) and, in sled, one journal
//! record per apply call after it: the records that call changed, zstd-compressed, keyed by the
//! last log index it applied (and cut into chunks of a few KiB, see [`JOURNAL_CHUNK_BYTES`]).
//! Each apply inserts its journal record's chunks, then the last applied log id, which commits the
//! record: sled recovers a prefix of its writes, so an applied id on disk means every chunk
//! before it is too, and opening drops any journal record beyond the applied id (a crash can leave
//! one, whole or in part; openraft applies those entries again from the log). The persisted state
//! and the applied log id therefore always agree. Plain inserts, not a sled batch: each
//! `apply_batch` makes sled seal and write its I/O buffer twice (a `pwrite` and a
//! `sync_file_range` on its thread pool, each waking all of the pool's idle threads), which cost
//! more than the whole apply. An apply that changes the membership writes it, the record and the
//! applied id in one batch, since the membership must never be ahead of the applied id.
//!
//! Writing one journal record per call, instead of every changed record into a tree, costs sled
//! one insert per apply instead of several per command; compressing it cuts what sled writes for
//! the state machine about sixfold (records repeat their keys, times and names). Building a
//! snapshot makes it the new base and drops the journal records it covers. Opening the store
//! loads the snapshot and replays the journal.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::metrics::RaftMetrics;

use crate::batch::decode_entry;
use crate::error::StoreError;
use crate::store::{decode, encode, sled_err, Store};
use crate::types::{
    AppResponse, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::wire::{ByteStrings, Changes, ChangesRef};
use roomraft_replicated::{App, WriteSet};

/// Application records, one per key: the layout before the journal (see [`migrate_records`]).
const APP_PREFIX: &[u8] = b"a/";
/// Journal records, keyed by the big-endian last log index of the apply call that wrote them.
const JOURNAL_PREFIX: &[u8] = b"j/";
const APPLIED: &[u8] = b"m/applied";
const MEMBERSHIP: &[u8] = b"m/membership";
/// Which layout the state machine is stored in; absent before the journal.
const LAYOUT: &[u8] = b"m/layout";
/// Journal records stored plain, each chunk decodable alone: read only, to move to the current
/// layout (see [`StateMachineStore::open`]).
const LAYOUT_PLAIN_JOURNAL: u32 = 2;
/// Journal records compressed, the chunks of one record concatenated before decompression.
const LAYOUT_JOURNAL: u32 = 3;
/// zstd's fastest level: a record is compressed on every node for every apply call.
const JOURNAL_ZSTD_LEVEL: i32 = 1;
const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_FORMAT: u32 = 1;

/// The application state shared between the state machine and readers.
pub(crate) struct Shared<A> {
    pub(crate) app: RwLock<A>,
    /// The last log index applied to `app`; only changed while `app` is write-locked, so a
    /// reader holding the read lock sees the index that matches the state.
    applied_index: AtomicU64,
    /// The term of that entry, under the same rule.
    applied_term: AtomicU64,
    /// How many application records the state had when it was last snapshotted or loaded; the
    /// snapshot policy weighs the next snapshot's cost by it.
    pub(crate) snapshot_records: Arc<AtomicU64>,
}

impl<A> Shared<A> {
    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    pub(crate) fn applied_term(&self) -> u64 {
        self.applied_term.load(Ordering::Acquire)
    }

    fn set_applied(&self, log_id: Option<LogId>) {
        let (term, index) = log_id.map_or((0, 0), |l| (l.leader_id.term, l.index));
        self.applied_term.store(term, Ordering::Release);
        self.applied_index.store(index, Ordering::Release);
    }
}

/// openraft's state machine over an [`App`].
pub struct StateMachineStore<A: App> {
    pub(crate) shared: Arc<Shared<A>>,
    store: Store,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The log id `snapshot.bin` was taken at. Held while the file is replaced, so a build that
    /// finishes after a newer snapshot was installed cannot put its older one back.
    snapshot_at: Arc<tokio::sync::Mutex<Option<LogId>>>,
    /// Compresses journal records; kept, so each apply does not set up a new context.
    compressor: zstd::bulk::Compressor<'static>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    format: u32,
    meta: SnapshotMeta,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    format: u32,
    #[serde(with = "crate::wire::byte_pairs")]
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One apply call's changes: each key set to a value or deleted, in order.
type JournalOps = crate::wire::ChangeList;

/// A compressed journal record is cut into chunks of at most this many bytes. sled writes a tree
/// node larger than a quarter of its 512 KiB segment as a separate blob file, and a leaf holds up
/// to 17 records: chunks this small keep every journal leaf inline.
const JOURNAL_CHUNK_BYTES: usize = 4 << 10;

/// `j/`, the big-endian log index, the big-endian chunk number.
fn journal_key(index: u64, chunk: u32) -> [u8; 14] {
    let mut k = [0u8; 14];
    k[..2].copy_from_slice(JOURNAL_PREFIX);
    k[2..10].copy_from_slice(&index.to_be_bytes());
    k[10..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// One apply call's `ops`, compressed: the journal record's bytes (see [`journal_chunks`]).
fn pack_journal(
    ops: &[(Vec<u8>, Option<Vec<u8>>)],
    compressor: &mut zstd::bulk::Compressor<'static>,
) -> std::io::Result<Vec<u8>> {
    compressor.compress(&encode(&ChangesRef(ops)))
}

/// The keys and bytes of journal record `index`'s chunks, in order.
fn journal_chunks(index: u64, packed: &[u8]) -> impl Iterator<Item = ([u8; 14], &[u8])> {
    (0u32..)
        .zip(packed.chunks(JOURNAL_CHUNK_BYTES))
        .map(move |(n, piece)| (journal_key(index, n), piece))
}

/// The changes in journal record `index`, from its chunks' bytes.
fn unpack((index, packed): (u64, Vec<u8>)) -> Result<JournalOps, StoreError> {
    let plain = zstd::stream::decode_all(&packed[..]).map_err(|e| StoreError::Corrupt {
        what: "journal record",
        reason: format!("record {index} does not decompress: {e}"),
    })?;
    decode_changes(&plain)
}

/// The changes of one plain (uncompressed) journal record.
fn decode_changes(bytes: &[u8]) -> Result<JournalOps, StoreError> {
    decode("journal record", bytes).map(|c: Changes| c.0)
}

/// What [`read_journal`] met that a crash can leave behind, and opening drops.
#[derive(Default)]
struct Leftovers {
    /// Records the snapshot covers.
    covered: bool,
    /// Records beyond the applied log id: written, not committed by the applied id.
    beyond: bool,
}

/// Calls `replay` with the changes of each journal record after `covered` (the snapshot's log
/// index, if there is a snapshot) and up to `applied` (the last applied log index), in order, as
/// written in `layout`.
fn read_journal(
    store: &Store,
    layout: u32,
    covered: Option<u64>,
    applied: u64,
    mut replay: impl FnMut(JournalOps),
) -> Result<Leftovers, StoreError> {
    let err = sled_err(&store.dir);
    let mut leftovers = Leftovers::default();
    // The chunks of the record being read: its index and their bytes so far.
    let mut record: Option<(u64, Vec<u8>)> = None;
    for item in store.sm.scan_prefix(JOURNAL_PREFIX) {
        let (key, value) = item.map_err(&err)?;
        let index = journal_index(&key)?;
        if covered.is_some_and(|c| index <= c) {
            leftovers.covered = true;
            continue;
        }
        if index > applied {
            leftovers.beyond = true;
            continue;
        }
        if layout == LAYOUT_PLAIN_JOURNAL {
            replay(decode_changes(&value)?);
            continue;
        }
        match &mut record {
            Some((at, bytes)) if *at == index => bytes.extend_from_slice(&value),
            _ => {
                if let Some(done) = record.replace((index, value.to_vec())) {
                    replay(unpack(done)?);
                }
            }
        }
    }
    if let Some(done) = record {
        replay(unpack(done)?);
    }
    Ok(leftovers)
}

fn journal_index(key: &[u8]) -> Result<u64, StoreError> {
    key.get(JOURNAL_PREFIX.len()..JOURNAL_PREFIX.len() + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            what: "journal key",
            reason: format!("{key:?} is not a log index"),
        })
}

/// Adds to `batch` the removal of every journal record whose index is in `indexes`.
fn remove_journal(
    store: &Store,
    indexes: std::ops::RangeInclusive<u64>,
    batch: &mut sled::Batch,
) -> Result<(), sled::Error> {
    let keys = journal_key(*indexes.start(), 0)..=journal_key(*indexes.end(), u32::MAX);
    for key in store.sm.range(keys).keys() {
        batch.remove(key?);
    }
    Ok(())
}

/// Removes the journal records whose index is in `indexes`: at or below a snapshot, which covers
/// them, or beyond the applied log id, which does not commit them.
fn drop_journal(store: &Store, indexes: std::ops::RangeInclusive<u64>) -> Result<(), sled::Error> {
    let mut batch = sled::Batch::default();
    remove_journal(store, indexes, &mut batch)?;
    store.sm.apply_batch(batch)
}

fn read_snapshot_file(path: &Path) -> Result<Option<SnapshotFile>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::SnapshotFile {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let file: SnapshotFile = decode("snapshot file", &bytes)?;
    if file.format != SNAPSHOT_FORMAT {
        return Err(StoreError::Corrupt {
            what: "snapshot file",
            reason: format!("unknown format {}", file.format),
        });
    }
    Ok(Some(file))
}

fn decode_snapshot_data(bytes: &[u8]) -> Result<SnapshotData, StoreError> {
    let data: SnapshotData = decode("snapshot data", bytes)?;
    if data.format != SNAPSHOT_FORMAT {
        return Err(StoreError::Corrupt {
            what: "snapshot data",
            reason: format!("unknown format {}", data.format),
        });
    }
    Ok(data)
}

impl SnapshotFile {
    fn new(meta: SnapshotMeta, records: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            format: SNAPSHOT_FORMAT,
            meta,
            data: encode(&SnapshotData {
                format: SNAPSHOT_FORMAT,
                records,
            }),
        }
    }

    /// Writes the file durably at `path`, streamed: a snapshot is as large as the state.
    fn write(&self, path: &Path) -> std::io::Result<()> {
        write_durably_with(path, |w| {
            bincode::serialize_into(w, self).map_err(std::io::Error::other)
        })
    }
}

/// The applied log id and membership recorded beside the journal.
fn read_applied(store: &Store) -> Result<(Option<LogId>, StoredMembership), StoreError> {
    let err = sled_err(&store.dir);
    let applied = match store.sm.get(APPLIED).map_err(&err)? {
        Some(v) => decode("applied log id", &v)?,
        None => None,
    };
    let membership = match store.sm.get(MEMBERSHIP).map_err(&err)? {
        Some(v) => decode("membership", &v)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

impl<A: App> StateMachineStore<A> {
    /// Opens the state machine persisted in `store`: the snapshot, then the journal after it.
    pub fn open(store: Store) -> Result<Self, StoreError> {
        let dir = store.dir.clone();
        let err = sled_err(&dir);
        let path = dir.join(SNAPSHOT_FILE);
        let layout = match store.sm.get(LAYOUT).map_err(&err)? {
            None => {
                migrate_records(&store, &path)?;
                LAYOUT_JOURNAL
            }
            Some(v) => match decode("state machine layout", &v)? {
                l @ (LAYOUT_PLAIN_JOURNAL | LAYOUT_JOURNAL) => l,
                other => {
                    return Err(StoreError::Corrupt {
                        what: "state machine layout",
                        reason: format!(
                            "layout {other} is unknown to this version; was the data directory \
                             written by a newer Roomraft?"
                        ),
                    })
                }
            },
        };
        let (mut last_applied, mut membership) = read_applied(&store)?;

        let mut records = std::collections::BTreeMap::new();
        let mut snapshot_at = None;
        if let Some(file) = read_snapshot_file(&path)? {
            snapshot_at = file.meta.last_log_id;
            records.extend(decode_snapshot_data(&file.data)?.records);
            // The snapshot is durable before it is used, the journal's newest records may not
            // be: after a crash the snapshot can be newer than the applied id in sled.
            if file.meta.last_log_id > last_applied {
                last_applied = file.meta.last_log_id;
            }
            if file.meta.last_membership.log_id() > membership.log_id() {
                membership = file.meta.last_membership;
            }
        }
        let covered = snapshot_at.map(|l| l.index);
        let applied = last_applied.map_or(0, |l| l.index);
        let leftovers = read_journal(&store, layout, covered, applied, |ops| {
            for (k, v) in ops {
                match v {
                    Some(v) => records.insert(k, v),
                    None => records.remove(&k),
                };
            }
        })?;
        if layout == LAYOUT_PLAIN_JOURNAL {
            // The plain journal becomes a snapshot, then the journal starts again compressed.
            let meta = SnapshotMeta {
                snapshot_id: format!("migrated-{}", last_applied.map_or(0, |l| l.index)),
                last_log_id: last_applied,
                last_membership: membership.clone(),
            };
            let all = records
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            rebase(&store, &path, meta, all)?;
            drop_journal(&store, 0..=u64::MAX).map_err(&err)?;
            store.flush_blocking()?;
            snapshot_at = last_applied;
            tracing::info!("state machine journal moved to the compressed layout");
        } else {
            if leftovers.covered {
                drop_journal(&store, 0..=covered.unwrap_or(0)).map_err(&err)?;
            }
            if leftovers.beyond {
                // Durably, before this node applies those entries again: the next apply call may
                // end at another index and leave the old record to be read as committed later.
                drop_journal(&store, applied.saturating_add(1)..=u64::MAX).map_err(&err)?;
                store.flush_blocking()?;
                tracing::info!(applied, "dropped journal records beyond the applied log id");
            }
        }
        let loaded = records.len() as u64;
        let app = A::load(&mut records.into_iter()).map_err(|e| StoreError::Corrupt {
            what: "application record",
            reason: e.to_string(),
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                app: RwLock::new(app),
                applied_index: AtomicU64::new(last_applied.map(|l: LogId| l.index).unwrap_or(0)),
                applied_term: AtomicU64::new(last_applied.map(|l| l.leader_id.term).unwrap_or(0)),
                snapshot_records: Arc::new(AtomicU64::new(loaded)),
            }),
            store,
            last_applied,
            membership,
            snapshot_at: Arc::new(tokio::sync::Mutex::new(snapshot_at)),
            compressor: zstd::bulk::Compressor::new(JOURNAL_ZSTD_LEVEL)
                .map_err(|source| StoreError::Compression { source })?,
        })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.store.dir.join(SNAPSHOT_FILE)
    }
}

/// Moves a state machine stored in the layout before the journal (every application record
/// under `a/`, the applied log id beside them) to the journal layout: the records become the
/// snapshot at the applied log id, then the old records are removed. A store without `a/`
/// records (a new one) is only marked. Safe to repeat after a crash at any point: the mark is
/// written, durably, only once the snapshot is.
fn migrate_records(store: &Store, path: &Path) -> Result<(), StoreError> {
    let err = sled_err(&store.dir);
    let mut records = Vec::new();
    for item in store.sm.scan_prefix(APP_PREFIX) {
        let (k, v) = item.map_err(&err)?;
        records.push((k[APP_PREFIX.len()..].to_vec(), v.to_vec()));
    }
    if records.is_empty() {
        store
            .sm
            .insert(LAYOUT, encode(&LAYOUT_JOURNAL))
            .map_err(&err)?;
        store.flush_blocking()?;
        return Ok(());
    }
    let (last_log_id, last_membership) = read_applied(store)?;
    let meta = SnapshotMeta {
        snapshot_id: format!("migrated-{}", last_log_id.map_or(0, |l| l.index)),
        last_log_id,
        last_membership,
    };
    let count = records.len();
    rebase(store, path, meta, records)?;
    tracing::info!(records = count, "state machine moved to the journal layout");
    loop {
        let keys: Vec<_> = store
            .sm
            .scan_prefix(APP_PREFIX)
            .keys()
            .take(10_000)
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        if keys.is_empty() {
            break;
        }
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        store.sm.apply_batch(batch).map_err(&err)?;
    }
    store.flush_blocking()?;
    Ok(())
}

/// The first half of a layout move: `records`, the whole state at `meta`'s log id, become the
/// snapshot, durably, and only then is the store marked as in the current layout, durably. The
/// caller removes what the old layout kept afterwards; a crash before the mark repeats the move.
fn rebase(
    store: &Store,
    path: &Path,
    meta: SnapshotMeta,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), StoreError> {
    let err = sled_err(&store.dir);
    SnapshotFile::new(meta, records)
        .write(path)
        .map_err(|source| StoreError::SnapshotFile {
            path: path.display().to_string(),
            source,
        })?;
    store
        .sm
        .insert(LAYOUT, encode(&LAYOUT_JOURNAL))
        .map_err(&err)?;
    store.flush_blocking()?;
    Ok(())
}

/// Writes to `path` durably what `write` writes: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_durably_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn io_snapshot_err(meta: &SnapshotMeta, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
}

/// Builds a snapshot from a copy of the application state taken when the build was requested.
pub struct SnapshotBuilder<A: App> {
    /// Taken by the one build; the copy was made when the build was requested.
    app: Option<A>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// Taken by the build, and dropped as soon as its file and journal work is done: a builder
    /// must not keep the database open after the node shut down.
    store: Option<Store>,
    snapshot_at: Arc<tokio::sync::Mutex<Option<LogId>>>,
    metrics: Arc<RaftMetrics>,
    records: Arc<AtomicU64>,
}

impl<A: App> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (app, store) = self.app.take().zip(self.store.take()).ok_or_else(|| {
            StorageIOError::read_state_machine(&StoreError::Corrupt {
                what: "snapshot builder",
                reason: "a builder builds one snapshot".into(),
            })
        })?;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, rand::random::<u32>()),
            None => format!("0-0-{}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let (mut file, records) = tokio::task::spawn_blocking({
            let meta = meta.clone();
            move || {
                let records = app.records();
                let n = records.len() as u64;
                (SnapshotFile::new(meta, records), n)
            }
        })
        .await
        .map_err(|e| StorageIOError::read_state_machine(&e))?;

        let mut on_disk = self.snapshot_at.lock().await;
        // A newer snapshot installed while this one was built stays: openraft keeps the newer.
        if *on_disk < meta.last_log_id {
            let path = store.dir.join(SNAPSHOT_FILE);
            let covered = meta.last_log_id.map_or(0, |l| l.index);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let tracked = store.clone();
            // Tracked, so that shutting the node down waits for it and its database handle.
            tracked.track(tokio::task::spawn_blocking(move || {
                let written = file
                    .write(&path)
                    // The snapshot is the new base: the journal records it covers are not needed.
                    .and_then(|()| {
                        drop_journal(&store, 0..=covered).map_err(std::io::Error::other)
                    });
                drop(store);
                let _ = tx.send((file, written));
            }));
            drop(tracked);
            let (back, written) = rx.await.map_err(|e| io_snapshot_err(&meta, e))?;
            written.map_err(|e| io_snapshot_err(&meta, e))?;
            file = back;
            *on_disk = meta.last_log_id;
            self.metrics.snapshot_builds.inc();
            self.records.store(records, Ordering::Relaxed);
            tracing::info!(snapshot = %meta.snapshot_id, bytes = file.data.len(), records, "snapshot built");
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(file.data)),
        })
    }
}
impl<A: App> RaftStateMachine<TypeConfig> for StateMachineStore<A> {
    type SnapshotBuilder = SnapshotBuilder<A>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<AppResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let timer = self.store.metrics.apply_seconds.start_timer();
        let mut responses = Vec::new();
        let mut writes = WriteSet::default();
        let mut applied = 0;
        let mut membership_changed = false;
        {
            let mut app = self.shared.app.write();
            for entry in entries {
                applied += 1;
                self.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => responses.push(AppResponse::default()),
                    EntryPayload::Membership(m) => {
                        self.membership = StoredMembership::new(Some(entry.log_id), m);
                        membership_changed = true;
                        responses.push(AppResponse::default());
                    }
                    EntryPayload::Normal(req) => {
                        // A command this binary cannot decode must stop the node, not be skipped:
                        // skipping would let replicas diverge.
                        let commands = decode_entry(req.0)
                            .map_err(|e| StorageIOError::apply(entry.log_id, &e))?;
                        let mut outcomes = Vec::with_capacity(commands.len());
                        for bytes in commands {
                            let command: A::Command =
                                bincode::deserialize(&bytes).map_err(|e| {
                                    StorageIOError::apply(
                                        entry.log_id,
                                        &StoreError::Corrupt {
                                            what: "command",
                                            reason: e.to_string(),
                                        },
                                    )
                                })?;
                            let outcome = app.apply(entry.log_id.index, command, &mut writes);
                            outcomes.push(encode(&outcome));
                        }
                        responses.push(AppResponse(encode(&ByteStrings(outcomes))));
                    }
                }
            }
            self.shared.set_applied(self.last_applied);
        }
        let packed = if writes.ops().is_empty() {
            Vec::new()
        } else {
            pack_journal(writes.ops(), &mut self.compressor)
                .map_err(|e| StorageIOError::write_state_machine(&e))?
        };
        let index = self.last_applied.map_or(0, |l| l.index);
        let applied_id = encode(&self.last_applied);
        let written = if membership_changed {
            let mut batch = sled::Batch::default();
            for (key, chunk) in journal_chunks(index, &packed) {
                batch.insert(&key, chunk);
            }
            batch.insert(APPLIED, applied_id);
            batch.insert(MEMBERSHIP, encode(&self.membership));
            self.store.sm.apply_batch(batch)
        } else {
            // The chunks, then the applied id that commits them (see the module's comment).
            journal_chunks(index, &packed)
                .try_for_each(|(key, chunk)| self.store.sm.insert(key, chunk).map(drop))
                .and_then(|()| self.store.sm.insert(APPLIED, applied_id).map(drop))
        };
        written.map_err(|e| StorageIOError::write_state_machine(&e))?;
        timer.observe_duration();
        self.store.metrics.entries_applied.inc_by(applied);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            app: Some(self.shared.app.read().clone()),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            store: Some(self.store.clone()),
            snapshot_at: self.snapshot_at.clone(),
            metrics: self.store.metrics.clone(),
            records: self.shared.snapshot_records.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data = decode_snapshot_data(&bytes).map_err(|e| io_snapshot_err(meta, e))?;
        let records = data.records.len() as u64;
        let app = A::load(&mut data.records.into_iter()).map_err(|e| io_snapshot_err(meta, e))?;

        // The snapshot becomes the persisted state: the file first, durably, then the applied
        // log id and membership beside an emptied journal. A crash between the two leaves a
        // snapshot newer than the applied id, which `open` prefers.
        let mut on_disk = self.snapshot_at.lock().await;
        let file = SnapshotFile {
            format: SNAPSHOT_FORMAT,
            meta: meta.clone(),
            data: bytes,
        };
        let path = self.snapshot_path();
        tokio::task::spawn_blocking(move || file.write(&path))
            .await
            .map_err(|e| io_snapshot_err(meta, e))?
            .map_err(|e| io_snapshot_err(meta, e))?;
        *on_disk = meta.last_log_id;
        drop(on_disk);

        let mut batch = sled::Batch::default();
        remove_journal(&self.store, 0..=u64::MAX, &mut batch)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        batch.insert(APPLIED, encode(&meta.last_log_id));
        batch.insert(MEMBERSHIP, encode(&meta.last_membership));
        self.store
            .sm
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.store
            .flush()
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?;

        {
            let mut current = self.shared.app.write();
            *current = app;
            self.shared.set_applied(meta.last_log_id);
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.shared
            .snapshot_records
            .store(records, Ordering::Relaxed);
        self.store.metrics.snapshots_installed.inc();
        tracing::info!(snapshot = %meta.snapshot_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let file = read_snapshot_file(&self.snapshot_path())
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(file.map(|f| Snapshot {
            meta: f.meta,
            snapshot: Box::new(Cursor::new(f.data)),
        }))
    }
}

/// Writes the state machine of a node restored from a backup: the records applied at `log_id`,
/// the one-member `membership`, and a snapshot of them (so the members added next can be sent
/// it, the log before `log_id` being gone). The store must be empty.
pub(crate) fn write_restored(
    store: &Store,
    log_id: LogId,
    membership: StoredMembership,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), StoreError> {
    let err = sled_err(&store.dir);
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: membership.clone(),
        snapshot_id: format!("restore-{}", log_id.index),
    };
    let path = store.dir.join(SNAPSHOT_FILE);
    SnapshotFile::new(meta, records)
        .write(&path)
        .map_err(|source| StoreError::SnapshotFile {
            path: path.display().to_string(),
            source,
        })?;
    // The folder is not a usable store until the applied log id is written, last.
    let mut batch = sled::Batch::default();
    batch.insert(LAYOUT, encode(&LAYOUT_JOURNAL));
    batch.insert(APPLIED, encode(&Some(log_id)));
    batch.insert(MEMBERSHIP, encode(&membership));
    store.sm.apply_batch(batch).map_err(&err)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::batch::encode_entry;
    use crate::types::AppRequest;
    use roomraft_replicated::LoadError;

    /// A key-value map: `Some(v)` sets the key, `None` deletes it.
    #[derive(Clone, Default, Debug, PartialEq)]
    struct Map(BTreeMap<Vec<u8>, Vec<u8>>);

    impl App for Map {
        type Command = (Vec<u8>, Option<Vec<u8>>);
        type Outcome = ();

        fn apply(&mut self, _: u64, (k, v): Self::Command, writes: &mut WriteSet) {
            match v {
                Some(v) => {
                    writes.put(k.clone(), v.clone());
                    self.0.insert(k, v);
                }
                None => {
                    writes.delete(k.clone());
                    self.0.remove(&k);
                }
            }
        }

        fn load(records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Self, LoadError> {
            Ok(Map(records.collect()))
        }

        fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.0.clone().into_iter().collect()
        }
    }

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    /// One entry per command, at the given indexes.
    fn entries(first: u64, commands: &[(&str, Option<&str>)]) -> Vec<Entry> {
        commands
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let cmd = (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()));
                Entry {
                    log_id: log_id(first + i as u64),
                    payload: EntryPayload::Normal(AppRequest(encode_entry(vec![
                        bincode::serialize(&cmd).unwrap(),
                    ]))),
                }
            })
            .collect()
    }

    fn open(dir: &Path) -> StateMachineStore<Map> {
        StateMachineStore::open(Store::open(dir).unwrap()).unwrap()
    }

    /// The map holding `pairs`.
    fn map(pairs: &[(&str, &str)]) -> Map {
        Map(pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect())
    }

    /// Applies `commands` from log index `first`, flushes, and opens the store again.
    async fn apply_and_reopen(
        mut sm: StateMachineStore<Map>,
        dir: &Path,
        first: u64,
        commands: &[(&str, Option<&str>)],
    ) -> StateMachineStore<Map> {
        sm.apply(entries(first, commands)).await.unwrap();
        sm.store.flush().await.unwrap();
        drop(sm);
        open(dir)
    }

    /// Writes a store as an older version, or a crash, left it: a snapshot at `snapshot_at`
    /// holding `snapshot`, the layout mark `layout`, plain (uncompressed) journal records, and
    /// the applied log id `applied`.
    async fn seed_store(
        dir: &Path,
        (snapshot_at, snapshot): (u64, &[(&str, &str)]),
        layout: u32,
        plain: &[(u64, JournalOps)],
        applied: u64,
    ) {
        let store = Store::open(dir).unwrap();
        let meta = SnapshotMeta {
            snapshot_id: format!("seeded-{snapshot_at}"),
            last_log_id: Some(log_id(snapshot_at)),
            last_membership: StoredMembership::default(),
        };
        let records = map(snapshot).0.into_iter().collect();
        SnapshotFile::new(meta, records)
            .write(&dir.join(SNAPSHOT_FILE))
            .unwrap();
        let mut batch = sled::Batch::default();
        batch.insert(LAYOUT, encode(&layout));
        for (index, ops) in plain {
            batch.insert(&journal_key(*index, 0), encode(ops));
        }
        batch.insert(APPLIED, encode(&Some(log_id(applied))));
        store.sm.apply_batch(batch).unwrap();
        store.flush().await.unwrap();
    }

    fn state(sm: &StateMachineStore<Map>) -> (u64, Map) {
        (sm.shared.applied_index(), sm.shared.app.read().clone())
    }

    fn journal_indexes(sm: &StateMachineStore<Map>) -> Vec<u64> {
        sm.store
            .sm
            .scan_prefix(JOURNAL_PREFIX)
            .keys()
            .map(|k| journal_index(&k.unwrap()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_reopened_state_machine_replays_its_journal_after_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        sm.apply(entries(1, &[("a", Some("1")), ("b", Some("2"))]))
            .await
            .unwrap();
        sm.apply(entries(3, &[("a", None), ("c", Some("3"))]))
            .await
            .unwrap();
        assert_eq!(
            journal_indexes(&sm),
            vec![2, 4],
            "one record per apply call"
        );
        let before = state(&sm);
        sm.store.flush().await.unwrap();
        drop(sm);

        let mut sm = open(dir.path());
        assert_eq!(state(&sm), before, "the journal alone rebuilds the state");
        assert_eq!(before.0, 4);

        // A snapshot becomes the base and drops the journal it covers.
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(journal_indexes(&sm), Vec::<u64>::new());
        sm.apply(entries(5, &[("b", Some("20")), ("d", Some("4"))]))
            .await
            .unwrap();
        let before = state(&sm);
        sm.store.flush().await.unwrap();
        drop(sm);

        let sm = open(dir.path());
        assert_eq!(state(&sm), before, "snapshot, then the journal after it");
        assert_eq!(before.1, map(&[("b", "20"), ("c", "3"), ("d", "4")]));
        assert_eq!(before.0, 6);
    }

    #[tokio::test]
    async fn a_large_apply_is_journalled_in_chunks_and_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        // Random hex compresses to about half: five commands of 6,000 characters in one call
        // (the first key written twice) make a record of several chunks.
        let noise = || -> String {
            (0..3000)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect()
        };
        let (big, more) = (noise(), noise());
        sm.apply(entries(
            1,
            &[
                ("a", Some(&big)),
                ("b", Some(&big)),
                ("a", Some(&more)),
                ("c", Some(&big)),
                ("b", None),
            ],
        ))
        .await
        .unwrap();
        let indexes = journal_indexes(&sm);
        assert!(indexes.len() > 1, "{indexes:?}: one chunk");
        assert!(indexes.iter().all(|&i| i == 5), "{indexes:?}");
        let before = state(&sm);
        sm.store.flush().await.unwrap();
        drop(sm);
        let sm = open(dir.path());
        assert_eq!(state(&sm), before);
        let keys: Vec<_> = before.1 .0.keys().cloned().collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(before.1 .0[&b"a".to_vec()], more.as_bytes());
    }

    #[tokio::test]
    async fn a_journal_record_beyond_the_applied_id_is_dropped_and_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let sm = open(dir.path());
        let mut sm = apply_and_reopen(sm, dir.path(), 1, &[("a", Some("1"))]).await;
        // As if the node crashed inside an apply call ending at index 4: its record's chunks
        // reached sled, the applied id that commits them did not.
        let torn = vec![(b"b".to_vec(), Some(b"torn".to_vec()))];
        let packed = pack_journal(&torn, &mut sm.compressor).unwrap();
        for (key, chunk) in journal_chunks(4, &packed) {
            sm.store.sm.insert(key, chunk).unwrap();
        }
        sm.store.flush().await.unwrap();
        drop(sm);

        let sm = open(dir.path());
        assert_eq!(state(&sm), (1, map(&[("a", "1")])));
        assert_eq!(journal_indexes(&sm), vec![1], "the torn record is gone");
        // openraft applies entries 2 to 5 again, in calls that need not end at index 4.
        let sm = apply_and_reopen(sm, dir.path(), 2, &[("c", Some("3")), ("d", Some("4"))]).await;
        let sm = apply_and_reopen(sm, dir.path(), 4, &[("e", Some("5")), ("f", Some("6"))]).await;
        assert_eq!(
            state(&sm),
            (
                5,
                map(&[("a", "1"), ("c", "3"), ("d", "4"), ("e", "5"), ("f", "6")])
            )
        );
    }

    #[tokio::test]
    async fn a_snapshot_newer_than_the_journal_wins_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        sm.apply(entries(1, &[("a", Some("1")), ("b", Some("2"))]))
            .await
            .unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let at_snapshot = state(&sm);
        // As if the node crashed with the snapshot on disk but sled's applied id and journal
        // still older: an older journal record, and the applied id before the snapshot.
        let mut batch = sled::Batch::default();
        let old = vec![(b"a".to_vec(), Some(b"old".to_vec()))];
        let packed = pack_journal(&old, &mut sm.compressor).unwrap();
        for (key, chunk) in journal_chunks(1, &packed) {
            batch.insert(&key, chunk);
        }
        batch.insert(APPLIED, encode(&Some(log_id(1))));
        sm.store.sm.apply_batch(batch).unwrap();
        sm.store.flush().await.unwrap();
        drop(sm);

        let sm = open(dir.path());
        assert_eq!(state(&sm), at_snapshot);
        assert_eq!(
            journal_indexes(&sm),
            Vec::<u64>::new(),
            "stale records dropped"
        );
    }

    #[tokio::test]
    async fn records_stored_before_the_journal_move_into_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout before the journal: every record under `a/`, no layout mark.
            let store = Store::open(dir.path()).unwrap();
            let mut batch = sled::Batch::default();
            for (k, v) in [("a", "1"), ("b", "2")] {
                batch.insert([APP_PREFIX, k.as_bytes()].concat(), v.as_bytes());
            }
            batch.insert(APPLIED, encode(&Some(log_id(7))));
            store.sm.apply_batch(batch).unwrap();
            store.flush().await.unwrap();
        }
        let mut sm = open(dir.path());
        assert_eq!(state(&sm), (7, map(&[("a", "1"), ("b", "2")])));
        assert_eq!(sm.store.sm.scan_prefix(APP_PREFIX).count(), 0);
        let snapshot = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(7)));

        let sm = apply_and_reopen(sm, dir.path(), 8, &[("c", Some("3"))]).await;
        assert_eq!(state(&sm), (8, map(&[("a", "1"), ("b", "2"), ("c", "3")])));
    }

    #[tokio::test]
    async fn a_plain_journal_moves_into_a_snapshot_and_the_journal_restarts_compressed() {
        let dir = tempfile::tempdir().unwrap();
        // The layout before compression: a snapshot at 2, then plain records at 3 and 5.
        let at3: JournalOps = vec![(b"a".to_vec(), None), (b"c".to_vec(), Some(b"3".to_vec()))];
        let at5: JournalOps = vec![(b"b".to_vec(), Some(b"5".to_vec()))];
        let snapshot: &[(&str, &str)] = &[("a", "1"), ("b", "2")];
        seed_store(
            dir.path(),
            (2, snapshot),
            LAYOUT_PLAIN_JOURNAL,
            &[(3, at3), (5, at5)],
            5,
        )
        .await;
        let mut sm = open(dir.path());
        assert_eq!(state(&sm), (5, map(&[("b", "5"), ("c", "3")])));
        assert_eq!(journal_indexes(&sm), Vec::<u64>::new());
        let layout: u32 = decode("layout", &sm.store.sm.get(LAYOUT).unwrap().unwrap()).unwrap();
        assert_eq!(layout, LAYOUT_JOURNAL);
        let snapshot = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(5)));

        let sm = apply_and_reopen(sm, dir.path(), 6, &[("d", Some("6"))]).await;
        assert_eq!(state(&sm), (6, map(&[("b", "5"), ("c", "3"), ("d", "6")])));
    }

    #[tokio::test]
    async fn a_move_interrupted_after_the_mark_drops_the_old_records_unread() {
        let dir = tempfile::tempdir().unwrap();
        // As a crash leaves it: the new snapshot at 5 and the layout mark written, the plain
        // records it replaced (undecodable in the new layout) not yet removed.
        let plain: JournalOps = vec![(b"c".to_vec(), Some(b"3".to_vec()))];
        let old = [(3, plain.clone()), (5, plain)];
        seed_store(dir.path(), (5, &[("c", "3")]), LAYOUT_JOURNAL, &old, 5).await;
        let sm = open(dir.path());
        assert_eq!(state(&sm), (5, map(&[("c", "3")])));
        assert_eq!(journal_indexes(&sm), Vec::<u64>::new());
        let sm = apply_and_reopen(sm, dir.path(), 6, &[("d", Some("6"))]).await;
        assert_eq!(state(&sm), (6, map(&[("c", "3"), ("d", "6")])));
    }

    #[tokio::test]
    async fn a_journal_record_that_does_not_decompress_stops_the_open_with_its_index() {
        let dir = tempfile::tempdir().unwrap();
        {
            let sm = open(dir.path());
            let mut batch = sled::Batch::default();
            batch.insert(&journal_key(7, 0), b"not zstd".as_slice());
            batch.insert(APPLIED, encode(&Some(log_id(7))));
            sm.store.sm.apply_batch(batch).unwrap();
            sm.store.flush().await.unwrap();
        }
        let err = StateMachineStore::<Map>::open(Store::open(dir.path()).unwrap())
            .err()
            .expect("a corrupt record is an error, not a skipped change");
        let text = err.to_string();
        assert!(text.contains("record 7 does not decompress"), "{text}");
    }
}
