//! The Raft log on sled. Every mutation is flushed to disk before openraft hears it is done.
//!
//! Appends are group-committed: `append` writes the entries to sled and hands openraft's
//! completion callback to one flusher task, which flushes once for every callback waiting and only
//! then reports them done. openraft's core can meanwhile accept more proposals, so one fsync covers
//! many entries under load, and nothing is acknowledged before it is on disk.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};

use crate::error::StoreError;
use crate::store::{decode, encode, Store};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

pub(crate) const VOTE: &[u8] = b"vote";
pub(crate) const COMMITTED: &[u8] = b"committed";
pub(crate) const LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log, vote and committed pointer, in sled.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    /// The group-commit flusher, started by the first append (it needs a runtime).
    flusher: Arc<OnceLock<mpsc::UnboundedSender<LogFlushed<TypeConfig>>>>,
    /// One past the purged index (0: nothing purged). Entries at or below the purge point may
    /// still be in sled while the background deletion runs; readers never see them.
    first_live: Arc<AtomicU64>,
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            flusher: Arc::new(OnceLock::new()),
            first_live: Arc::new(AtomicU64::new(0)),
        }
    }

    fn flusher(&self) -> &mpsc::UnboundedSender<LogFlushed<TypeConfig>> {
        self.flusher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(group_commit(self.store.clone(), rx));
            self.store.track_endless(task);
            tx
        })
    }

    // openraft's storage traits return its `StorageError`; this helper hands it on unchanged.
    #[allow(clippy::result_large_err)]
    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self
            .store
            .raft_meta
            .get(key)
            .map_err(|e| StorageIOError::read(&e))?
        {
            None => Ok(None),
            Some(v) => Ok(Some(
                decode("raft metadata", &v).map_err(|e| StorageIOError::read(&e))?,
            )),
        }
    }

    async fn flush(
        &self,
        on_err: fn(&StoreError) -> StorageIOError<u64>,
    ) -> Result<(), StorageError> {
        let timer = self.store.metrics.log_fsync_seconds.start_timer();
        self.store.flush().await.map_err(|e| on_err(&e))?;
        timer.observe_duration();
        Ok(())
    }
}

fn io_result(flushed: &Result<(), StoreError>) -> Result<(), std::io::Error> {
    flushed
        .as_ref()
        .map(|_| ())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Flushes sled once for every batch of waiting appends, then completes their callbacks.
/// An append's entries were written before its callback was queued, so the flush covers them.
async fn group_commit(store: Store, mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>) {
    let mut waiting = Vec::new();
    while rx.recv_many(&mut waiting, 4096).await > 0 {
        let timer = store.metrics.log_fsync_seconds.start_timer();
        let flushed = store.flush().await;
        timer.observe_duration();
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "flushing the Raft log failed");
        }
        for callback in waiting.drain(..) {
            callback.log_io_completed(io_result(&flushed));
        }
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn bound_key(b: Bound<&u64>) -> Bound<[u8; 8]> {
    match b {
        Bound::Included(i) => Bound::Included(key(*i)),
        Bound::Excluded(i) => Bound::Excluded(key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let first_live = self.first_live.load(Ordering::Acquire);
        let start = match range.start_bound() {
            Bound::Included(i) if *i >= first_live => Bound::Included(key(*i)),
            Bound::Excluded(i) if *i >= first_live => Bound::Excluded(key(*i)),
            _ => Bound::Included(key(first_live)),
        };
        let mut entries = Vec::new();
        for item in self
            .store
            .log
            .range::<[u8; 8], _>((start, bound_key(range.end_bound())))
        {
            let (_, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            entries
                .push(decode::<Entry>("log entry", &v).map_err(|e| StorageIOError::read_logs(&e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.meta(LAST_PURGED)?;
        if let Some(p) = last_purged_log_id {
            self.first_live.fetch_max(p.index + 1, Ordering::AcqRel);
        }
        let last = match self
            .store
            .log
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
        {
            Some((_, v)) => Some(
                decode::<Entry>("log entry", &v)
                    .map_err(|e| StorageIOError::read_logs(&e))?
                    .log_id,
            ),
            None => None,
        };
        // Entries below the purge point may linger until the background deletion ends.
        let last_log_id = match (last, last_purged_log_id) {
            (Some(l), Some(p)) if l.index <= p.index => Some(p),
            (l, p) => l.or(p),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store
            .raft_meta
            .insert(VOTE, encode(vote))
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.flush(|e| StorageIOError::write_vote(e)).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on purpose: a committed pointer that is lost is learned again from the leader.
        self.store
            .raft_meta
            .insert(COMMITTED, encode(&committed))
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // One insert per entry, in index order, not a sled batch: sled recovers a prefix of its
        // writes, so a crash leaves a prefix of these entries (and none is reported durable
        // before the flush), while every `apply_batch` makes sled write and sync its I/O buffer
        // twice on its thread pool.
        for entry in entries {
            self.store
                .log
                .insert(key(entry.log_id.index), encode(&entry))
                .map_err(|e| StorageIOError::write_logs(&e))?;
        }
        // The entries are in sled (visible to readers); the flusher reports them once on disk.
        if let Err(mpsc::error::SendError(callback)) = self.flusher().send(callback) {
            // The flusher only ends when every sender is gone, which cannot be while `self` lives;
            // flush here rather than ever acknowledge an unflushed entry.
            let flushed = self.store.flush().await;
            callback.log_io_completed(io_result(&flushed));
            flushed.map_err(|e| StorageIOError::write_logs(&e))?;
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.store.log.range(key(log_id.index)..) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.store
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush(|e| StorageIOError::write_logs(e)).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The durable purge point is what makes the purge: openraft never reads below it, and
        // `get_log_state` reports it. Deleting the entries themselves can then happen in the
        // background, so a purge of thousands of entries never stalls the Raft core (and with it
        // heartbeats and appends). A crash before the deletion finishes leaves dead entries below
        // the purge point, which the next purge deletes; it can never leave a gap.
        self.store
            .raft_meta
            .insert(LAST_PURGED, encode(&log_id))
            .map_err(|e| StorageIOError::write(&e))?;
        self.flush(|e| StorageIOError::write(e)).await?;
        self.first_live
            .fetch_max(log_id.index + 1, Ordering::AcqRel);
        let log = self.store.log.clone();
        let upto = log_id.index;
        let task = tokio::task::spawn_blocking(move || {
            if let Err(e) = delete_upto(&log, upto) {
                tracing::warn!(upto, error = %e, "deleting purged log entries failed; the next purge retries");
            }
        });
        self.store.track(task);
        Ok(())
    }
}

/// Deletes the log entries at and below `upto`, a bounded batch at a time.
fn delete_upto(log: &sled::Tree, upto: u64) -> sled::Result<()> {
    const CHUNK: usize = 1_000;
    loop {
        let keys: Vec<_> = log
            .range(..=key(upto))
            .keys()
            .take(CHUNK)
            .collect::<sled::Result<_>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        log.apply_batch(batch)?;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn entries_left_below_the_purge_point_are_never_read_and_are_deleted_later() {
        let dir = tempfile::tempdir().unwrap();
        // A crash after the purge point was recorded, before the entries were deleted.
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 1..=10 {
                store.log.insert(key(i), encode(&entry(i))).unwrap();
            }
            store
                .raft_meta
                .insert(LAST_PURGED, encode(&entry(6).log_id))
                .unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let mut log = LogStore::new(store.clone());
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(6));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(10));
        assert_eq!(
            indexes(&log.try_get_log_entries(..).await.unwrap()),
            vec![7, 8, 9, 10]
        );
        assert_eq!(
            indexes(&log.try_get_log_entries(2..8).await.unwrap()),
            vec![7]
        );

        // Purging past every entry (as after installing a snapshot) leaves the purge point as the
        // last log id, even while the old entries are still being deleted.
        log.purge(entry(12).log_id).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(12));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(12));
        assert!(log.try_get_log_entries(..).await.unwrap().is_empty());

        let deadline = Instant::now() + Duration::from_secs(10);
        while !store.log.is_empty() {
            assert!(
                Instant::now() < deadline,
                "purged entries were not deleted in the background"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
