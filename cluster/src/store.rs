//! The sled database behind a small interface: one database per node, a tree per concern.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::metrics::RaftMetrics;

use crate::error::StoreError;

/// One node's on-disk state: the Raft log, Raft metadata and the state machine.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    /// Log entries keyed by big-endian index.
    pub(crate) log: sled::Tree,
    /// Vote, committed pointer, last purged log id.
    pub(crate) raft_meta: sled::Tree,
    /// Application records (`a/` prefix) and the applied log id and membership (`m/` prefix).
    pub(crate) sm: sled::Tree,
    pub(crate) dir: PathBuf,
    /// Storage and Raft metrics (fsync and apply durations, snapshots).
    pub(crate) metrics: Arc<RaftMetrics>,
    /// What turns sled's flush into an fsync (see [`Durable`]).
    durable: Arc<Durable>,
    /// Background tasks that hold the database. Shutdown ends them, so the files (and sled's
    /// lock) are released when `Cluster::shutdown` returns.
    background: Arc<Mutex<Background>>,
}

#[derive(Default)]
struct Background {
    /// Finite work (log deletion behind a purge): awaited.
    finite: Vec<JoinHandle<()>>,
    /// Work that runs for the store's life (the group-commit flusher): aborted.
    endless: Vec<JoinHandle<()>>,
}

pub(crate) fn sled_err(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |source| StoreError::Sled {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_observed(dir, RaftMetrics::detached())
    }

    /// Opens the store, recording its fsyncs, applies and snapshots in `metrics`.
    pub fn open_observed(dir: &Path, metrics: Arc<RaftMetrics>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::SnapshotFile {
            path: dir.display().to_string(),
            source,
        })?;
        let db_path = dir.join("db");
        let err = sled_err(&db_path);
        let db = open_db(&db_path).map_err(&err)?;
        let log = db.open_tree("log").map_err(&err)?;
        let raft_meta = db.open_tree("raft_meta").map_err(&err)?;
        let sm = db.open_tree("sm").map_err(&err)?;
        let durable = Durable::open(&db_path).map_err(|source| StoreError::Sync {
            path: db_path.display().to_string(),
            source,
        })?;
        Ok(Self {
            db,
            log,
            raft_meta,
            sm,
            durable: Arc::new(durable),
            background: Arc::default(),
            dir: dir.to_path_buf(),
            metrics,
        })
    }

    /// Whether this store has never been part of a cluster (no vote, no log).
    pub fn is_fresh(&self) -> Result<bool, StoreError> {
        let err = sled_err(&self.dir);
        Ok(self.raft_meta.get(b"vote").map_err(&err)?.is_none() && self.log.is_empty())
    }

    /// Tracks finite background work that uses the database.
    pub(crate) fn track(&self, task: JoinHandle<()>) {
        let mut b = self.background.lock();
        b.finite.retain(|t| !t.is_finished());
        b.finite.push(task);
    }

    /// Tracks a task that runs until the store stops.
    pub(crate) fn track_endless(&self, task: JoinHandle<()>) {
        self.background.lock().endless.push(task);
    }

    /// Ends background work: waits for finite tasks, aborts endless ones, and waits for both.
    pub async fn stop_background(&self) {
        let b = std::mem::take(&mut *self.background.lock());
        for t in &b.endless {
            t.abort();
        }
        for t in b.finite.into_iter().chain(b.endless) {
            let _ = t.await;
        }
    }

    /// Makes every write made to sled so far durable: sled's flush, then an fsync of what it
    /// wrote (see [`Durable`]). Runs on a blocking thread.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush_blocking())
            .await
            .map_err(|e| StoreError::Sync {
                path: self.dir.display().to_string(),
                source: std::io::Error::other(e),
            })?
    }

    /// [`Store::flush`] for callers that are already on a blocking thread.
    pub(crate) fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(sled_err(&self.dir))?;
        self.durable.sync().map_err(|source| StoreError::Sync {
            path: self.durable.dir.display().to_string(),
            source,
        })
    }
}

/// The fsyncs sled 0.34 leaves out. On Linux its flush writes the log buffer with `pwrite` and
/// ends with `sync_file_range`, which neither commits the file's metadata (its new length, when
/// the log grew) nor flushes the disk's write cache; and values over a quarter of a segment
/// (128 KiB) go to blob files that it writes and never syncs. After a power loss either can lose
/// an entry, or a vote, that openraft was told was durable. So every flush that openraft relies on
/// is followed by this: fsync each blob file not yet synced, the blob directory when there were
/// any, then `fdatasync` of sled's log file.
struct Durable {
    dir: PathBuf,
    log_file: File,
    /// Blob files already synced (sled names them by log sequence number). Pruned to the files
    /// present, so it stays as small as the blob directory.
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
}

impl Durable {
    /// Opens sled's files in `dir` (sled has created them) and makes their names durable.
    fn open(dir: &Path) -> std::io::Result<Self> {
        let log_file = File::open(dir.join("db"))?;
        let durable = Self {
            dir: dir.to_path_buf(),
            log_file,
            synced_blobs: Mutex::default(),
        };
        durable.sync()?;
        // A fresh store's files exist only once their directory entries are on disk too.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(durable)
    }

    fn sync(&self) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        {
            let mut synced = self.synced_blobs.lock();
            let mut present = HashSet::with_capacity(synced.len());
            let mut new = 0;
            match std::fs::read_dir(&blobs) {
                Ok(entries) => {
                    for entry in entries {
                        let name = entry?.file_name();
                        if !synced.contains(&name) {
                            match File::open(blobs.join(&name)) {
                                Ok(f) => f.sync_all()?,
                                // Removed by sled's blob collection since it was listed.
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                                Err(e) => return Err(e),
                            }
                            new += 1;
                        }
                        present.insert(name);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if new > 0 {
                sync_dir(&blobs)?;
            }
            *synced = present;
        }
        self.log_file.sync_data()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("bincode serialization of in-memory values cannot fail")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    bincode::deserialize(bytes).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// Opens sled, waiting briefly for the lock a just-closed handle in this process may still hold.
fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            // Every flush that matters is explicit (log appends, vote, snapshots); sled's own
            // timer would only add fsyncs that compete with the group commit.
            .flush_every_ms(None)
            .open()
        {
            // sled reports the lock held as `ErrorKind::Other` with this message.
            Err(sled::Error::Io(e))
                if (e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().starts_with("could not acquire lock"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flush_syncs_the_blob_files_sled_writes_for_large_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Over a quarter of sled's 512 KiB segment: sled writes it as a blob file.
        let large = vec![7u8; 300 << 10];
        store.log.insert(b"large", large.clone()).unwrap();
        store.flush().await.unwrap();

        let blobs: HashSet<_> = std::fs::read_dir(dir.path().join("db").join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !blobs.is_empty(),
            "sled wrote no blob file for a 300 KiB value"
        );
        assert_eq!(*store.durable.synced_blobs.lock(), blobs);

        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.log.get(b"large").unwrap().unwrap(), large);
    }
}
