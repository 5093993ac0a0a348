//! The sled database behind a small interface: one database per node, a tree per concern.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use roomraft_ops::RaftMetrics;

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
        Ok(Self {
            db,
            log,
            raft_meta,
            sm,
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

    /// Flushes every tree to disk.
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

    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await.map_err(sled_err(&self.dir))?;
        Ok(())
    }
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
