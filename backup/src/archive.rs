//! Taking, listing, reading, verifying and pruning backups.
//!
//! A backup is two objects under the destination's prefix: `<id>.archive` (the state, as a
//! body of records, zstd-compressed, then encrypted) and `<id>.manifest` (encrypted JSON). The
//! archive streams from the records to a multipart upload through bounded channels, so it is
//! never held whole in memory. The manifest is written only once the archive is complete, and a
//! backup exists only when its manifest does: a failed upload never looks like a backup.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::crypto::{self, DecryptReader, EncryptWriter, Kind};
use crate::destination::Destination;
use crate::keys::Keyring;
use crate::BackupError;

const BODY_MAGIC: &[u8; 8] = b"RRSTATE1";
const ARCHIVE_EXT: &str = ".archive";
const MANIFEST_EXT: &str = ".manifest";
/// Ciphertext handed from the encrypting thread to the uploader at a time.
const CHANNEL_CHUNK: usize = 1 << 20;
/// Multipart part size (S3 wants at least 5 MiB for all but the last part).
const PART_BYTES: usize = 8 << 20;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;
/// An archive with no manifest this old is what a failed upload left; prune deletes it.
const ORPHAN_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// zstd level: fast, and still shrinks JSON-ish records several times.
const ZSTD_LEVEL: i32 = 3;

/// The state to back up: every record at one applied log index.
pub struct Source {
    pub cluster_id: String,
    pub index: u64,
    pub term: u64,
    /// The state digest of the records (SHA-256 over them in key order), as the cluster
    /// computes it; a restore is checked against it.
    pub state_sha256: String,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    Manual,
}

/// What the encrypted manifest beside each archive records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u16,
    pub id: String,
    pub cluster_id: String,
    /// The Raft log index (and its term) the state was applied up to.
    pub index: u64,
    pub term: u64,
    pub state_sha256: String,
    pub created: Timestamp,
    pub trigger: Trigger,
    pub records: u64,
    /// The uncompressed body: size and SHA-256.
    pub plaintext_bytes: u64,
    pub plaintext_sha256: String,
    /// The stored archive object's size.
    pub archive_bytes: u64,
    pub key_id: String,
    pub software_version: String,
}

/// The body's own header, inside the encryption: what the state is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyHeader {
    pub cluster_id: String,
    pub index: u64,
    pub term: u64,
    pub records: u64,
}

/// A backup id: the UTC time it stands for and why it was taken, sortable by time.
pub fn backup_id(at: Timestamp, trigger: Trigger) -> String {
    let t = at.strftime("%Y%m%dT%H%M%SZ");
    match trigger {
        Trigger::Scheduled => format!("{t}-scheduled"),
        Trigger::Manual => format!("{t}-manual"),
    }
}

/// Writes the body and hashes it as it goes.
struct BodyWriter<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
    records: u64,
}

impl<W: Write> BodyWriter<W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data)
    }

    fn start(inner: W, header: &BodyHeader) -> std::io::Result<Self> {
        let mut w = Self {
            inner,
            hash: Sha256::new(),
            bytes: 0,
            records: 0,
        };
        let json = serde_json::to_vec(header)?;
        w.put(BODY_MAGIC)?;
        w.put(&(json.len() as u32).to_be_bytes())?;
        w.put(&json)?;
        Ok(w)
    }

    fn record(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        let len = |n: usize| {
            u32::try_from(n)
                .map(u32::to_be_bytes)
                .map_err(|_| std::io::Error::other("record larger than 4 GiB"))
        };
        self.put(&[1])?;
        self.put(&len(key.len())?)?;
        self.put(key)?;
        self.put(&len(value.len())?)?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(W, BodyStats)> {
        let count = self.records.to_be_bytes();
        self.put(&[0])?;
        self.put(&count)?;
        Ok((
            self.inner,
            BodyStats {
                bytes: self.bytes,
                sha256: hex::encode(self.hash.finalize()),
                records: self.records,
            },
        ))
    }
}

#[derive(Debug, Clone)]
struct BodyStats {
    bytes: u64,
    sha256: String,
    records: u64,
}

/// Reads a body, hashing it, handing each record to `sink`.
fn read_body(
    inner: impl Read,
    mut sink: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), BackupError>,
) -> Result<(BodyHeader, BodyStats), BackupError> {
    struct Hashing<R> {
        inner: R,
        hash: Sha256,
        bytes: u64,
    }
    impl<R: Read> Hashing<R> {
        fn take(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
            let mut b = vec![0u8; n];
            self.inner.read_exact(&mut b).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    BackupError::Malformed("the archive body ends early".into())
                } else {
                    BackupError::from_io(e)
                }
            })?;
            self.hash.update(&b);
            self.bytes += n as u64;
            Ok(b)
        }
        fn u32(&mut self) -> Result<usize, BackupError> {
            let b = self.take(4)?;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
    }
    let mut r = Hashing {
        inner,
        hash: Sha256::new(),
        bytes: 0,
    };
    if r.take(BODY_MAGIC.len())? != BODY_MAGIC {
        return Err(BackupError::Malformed(
            "the archive body has no state header".into(),
        ));
    }
    let n = r.u32()?;
    let header: BodyHeader = serde_json::from_slice(&r.take(n)?)
        .map_err(|e| BackupError::Malformed(format!("the body header: {e}")))?;
    let mut records = 0u64;
    loop {
        match r.take(1)?[0] {
            1 => {
                let n = r.u32()?;
                let key = r.take(n)?;
                let n = r.u32()?;
                let value = r.take(n)?;
                records += 1;
                sink(key, value)?;
            }
            0 => {
                let c = r.take(8)?;
                let count = u64::from_be_bytes(c.try_into().expect("8 bytes"));
                if count != records || count != header.records {
                    return Err(BackupError::Malformed(format!(
                        "the body holds {records} records but says {count} (header {})",
                        header.records
                    )));
                }
                break;
            }
            t => return Err(BackupError::Malformed(format!("unknown body tag {t}"))),
        }
    }
    let mut rest = [0u8; 1];
    if r.inner.read(&mut rest).map_err(BackupError::from_io)? != 0 {
        return Err(BackupError::Malformed("bytes after the body's end".into()));
    }
    Ok((
        header,
        BodyStats {
            bytes: r.bytes,
            sha256: hex::encode(r.hash.finalize()),
            records,
        },
    ))
}

/// A `Write` that hands full chunks to an async consumer (blocking while it is behind).
struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHANNEL_CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHANNEL_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Read` over chunks arriving from an async producer.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.cur = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Counts bytes moved, for progress displays.
pub type Progress = Arc<AtomicU64>;

/// Streams `source` into a new backup `id` at `dest`, encrypted with the keyring's current key;
/// `created` is the time the manifest records (the caller's clock).
pub async fn write_backup(
    dest: &Destination,
    keys: &Keyring,
    source: Source,
    id: &str,
    trigger: Trigger,
    created: Timestamp,
    progress: Option<Progress>,
) -> Result<Manifest, BackupError> {
    let key = keys.current().clone();
    let header = BodyHeader {
        cluster_id: source.cluster_id.clone(),
        index: source.index,
        term: source.term,
        records: source.records.len() as u64,
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let producer = tokio::task::spawn_blocking(move || -> std::io::Result<(BodyStats, u64)> {
        let sink = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHANNEL_CHUNK),
        };
        let enc = EncryptWriter::new(sink, Kind::Archive, &key)?;
        let z = zstd::Encoder::new(enc, ZSTD_LEVEL)?;
        let mut body = BodyWriter::start(z, &header)?;
        for (k, v) in source.records {
            body.record(&k, &v)?;
        }
        let (z, stats) = body.finish()?;
        let (mut sink, size) = z.finish()?.finish()?;
        sink.send()?;
        Ok((stats, size))
    });

    let archive_path = dest.path(&format!("{id}{ARCHIVE_EXT}"));
    let upload = dest.store.put_multipart(&archive_path).await?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut failure: Option<BackupError> = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = parts.wait_for_capacity(PARTS_IN_FLIGHT).await {
            failure = Some(e.into());
            break;
        }
        parts.write(&chunk);
        if let Some(p) = &progress {
            p.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
    // Stop the producer if the upload failed (its sends then fail), then learn how it ended.
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| BackupError::Malformed(format!("the archive writer panicked: {e}")));
    let (stats, archive_bytes) = match (failure, produced) {
        (None, Ok(Ok(done))) => done,
        (Some(e), _) | (None, Err(e)) => {
            abort(parts).await;
            return Err(e);
        }
        (None, Ok(Err(e))) => {
            abort(parts).await;
            return Err(BackupError::from_io(e));
        }
    };
    parts.finish().await?;

    let manifest = Manifest {
        format: crypto::FORMAT_VERSION,
        id: id.to_string(),
        cluster_id: source.cluster_id,
        index: source.index,
        term: source.term,
        state_sha256: source.state_sha256,
        created,
        trigger,
        records: stats.records,
        plaintext_bytes: stats.bytes,
        plaintext_sha256: stats.sha256,
        archive_bytes,
        key_id: keys.current().id().to_string(),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let sealed = crypto::seal(
        Kind::Manifest,
        keys.current(),
        &serde_json::to_vec_pretty(&manifest).expect("a manifest serialises"),
    );
    let manifest_path = dest.path(&format!("{id}{MANIFEST_EXT}"));
    if let Err(e) = dest
        .store
        .put(&manifest_path, PutPayload::from(sealed))
        .await
    {
        // Without its manifest the archive is not a backup; do not leave it to be mistaken for one.
        let _ = dest.store.delete(&archive_path).await;
        return Err(e.into());
    }
    tracing::info!(
        backup = %id, index = manifest.index, records = manifest.records,
        archive_bytes = manifest.archive_bytes, key = %manifest.key_id, destination = %dest,
        "backup written"
    );
    Ok(manifest)
}

async fn abort(parts: WriteMultipart) {
    // Nothing was completed, so no object is visible; aborting frees the parts (S3).
    if let Err(e) = parts.abort().await {
        tracing::warn!(error = %e, "aborting a failed backup upload failed; prune cleans it up");
    }
}

/// One backup found at a destination.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// Why the manifest could not be read, or what else is wrong.
    pub problem: Option<String>,
    /// Key id from the manifest's header (known even without the key).
    pub key_id: Option<String>,
    pub archive_present: bool,
    /// When the manifest was stored (used when it cannot be read).
    pub stored: Timestamp,
}

impl Listed {
    /// When this backup was taken, as well as it is known.
    pub fn created(&self) -> Timestamp {
        self.manifest
            .as_ref()
            .map(|m| m.created)
            .unwrap_or(self.stored)
    }
}

struct Objects {
    manifests: Vec<(String, Timestamp)>,
    archives: Vec<(String, Timestamp)>,
}

/// object_store reports times as chrono values; only the seconds are used.
fn to_timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

async fn objects(dest: &Destination) -> Result<Objects, BackupError> {
    let mut listing = dest.store.list(dest.prefix());
    let mut out = Objects {
        manifests: Vec::new(),
        archives: Vec::new(),
    };
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let Some(name) = dest.name_of(&meta.location) else {
            continue;
        };
        let at = to_timestamp(meta.last_modified);
        if let Some(id) = name.strip_suffix(MANIFEST_EXT) {
            out.manifests.push((id.to_string(), at));
        } else if let Some(id) = name.strip_suffix(ARCHIVE_EXT) {
            out.archives.push((id.to_string(), at));
        }
    }
    Ok(out)
}

async fn fetch_manifest(dest: &Destination, id: &str) -> Result<Bytes, BackupError> {
    let path = dest.path(&format!("{id}{MANIFEST_EXT}"));
    match dest.store.get(&path).await {
        Ok(r) => Ok(r.bytes().await?),
        Err(object_store::Error::NotFound { .. }) => Err(BackupError::NotFound(id.to_string())),
        Err(e) => Err(e.into()),
    }
}

fn parse_manifest(keys: &Keyring, id: &str, sealed: &[u8]) -> Result<Manifest, BackupError> {
    let json = crypto::open(Kind::Manifest, keys, sealed)?;
    let m: Manifest = serde_json::from_slice(&json)
        .map_err(|e| BackupError::Malformed(format!("manifest of {id}: {e}")))?;
    if m.id != id {
        return Err(BackupError::Malformed(format!(
            "manifest stored as {id} describes backup {}",
            m.id
        )));
    }
    Ok(m)
}

async fn read_manifest(
    dest: &Destination,
    keys: &Keyring,
    id: &str,
) -> Result<Manifest, BackupError> {
    parse_manifest(keys, id, &fetch_manifest(dest, id).await?)
}

fn header_key_id(sealed: &[u8]) -> Option<String> {
    crypto::Header::read(&mut &sealed[..])
        .ok()
        .map(|h| h.key_id)
}

/// Every backup at `dest`, oldest first.
pub async fn list(dest: &Destination, keys: &Keyring) -> Result<Vec<Listed>, BackupError> {
    let objects = objects(dest).await?;
    let mut out = Vec::new();
    for (id, stored) in objects.manifests {
        let archive_present = objects.archives.iter().any(|(a, _)| *a == id);
        // One read serves both the manifest and, when it cannot be opened, its key id.
        let sealed = fetch_manifest(dest, &id).await;
        let (manifest, mut problem) = match sealed.as_ref().map(|b| parse_manifest(keys, &id, b)) {
            Ok(Ok(m)) => (Some(m), None),
            Ok(Err(e)) => (None, Some(e.to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        let key_id = match &manifest {
            Some(m) => Some(m.key_id.clone()),
            None => sealed.ok().and_then(|b| header_key_id(&b)),
        };
        if !archive_present && problem.is_none() {
            problem = Some("the archive object is missing".into());
        }
        out.push(Listed {
            id,
            manifest,
            problem,
            key_id,
            archive_present,
            stored,
        });
    }
    out.sort_by(|a, b| a.created().cmp(&b.created()).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Finds the backup a restore asks for: an id, the newest, or the newest taken before a time.
pub async fn choose(
    dest: &Destination,
    keys: &Keyring,
    id: Option<&str>,
    before: Option<Timestamp>,
) -> Result<Manifest, BackupError> {
    if let Some(id) = id {
        return read_manifest(dest, keys, id).await;
    }
    let listed = list(dest, keys).await?;
    listed
        .into_iter()
        .rev()
        .filter(|l| l.archive_present)
        .filter_map(|l| l.manifest)
        .find(|m| before.is_none_or(|b| m.created < b))
        .ok_or_else(|| {
            BackupError::NotFound(match before {
                Some(b) => format!("any readable backup taken before {b}"),
                None => "any readable backup".into(),
            })
        })
}

/// Reads backup `manifest.id`, checks it end to end against its manifest, and hands every record
/// to `sink` (on a blocking thread) as it is decrypted.
pub async fn read_backup(
    dest: &Destination,
    keys: &Keyring,
    manifest: &Manifest,
    sink: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), BackupError> + Send + 'static,
    progress: Option<Progress>,
) -> Result<BodyHeader, BackupError> {
    let path = dest.path(&format!("{}{ARCHIVE_EXT}", manifest.id));
    let stream = match dest.store.get(&path).await {
        Ok(r) => r.into_stream(),
        Err(object_store::Error::NotFound { .. }) => {
            return Err(BackupError::NotFound(format!("{} (archive)", manifest.id)))
        }
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other);
            if let (Ok(c), Some(p)) = (&chunk, &progress) {
                p.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let keys = keys.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        let dec = DecryptReader::open(reader, Kind::Archive, &keys)?;
        let z = zstd::Decoder::new(dec).map_err(BackupError::from_io)?;
        read_body(z, sink)
    })
    .await
    .map_err(|e| BackupError::Malformed(format!("the archive reader panicked: {e}")));
    feeder.abort();
    let (header, stats) = reading??;
    let expected = (
        manifest.cluster_id.as_str(),
        manifest.index,
        manifest.term,
        manifest.records,
    );
    if (
        header.cluster_id.as_str(),
        header.index,
        header.term,
        header.records,
    ) != expected
    {
        return Err(BackupError::Malformed(format!(
            "the archive holds cluster {} index {} term {} ({} records); its manifest says {:?}",
            header.cluster_id, header.index, header.term, header.records, expected
        )));
    }
    if stats.sha256 != manifest.plaintext_sha256 || stats.bytes != manifest.plaintext_bytes {
        return Err(BackupError::Checksum {
            id: manifest.id.clone(),
            expected: manifest.plaintext_sha256.clone(),
            actual: stats.sha256,
        });
    }
    Ok(header)
}

/// Downloads, decrypts and checks backup `id` against its manifest.
pub async fn verify(dest: &Destination, keys: &Keyring, id: &str) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(dest, keys, id).await?;
    read_backup(dest, keys, &manifest, |_, _| Ok(()), None).await?;
    Ok(manifest)
}

/// What a prune did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// The newest backup that verified; never deleted.
    pub kept_newest_verified: Option<String>,
    pub deleted: Vec<String>,
    /// Archives left without a manifest by failed uploads.
    pub orphans_deleted: Vec<String>,
}

/// The backups to delete: those older than `retention`, except `keep`.
pub fn plan_prune(
    backups: &[(String, Timestamp)],
    keep: &str,
    now: Timestamp,
    retention: SignedDuration,
) -> Vec<String> {
    let cutoff = now - retention;
    backups
        .iter()
        .filter(|(id, created)| *created < cutoff && id != keep)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Deletes backups older than `retention`. The newest backup that verifies end to end is kept
/// whatever its age; when none verifies, nothing is deleted.
///
/// `verified` names a backup the caller has just verified, which is then not read again.
pub async fn prune(
    dest: &Destination,
    keys: &Keyring,
    retention: SignedDuration,
    now: Timestamp,
    verified: Option<&str>,
) -> Result<PruneReport, BackupError> {
    let listed = list(dest, keys).await?;
    let mut keep = None;
    for l in listed.iter().rev() {
        if verified == Some(l.id.as_str()) {
            keep = Some(l.id.clone());
            break;
        }
        match verify(dest, keys, &l.id).await {
            Ok(_) => {
                keep = Some(l.id.clone());
                break;
            }
            Err(e) => tracing::warn!(backup = %l.id, error = %e, "backup does not verify"),
        }
    }
    let Some(keep) = keep else {
        return Err(BackupError::NothingVerifies(listed.len()));
    };
    let all: Vec<(String, Timestamp)> =
        listed.iter().map(|l| (l.id.clone(), l.created())).collect();
    let mut report = PruneReport {
        kept_newest_verified: Some(keep.clone()),
        ..Default::default()
    };
    for id in plan_prune(&all, &keep, now, retention) {
        // Manifest first: once it is gone the backup no longer exists, even if the archive
        // deletion then fails (prune removes such an orphan later).
        delete_quietly(dest, &format!("{id}{MANIFEST_EXT}")).await?;
        delete_quietly(dest, &format!("{id}{ARCHIVE_EXT}")).await?;
        tracing::info!(backup = %id, destination = %dest, "pruned backup past retention");
        report.deleted.push(id);
    }
    let objects = objects(dest).await?;
    for (id, stored) in objects.archives {
        let has_manifest = objects.manifests.iter().any(|(m, _)| *m == id);
        if !has_manifest && stored < now - ORPHAN_AFTER {
            delete_quietly(dest, &format!("{id}{ARCHIVE_EXT}")).await?;
            tracing::info!(archive = %id, destination = %dest, "deleted an archive without a manifest (a failed upload)");
            report.orphans_deleted.push(id);
        }
    }
    Ok(report)
}

async fn delete_quietly(dest: &Destination, name: &str) -> Result<(), BackupError> {
    match dest.store.delete(&dest.path(name)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
