//! Backups on a node: the `[backup]` config, taking a backup from the replicated state, and the
//! schedule that only the leader runs.
//!
//! Scheduled backups are claimed through Raft before they are taken: the leader of term T
//! proposes `ClaimBackup { slot, node, term }`, and only a granted claim is acted on. A slot is
//! done once `BackupDone` is committed, so a new leader carries on with the next slot (or
//! retakes the current one if its taker died first) and no slot is backed up twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use roomraft_backup::{
    backup_id, prune, verify, write_backup, BackupError, Destination, Keyring, Manifest, S3Options,
    Source, Trigger,
};
use roomraft_cluster::{Cluster, ClusterError, Consistency};
use roomraft_ops::Metrics;
use serde::{Deserialize, Serialize};

use crate::domain::system::{ClaimBackup, MarkBackupDone, SetClusterIdentity};
use crate::domain::{
    Actor, BackupDone, Bookings, ClusterIdentity, Command, LogCommand, Outcome, Rejection, Request,
    Role,
};

/// The `[backup]` section of `node.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// A folder (`/var/backups/roomraft`) or `s3://bucket/prefix`.
    pub destination: String,
    /// The master key that encrypts new backups (`roomraft backup keygen` writes one).
    pub key_file: PathBuf,
    /// Retired keys still needed to read older backups.
    #[serde(default)]
    pub old_key_files: Vec<PathBuf>,
    /// Seconds between scheduled backups (one per slot of this length, aligned to UTC).
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// Backups older than this are pruned (the newest that verifies is always kept).
    #[serde(default = "default_retention")]
    pub retention_days: u64,
    /// Take scheduled backups (when false, only `roomraft backup now`).
    #[serde(default = "yes")]
    pub schedule: bool,
    /// S3 settings for an `s3://` destination; unset ones come from `AWS_*` variables.
    #[serde(default)]
    pub s3: S3Options,
}

fn default_interval() -> u64 {
    3600
}
fn default_retention() -> u64 {
    61
}
fn yes() -> bool {
    true
}

impl BackupConfig {
    /// A config for `destination` and `key_file` with every default.
    pub fn new(destination: impl Into<String>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            destination: destination.into(),
            key_file: key_file.into(),
            old_key_files: Vec::new(),
            interval_seconds: default_interval(),
            retention_days: default_retention(),
            schedule: true,
            s3: S3Options::default(),
        }
    }

    pub fn retention(&self) -> SignedDuration {
        SignedDuration::from_hours(self.retention_days as i64 * 24)
    }

    /// Checks the values and opens the destination and keys.
    pub fn open(&self) -> anyhow::Result<Backups> {
        if self.interval_seconds < 1 {
            anyhow::bail!("[backup] interval_seconds must be at least 1");
        }
        if self.retention_days < 1 {
            anyhow::bail!("[backup] retention_days must be at least 1");
        }
        let keys = Keyring::load(&self.key_file, &self.old_key_files)?;
        let dest = Destination::open(&self.destination, &self.s3)?;
        Ok(Backups {
            config: self.clone(),
            dest,
            keys,
            one_at_a_time: tokio::sync::Mutex::new(()),
        })
    }
}

/// A node's backup destination and keys.
pub struct Backups {
    pub config: BackupConfig,
    pub dest: Destination,
    pub keys: Keyring,
    /// One backup at a time per node keeps memory bounded.
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// Where a backup failed, for the failure counter's `stage` label.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Snapshot,
    Upload,
    Verify,
    Record,
    Prune,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Snapshot => "snapshot",
            Stage::Upload => "upload",
            Stage::Verify => "verify",
            Stage::Record => "record",
            Stage::Prune => "prune",
        }
    }
}

/// A backup that failed, and where.
#[derive(Debug, thiserror::Error)]
#[error("backup failed at {}: {message}", .stage.label())]
pub struct Failed {
    pub stage: Stage,
    pub message: String,
}

fn failed(stage: Stage, e: impl std::fmt::Display) -> Failed {
    Failed {
        stage,
        message: e.to_string(),
    }
}

/// The identity the cluster itself acts under.
pub(crate) fn system_actor(node: u64) -> Actor {
    Actor {
        tenant: None,
        role: Role::Operator,
        name: format!("node:{node}"),
        user: None,
    }
}

/// Replicates a command the cluster makes itself: its reply, or the rejection apply gave. An
/// outcome of another kind is a bug, said as a codec error.
pub(crate) async fn propose<C: Request>(
    cluster: &Cluster<Bookings>,
    command: C,
) -> Result<Result<C::Reply, Rejection>, ClusterError> {
    let cmd = LogCommand::current(Command {
        time: Timestamp::now(),
        actor: system_actor(cluster.id()),
        request_key: format!("sys/{:032x}", rand::random::<u128>()),
        op: command.into(),
    });
    match C::reply(cluster.write(&cmd).await?.1) {
        Ok(reply) => Ok(Ok(reply)),
        Err(Outcome::Rejected(r)) => Ok(Err(r)),
        Err(other) => Err(ClusterError::Codec {
            what: "outcome",
            reason: format!("unexpected {other:?}"),
        }),
    }
}

/// The cluster's identity, named now if it has none yet.
pub async fn ensure_identity(cluster: &Cluster<Bookings>) -> Result<ClusterIdentity, ClusterError> {
    if let Some(i) = cluster.read_local(|b| b.identity().cloned()) {
        return Ok(i);
    }
    let id = format!("rr-{:012x}", rand::random::<u64>() >> 16);
    propose(cluster, SetClusterIdentity { id })
        .await?
        .map_err(|r| ClusterError::Codec {
            what: "outcome",
            reason: format!("unexpected Rejected({r:?})"),
        })
}

impl Backups {
    /// Takes a backup of the state as of now (every acknowledged write included), writes it,
    /// then reads it back and checks it end to end.
    pub async fn take(
        &self,
        cluster: &Cluster<Bookings>,
        metrics: &Metrics,
        id: &str,
        trigger: Trigger,
    ) -> Result<Manifest, Failed> {
        let _one = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let result = self.take_unlocked(cluster, id, trigger).await;
        let m = &metrics.backup;
        match &result {
            Ok(manifest) => {
                m.duration_seconds.observe(started.elapsed().as_secs_f64());
                m.last_size_bytes.set(manifest.archive_bytes as i64);
                m.taken
                    .with_label_values(&[match trigger {
                        Trigger::Scheduled => "scheduled",
                        Trigger::Manual => "manual",
                    }])
                    .inc();
            }
            Err(e) => {
                m.failures.with_label_values(&[e.stage.label()]).inc();
                tracing::error!(backup = %id, error = %e, destination = %self.dest, "backup failed");
            }
        }
        result
    }

    async fn take_unlocked(
        &self,
        cluster: &Cluster<Bookings>,
        id: &str,
        trigger: Trigger,
    ) -> Result<Manifest, Failed> {
        let identity = ensure_identity(cluster)
            .await
            .map_err(|e| failed(Stage::Snapshot, e))?;
        let state = cluster
            .backup_state(Consistency::Linearizable)
            .await
            .map_err(|e| failed(Stage::Snapshot, e))?;
        let source = Source {
            cluster_id: identity.id,
            index: state.index,
            term: state.term,
            state_sha256: state.sha256,
            records: state.records,
        };
        let manifest = write_backup(
            &self.dest,
            &self.keys,
            source,
            id,
            trigger,
            Timestamp::now(),
            None,
        )
        .await
        .map_err(|e| failed(Stage::Upload, e))?;
        verify(&self.dest, &self.keys, id)
            .await
            .map_err(|e| failed(Stage::Verify, e))?;
        Ok(manifest)
    }

    /// Prunes past retention; `verified` was just checked and is not read again.
    pub async fn prune(&self, verified: Option<&str>) -> Result<(), BackupError> {
        let report = prune(
            &self.dest,
            &self.keys,
            self.config.retention(),
            Timestamp::now(),
            verified,
        )
        .await?;
        if !report.deleted.is_empty() || !report.orphans_deleted.is_empty() {
            tracing::info!(deleted = ?report.deleted, orphans = ?report.orphans_deleted, "backups pruned");
        }
        Ok(())
    }
}

/// The start of the slot of length `interval` that holds `now` (slots are aligned to the Unix
/// epoch, so hourly slots start on the hour, UTC).
pub fn slot_start(now: Timestamp, interval: Duration) -> Timestamp {
    let len = interval.as_secs().max(1) as i64;
    let s = now.as_second().div_euclid(len) * len;
    Timestamp::from_second(s).expect("a slot start lies within the range of its time")
}

/// Runs the backup schedule until the task is aborted. Every node keeps the last-success gauge
/// current from the replicated state; only the leader takes backups.
pub async fn run_schedule(
    cluster: Cluster<Bookings>,
    backups: Arc<Backups>,
    metrics: Arc<Metrics>,
) {
    let interval = Duration::from_secs(backups.config.interval_seconds);
    let tick = (interval / 8).clamp(Duration::from_millis(200), Duration::from_secs(30));
    let mut backoff = tick;
    let mut next_try = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if let Some(done) = cluster.read_local(|b| b.last_backup().cloned()) {
            metrics
                .backup
                .last_success_timestamp_seconds
                .set(done.finished.as_second());
        }
        let (leader, term) = {
            let m = cluster.raft().metrics().borrow().clone();
            (m.current_leader == Some(cluster.id()), m.current_term)
        };
        if !leader || !backups.config.schedule || tokio::time::Instant::now() < next_try {
            continue;
        }
        match scheduled_once(&cluster, &backups, &metrics, interval, term).await {
            Ok(()) => backoff = tick,
            Err(e) => {
                // The next attempt waits longer, up to five minutes, so a broken destination
                // is not hammered.
                tracing::warn!(error = %e, retry_in = ?backoff, "scheduled backup not taken");
                next_try = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}

async fn scheduled_once(
    cluster: &Cluster<Bookings>,
    backups: &Backups,
    metrics: &Metrics,
    interval: Duration,
    term: u64,
) -> Result<(), Failed> {
    let slot = slot_start(Timestamp::now(), interval);
    let known = cluster
        .read(Consistency::Linearizable, |b| b.backup_slot(slot).cloned())
        .await
        .map_err(|e| failed(Stage::Snapshot, e))?;
    if known.as_ref().is_some_and(|b| b.done.is_some()) {
        return Ok(());
    }
    let claim = ClaimBackup {
        slot,
        node: cluster.id(),
        term,
    };
    match propose(cluster, claim).await {
        Ok(Ok(true)) => {}
        Ok(_) => return Ok(()),
        Err(e) => return Err(failed(Stage::Snapshot, e)),
    }
    let id = backup_id(slot, Trigger::Scheduled);
    let manifest = backups
        .take(cluster, metrics, &id, Trigger::Scheduled)
        .await?;
    let done = BackupDone {
        id: manifest.id.clone(),
        index: manifest.index,
        archive_bytes: manifest.archive_bytes,
        finished: Timestamp::now(),
    };
    if let Err(e) = propose(cluster, MarkBackupDone { slot, done }).await {
        metrics.backup.failures.with_label_values(&["record"]).inc();
        return Err(failed(Stage::Record, e));
    }
    if let Err(e) = backups.prune(Some(&manifest.id)).await {
        metrics.backup.failures.with_label_values(&["prune"]).inc();
        tracing::warn!(error = %e, "pruning backups failed; the next scheduled backup tries again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_align_to_the_interval_in_utc() {
        let t: Timestamp = "2026-11-23T14:37:12Z".parse().unwrap();
        assert_eq!(
            slot_start(t, Duration::from_secs(3600)).to_string(),
            "2026-11-23T14:00:00Z"
        );
        assert_eq!(
            slot_start(t, Duration::from_secs(900)).to_string(),
            "2026-11-23T14:30:00Z"
        );
        assert_eq!(
            slot_start(t, Duration::from_secs(86400)).to_string(),
            "2026-11-23T00:00:00Z"
        );
    }
}
