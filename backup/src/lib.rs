//! Roomraft backups.
//!
//! A backup is a consistent copy of the whole replicated state at one Raft log index: the
//! records, compressed with zstd, then encrypted with AES-256-GCM in the STREAM construction
//! under a data key derived per backup (HKDF-SHA256) from a 256-bit master key. An encrypted
//! manifest beside it records what it is. Backups go to a local folder or S3-compatible storage
//! and are pruned by age, never deleting the newest one that verifies. docs/backup-format.md
//! describes the format; docs/disaster-recovery.md the restore.

mod archive;
pub mod crypto;
mod destination;
mod keys;

pub use archive::{
    backup_id, choose, list, plan_prune, prune, read_backup, verify, write_backup, BodyHeader,
    Listed, Manifest, Progress, PruneReport, Source, Trigger,
};
pub use destination::{Destination, S3Options};
pub use keys::{Keyring, MasterKey};

/// Everything that can go wrong with a backup, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Roomraft backup (it does not start with the RRBACKUP magic)")]
    NotABackup,
    #[error("backup format version {0} is not supported: this roomraft reads version {v}; use the release that wrote it", v = crypto::FORMAT_VERSION)]
    UnsupportedVersion(u16),
    #[error("the backup was encrypted with key {0}, which is not in the keyring: add its key file (backup.old_key_files or --key-file)")]
    UnknownKey(String),
    #[error(
        "wrong key: the key file for {0} does not hold the key this backup was encrypted with"
    )]
    WrongKey(String),
    #[error(
        "the backup is truncated: it ends after {segments} segment(s) without its final segment"
    )]
    Truncated { segments: u32 },
    #[error("the backup is corrupt or was tampered with: segment {segment} fails authentication")]
    Tampered { segment: u32 },
    #[error("backup {id} fails its checksum: the manifest says SHA-256 {expected}, the archive gives {actual}")]
    Checksum {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("malformed backup: {0}")]
    Malformed(String),
    #[error("no backup found: {0}")]
    NotFound(String),
    #[error(
        "none of the {0} backups verifies, so nothing was pruned: check the destination and keys"
    )]
    NothingVerifies(usize),
    #[error("backup key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("backup storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("backup I/O: {0}")]
    Io(std::io::Error),
}

impl BackupError {
    /// Unwraps a `BackupError` carried through `std::io` (readers and writers report that way).
    pub fn from_io(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<BackupError>()) {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<BackupError>().expect("checked above");
        }
        BackupError::Io(e)
    }
}
