//! The replicated state machine: an [`App`] held in memory, persisted in sled.
//!
//! Each apply batch writes the changed application records, the last applied log id and the
//! membership in one atomic sled batch. Snapshots are the application's records, written to
//! `snapshot.bin` (temp file, fsync, rename, fsync of the directory) before they are used.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use roomraft_ops::RaftMetrics;

use crate::app::{App, WriteSet};
use crate::batch::decode_entry;
use crate::error::StoreError;
use crate::store::{decode, encode, sled_err, Store};
use crate::types::{
    AppResponse, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const APP_PREFIX: &[u8] = b"a/";
const APPLIED: &[u8] = b"m/applied";
const MEMBERSHIP: &[u8] = b"m/membership";
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
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    format: u32,
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    format: u32,
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

fn app_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(APP_PREFIX.len() + key.len());
    k.extend_from_slice(APP_PREFIX);
    k.extend_from_slice(key);
    k
}

impl<A: App> StateMachineStore<A> {
    /// Opens the state machine persisted in `store`, loading the application records.
    pub fn open(store: Store) -> Result<Self, StoreError> {
        let dir = store.dir.clone();
        let err = sled_err(&dir);
        let last_applied = match store.sm.get(APPLIED).map_err(&err)? {
            Some(v) => decode("applied log id", &v)?,
            None => None,
        };
        let membership = match store.sm.get(MEMBERSHIP).map_err(&err)? {
            Some(v) => decode("membership", &v)?,
            None => StoredMembership::default(),
        };
        let mut failure = None;
        let mut loaded = 0u64;
        let mut records = store
            .sm
            .scan_prefix(APP_PREFIX)
            .filter_map(|item| match item {
                Ok((k, v)) => Some((k[APP_PREFIX.len()..].to_vec(), v.to_vec())),
                Err(e) => {
                    failure.get_or_insert(e);
                    None
                }
            })
            .inspect(|_| loaded += 1);
        let app = A::load(&mut records).map_err(|e| StoreError::Corrupt {
            what: "application record",
            reason: e.to_string(),
        })?;
        drop(records);
        if let Some(e) = failure {
            return Err(err(e));
        }
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
        })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.store.dir.join(SNAPSHOT_FILE)
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
}

/// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_durably_with(path, |w| w.write_all(bytes))
}

/// As [`write_durably`], with the contents written by `write`.
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
    dir: PathBuf,
    metrics: Arc<RaftMetrics>,
    records: Arc<AtomicU64>,
}

impl<A: App> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let app = self.app.take().ok_or_else(|| {
            StorageIOError::read_state_machine(&StoreError::Corrupt {
                what: "snapshot builder",
                reason: "a builder builds one snapshot".into(),
            })
        })?;
        let (data, records) = tokio::task::spawn_blocking(move || {
            let records = app.records();
            let n = records.len() as u64;
            let data = encode(&SnapshotData {
                format: SNAPSHOT_FORMAT,
                records,
            });
            (data, n)
        })
        .await
        .map_err(|e| StorageIOError::read_state_machine(&e))?;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, rand::random::<u32>()),
            None => format!("0-0-{}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let file = SnapshotFile {
            format: SNAPSHOT_FORMAT,
            meta: meta.clone(),
            data,
        };
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = encode(&file);
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| io_snapshot_err(&meta, e))?
            .map_err(|e| io_snapshot_err(&meta, e))?;
        self.metrics.snapshot_builds.inc();
        self.records.store(records, Ordering::Relaxed);
        tracing::info!(snapshot = %meta.snapshot_id, bytes = file.data.len(), records, "snapshot built");
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
                        responses.push(AppResponse(encode(&outcomes)));
                    }
                }
            }
            self.shared.set_applied(self.last_applied);
        }
        let mut batch = sled::Batch::default();
        for (k, v) in writes.ops {
            match v {
                Some(v) => batch.insert(app_key(&k), v),
                None => batch.remove(app_key(&k)),
            }
        }
        batch.insert(APPLIED, encode(&self.last_applied));
        if membership_changed {
            batch.insert(MEMBERSHIP, encode(&self.membership));
        }
        self.store
            .sm
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        timer.observe_duration();
        self.store.metrics.entries_applied.inc_by(applied);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Make the persisted state machine at least as new as the snapshot, so that purging the
        // log behind the snapshot can never leave a restarted node without entries to replay.
        if let Err(e) = self.store.db.flush_async().await {
            tracing::error!(error = %e, "flush before snapshot failed");
        }
        SnapshotBuilder {
            app: Some(self.shared.app.read().clone()),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            dir: self.store.dir.clone(),
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
        let data: SnapshotData =
            decode("snapshot data", &bytes).map_err(|e| io_snapshot_err(meta, e))?;
        if data.format != SNAPSHOT_FORMAT {
            let e = StoreError::Corrupt {
                what: "snapshot data",
                reason: format!("unknown format {}", data.format),
            };
            return Err(io_snapshot_err(meta, e));
        }
        let app =
            A::load(&mut data.records.iter().cloned()).map_err(|e| io_snapshot_err(meta, e))?;
        let records = data.records.len() as u64;

        // Keep the received snapshot first, so it can be served onwards and survives a crash.
        let file = SnapshotFile {
            format: SNAPSHOT_FORMAT,
            meta: meta.clone(),
            data: bytes,
        };
        let path = self.snapshot_path();
        let file_bytes = encode(&file);
        tokio::task::spawn_blocking(move || write_durably(&path, &file_bytes))
            .await
            .map_err(|e| io_snapshot_err(meta, e))?
            .map_err(|e| io_snapshot_err(meta, e))?;

        // Replace the state machine in one atomic batch.
        let mut batch = sled::Batch::default();
        for item in self.store.sm.scan_prefix(APP_PREFIX).keys() {
            batch.remove(item.map_err(|e| StorageIOError::write_state_machine(&e))?);
        }
        for (k, v) in data.records {
            batch.insert(app_key(&k), v);
        }
        batch.insert(APPLIED, encode(&meta.last_log_id));
        batch.insert(MEMBERSHIP, encode(&meta.last_membership));
        self.store
            .sm
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.store
            .db
            .flush_async()
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
        let file = Self::read_snapshot_file(&self.snapshot_path())
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
    // In bounded batches: one batch of millions of records needs several times their size in
    // memory. The folder is not a usable store until the applied log id is written, last.
    for chunk in records.chunks(10_000) {
        let mut batch = sled::Batch::default();
        for (k, v) in chunk {
            batch.insert(app_key(k), v.as_slice());
        }
        store.sm.apply_batch(batch).map_err(&err)?;
    }
    let mut batch = sled::Batch::default();
    batch.insert(APPLIED, encode(&Some(log_id)));
    batch.insert(MEMBERSHIP, encode(&membership));
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: membership,
        snapshot_id: format!("restore-{}", log_id.index),
    };
    let file = SnapshotFile {
        format: SNAPSHOT_FORMAT,
        meta,
        data: encode(&SnapshotData {
            format: SNAPSHOT_FORMAT,
            records,
        }),
    };
    let path = store.dir.join(SNAPSHOT_FILE);
    // Streamed to the file: the snapshot is as large as the state.
    write_durably_with(&path, |w| {
        bincode::serialize_into(w, &file).map_err(std::io::Error::other)
    })
    .map_err(|source| StoreError::SnapshotFile {
        path: path.display().to_string(),
        source,
    })?;
    store.sm.apply_batch(batch).map_err(&err)
}
