//! The encrypted container: an authenticated header, then AES-256-GCM segments in the STREAM
//! construction (`aead::stream::StreamBE32`: a 7-byte random nonce prefix, a 32-bit segment
//! counter and a last-segment flag in every nonce).
//!
//! Every segment is authenticated with the header bytes as associated data, so a changed header,
//! a flipped byte, reordered segments, a dropped final segment or appended bytes all fail to
//! decrypt. The data key is fresh per container: HKDF-SHA256 of the master key with a random
//! salt from the header, so no (key, nonce) pair is ever used twice. docs/backup-format.md gives
//! the layout byte by byte.

use std::io::{Read, Write};

use aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use crate::keys::{Keyring, MasterKey};
use crate::BackupError;

/// First bytes of every Roomraft backup container.
pub const MAGIC: &[u8; 8] = b"RRBACKUP";
/// The container format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Plaintext bytes per segment that this build writes.
pub const SEGMENT_BYTES: u32 = 1 << 20;
/// Largest segment a reader accepts (the header is only authenticated once a segment decrypts,
/// so its segment size is bounded before anything is allocated).
const MAX_SEGMENT_BYTES: u32 = 16 << 20;
const TAG_BYTES: usize = 16;
const SALT_BYTES: usize = 32;
const NONCE_PREFIX_BYTES: usize = 7;
const KEY_CHECK_BYTES: usize = 16;

/// What a container holds; part of the authenticated header, so one cannot pass for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The compressed state of the cluster.
    Archive = 1,
    /// The JSON manifest describing an archive.
    Manifest = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Result<Self, BackupError> {
        match b {
            1 => Ok(Kind::Archive),
            2 => Ok(Kind::Manifest),
            other => Err(BackupError::Malformed(format!(
                "unknown container kind {other}"
            ))),
        }
    }
}

/// The parsed header of a container.
#[derive(Debug, Clone)]
pub struct Header {
    pub kind: Kind,
    pub key_id: String,
    salt: [u8; SALT_BYTES],
    nonce_prefix: [u8; NONCE_PREFIX_BYTES],
    segment_bytes: u32,
    key_check: [u8; KEY_CHECK_BYTES],
    /// The header exactly as stored: the associated data of every segment.
    raw: Vec<u8>,
}

fn derive(master: &MasterKey, salt: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(salt), master.bytes());
    let mut out = [0u8; 32];
    let info: Vec<u8> = info.concat();
    hk.expand(&info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

fn key_check(master: &MasterKey, salt: &[u8], key_id: &str) -> [u8; KEY_CHECK_BYTES] {
    let full = derive(
        master,
        salt,
        &[b"roomraft-backup v1 key check\0", key_id.as_bytes()],
    );
    let mut check = [0u8; KEY_CHECK_BYTES];
    check.copy_from_slice(&full[..KEY_CHECK_BYTES]);
    check
}

fn stream(master: &MasterKey, header: &Header) -> StreamBE32<Aes256Gcm> {
    let key = derive(
        master,
        &header.salt,
        &[
            b"roomraft-backup v1 data key\0",
            &[header.kind as u8],
            header.key_id.as_bytes(),
        ],
    );
    let aead = Aes256Gcm::new_from_slice(&key).expect("AES-256 takes a 32-byte key");
    StreamBE32::from_aead(aead, header.nonce_prefix.as_slice().into())
}

impl Header {
    fn new(kind: Kind, master: &MasterKey) -> Self {
        let mut salt = [0u8; SALT_BYTES];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        let key_id = master.id().to_string();
        let check = key_check(master, &salt, &key_id);
        let mut raw = Vec::with_capacity(80 + key_id.len());
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        raw.push(kind as u8);
        raw.push(key_id.len() as u8);
        raw.extend_from_slice(key_id.as_bytes());
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&nonce_prefix);
        raw.extend_from_slice(&SEGMENT_BYTES.to_be_bytes());
        raw.extend_from_slice(&check);
        Header {
            kind,
            key_id,
            salt,
            nonce_prefix,
            segment_bytes: SEGMENT_BYTES,
            key_check: check,
            raw,
        }
    }

    /// Reads a header, refusing what is not a Roomraft container or is of an unknown version.
    pub fn read(r: &mut impl Read) -> Result<Self, BackupError> {
        let mut raw = Vec::with_capacity(96);
        let mut take = |n: usize, raw: &mut Vec<u8>| -> Result<Vec<u8>, BackupError> {
            let mut b = vec![0u8; n];
            r.read_exact(&mut b).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => BackupError::Truncated { segments: 0 },
                _ => BackupError::from_io(e),
            })?;
            raw.extend_from_slice(&b);
            Ok(b)
        };
        if take(MAGIC.len(), &mut raw)? != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let v = take(2, &mut raw)?;
        let version = u16::from_be_bytes([v[0], v[1]]);
        if version != FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let kind = Kind::from_byte(take(1, &mut raw)?[0])?;
        let id_len = take(1, &mut raw)?[0] as usize;
        let key_id = String::from_utf8(take(id_len, &mut raw)?)
            .map_err(|_| BackupError::Malformed("key id is not UTF-8".into()))?;
        let mut salt = [0u8; SALT_BYTES];
        salt.copy_from_slice(&take(SALT_BYTES, &mut raw)?);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_BYTES];
        nonce_prefix.copy_from_slice(&take(NONCE_PREFIX_BYTES, &mut raw)?);
        let s = take(4, &mut raw)?;
        let segment_bytes = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        if segment_bytes == 0 || segment_bytes > MAX_SEGMENT_BYTES {
            return Err(BackupError::Malformed(format!(
                "segment size {segment_bytes} out of range"
            )));
        }
        let mut check = [0u8; KEY_CHECK_BYTES];
        check.copy_from_slice(&take(KEY_CHECK_BYTES, &mut raw)?);
        Ok(Header {
            kind,
            key_id,
            salt,
            nonce_prefix,
            segment_bytes,
            key_check: check,
            raw,
        })
    }

    fn expect_kind(&self, kind: Kind) -> Result<(), BackupError> {
        if self.kind != kind {
            return Err(BackupError::Malformed(format!(
                "expected a {kind:?} container, found a {:?}",
                self.kind
            )));
        }
        Ok(())
    }
}

/// Encrypts everything written to it into `inner`; [`EncryptWriter::finish`] writes the final
/// segment. Dropping it unfinished leaves a container that readers refuse as truncated.
pub struct EncryptWriter<W: Write> {
    inner: W,
    stream: StreamBE32<Aes256Gcm>,
    aad: Vec<u8>,
    buf: Vec<u8>,
    segment: usize,
    position: u32,
    written: u64,
}

impl<W: Write> EncryptWriter<W> {
    /// Starts a container of `kind` under `master`, writing its header at once.
    pub fn new(mut inner: W, kind: Kind, master: &MasterKey) -> std::io::Result<Self> {
        let header = Header::new(kind, master);
        inner.write_all(&header.raw)?;
        Ok(Self {
            stream: stream(master, &header),
            written: header.raw.len() as u64,
            aad: header.raw,
            inner,
            segment: SEGMENT_BYTES as usize,
            buf: Vec::with_capacity(SEGMENT_BYTES as usize + TAG_BYTES),
            position: 0,
        })
    }

    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let take = self.buf.len().min(self.segment);
        let mut seg: Vec<u8> = self.buf.drain(..take).collect();
        self.stream
            .encrypt_in_place(self.position, last, &self.aad, &mut seg)
            .map_err(|_| std::io::Error::other("AES-GCM encryption failed"))?;
        self.position = self
            .position
            .checked_add(1)
            .ok_or_else(|| std::io::Error::other("backup too large: segment counter exhausted"))?;
        self.inner.write_all(&seg)?;
        self.written += seg.len() as u64;
        Ok(())
    }

    /// Seals the last segment and returns the inner writer and the container's size in bytes.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.seal(true)?;
        self.inner.flush()?;
        Ok((self.inner, self.written))
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        // Keep at least one byte back: the final segment is sealed by `finish`, flagged last.
        while self.buf.len() > self.segment {
            self.seal(false)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a container segment by segment; reading past the final segment gives EOF, and any
/// failure is an `io::Error` wrapping the [`BackupError`] that says what is wrong.
pub struct DecryptReader<R: Read> {
    inner: R,
    stream: StreamBE32<Aes256Gcm>,
    aad: Vec<u8>,
    chunk_bytes: usize,
    position: u32,
    /// Plaintext of the current segment not yet read, from `offset`.
    plain: Vec<u8>,
    offset: usize,
    /// One byte read ahead to learn whether a full segment is the last.
    peeked: Option<u8>,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    /// Reads the header of a `kind` container from `inner` and finds its key in `keys`.
    pub fn open(mut inner: R, kind: Kind, keys: &Keyring) -> Result<Self, BackupError> {
        let header = Header::read(&mut inner)?;
        header.expect_kind(kind)?;
        let master = keys
            .get(&header.key_id)
            .ok_or_else(|| BackupError::UnknownKey(header.key_id.clone()))?;
        if key_check(master, &header.salt, &header.key_id) != header.key_check {
            return Err(BackupError::WrongKey(header.key_id.clone()));
        }
        Ok(Self {
            stream: stream(master, &header),
            chunk_bytes: header.segment_bytes as usize + TAG_BYTES,
            aad: header.raw,
            inner,
            position: 0,
            plain: Vec::new(),
            offset: 0,
            peeked: None,
            done: false,
        })
    }

    /// Reads up to one ciphertext segment; `true` when nothing follows it.
    fn read_chunk(&mut self) -> std::io::Result<(Vec<u8>, bool)> {
        let mut chunk = Vec::with_capacity(self.chunk_bytes);
        if let Some(b) = self.peeked.take() {
            chunk.push(b);
        }
        // Grow with the data rather than zero a whole segment first: manifests are tiny.
        let want = (self.chunk_bytes - chunk.len()) as u64;
        (&mut self.inner).take(want).read_to_end(&mut chunk)?;
        let filled = chunk.len();
        if filled < self.chunk_bytes {
            return Ok((chunk, true));
        }
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(0) => return Ok((chunk, true)),
                Ok(_) => {
                    self.peeked = Some(one[0]);
                    return Ok((chunk, false));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn next_segment(&mut self) -> std::io::Result<()> {
        let (mut chunk, last) = self.read_chunk()?;
        if chunk.is_empty() {
            // Every container ends with a final segment of at least a tag.
            return Err(std::io::Error::other(BackupError::Truncated {
                segments: self.position,
            }));
        }
        let original = chunk.clone();
        if self
            .stream
            .decrypt_in_place(self.position, last, &self.aad, &mut chunk)
            .is_ok()
        {
            self.position += 1;
            self.plain = chunk;
            self.offset = 0;
            self.done = last;
            return Ok(());
        }
        // A segment that authenticates as a middle segment where the data ends was followed by
        // more: the container was cut at a segment boundary.
        let mut probe = original;
        let err = if last
            && self
                .stream
                .decrypt_in_place(self.position, false, &self.aad, &mut probe)
                .is_ok()
        {
            BackupError::Truncated {
                segments: self.position + 1,
            }
        } else {
            BackupError::Tampered {
                segment: self.position,
            }
        };
        Err(std::io::Error::other(err))
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = out.len().min(self.plain.len() - self.offset);
        out[..n].copy_from_slice(&self.plain[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Encrypts a small payload (a manifest) into one container.
pub fn seal(kind: Kind, master: &MasterKey, plaintext: &[u8]) -> Vec<u8> {
    let mut w = EncryptWriter::new(Vec::new(), kind, master).expect("writing to memory");
    w.write_all(plaintext).expect("writing to memory");
    w.finish().expect("writing to memory").0
}

/// Decrypts a small container read whole.
pub fn open(kind: Kind, keys: &Keyring, container: &[u8]) -> Result<Vec<u8>, BackupError> {
    let mut r = DecryptReader::open(container, kind, keys)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(BackupError::from_io)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (MasterKey, Keyring) {
        let key = MasterKey::generate();
        let ring = Keyring::new(key.clone(), Vec::new());
        (key, ring)
    }

    fn container(key: &MasterKey, len: usize) -> (Vec<u8>, Vec<u8>) {
        let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        (plain.clone(), seal(Kind::Archive, key, &plain))
    }

    fn header_len(c: &[u8]) -> usize {
        Header::read(&mut &c[..]).unwrap().raw.len()
    }

    #[test]
    fn round_trips_empty_exact_and_multi_segment_payloads() {
        let (key, ring) = keyring();
        for len in [
            0,
            1,
            SEGMENT_BYTES as usize,
            2 * SEGMENT_BYTES as usize + 17,
        ] {
            let (plain, c) = container(&key, len);
            assert_eq!(open(Kind::Archive, &ring, &c).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_is_refused() {
        let (key, ring) = keyring();
        let (_, c) = container(&key, SEGMENT_BYTES as usize + 100);
        let h = header_len(&c);
        // In the header's salt (authenticated as associated data), in each segment, in a tag.
        for at in [
            12 + key.id().len() + 5,
            h + 3,
            h + SEGMENT_BYTES as usize + 10,
            c.len() - 1,
        ] {
            let mut bad = c.clone();
            bad[at] ^= 0x01;
            let err = open(Kind::Archive, &ring, &bad).unwrap_err();
            assert!(
                matches!(err, BackupError::Tampered { .. } | BackupError::WrongKey(_)),
                "flip at {at}: {err}"
            );
        }
    }

    #[test]
    fn truncation_at_a_boundary_or_inside_a_segment_is_refused() {
        let (key, ring) = keyring();
        let (_, c) = container(&key, 2 * SEGMENT_BYTES as usize + 5);
        let h = header_len(&c);
        let seg = SEGMENT_BYTES as usize + TAG_BYTES;
        let err = open(Kind::Archive, &ring, &c[..h + seg]).unwrap_err();
        assert!(
            matches!(err, BackupError::Truncated { segments: 1 }),
            "{err}"
        );
        let err = open(Kind::Archive, &ring, &c[..h + 2 * seg]).unwrap_err();
        assert!(
            matches!(err, BackupError::Truncated { segments: 2 }),
            "{err}"
        );
        let err = open(Kind::Archive, &ring, &c[..h]).unwrap_err();
        assert!(
            matches!(err, BackupError::Truncated { segments: 0 }),
            "{err}"
        );
        let err = open(Kind::Archive, &ring, &c[..h + 100]).unwrap_err();
        assert!(matches!(err, BackupError::Tampered { .. }), "{err}");
        let err = open(Kind::Archive, &ring, &c[..10]).unwrap_err();
        assert!(matches!(err, BackupError::Truncated { .. }), "{err}");
    }

    #[test]
    fn reordered_segments_and_appended_bytes_are_refused() {
        let (key, ring) = keyring();
        let (_, c) = container(&key, 2 * SEGMENT_BYTES as usize + 5);
        let h = header_len(&c);
        let seg = SEGMENT_BYTES as usize + TAG_BYTES;
        let mut swapped = c[..h].to_vec();
        swapped.extend_from_slice(&c[h + seg..h + 2 * seg]);
        swapped.extend_from_slice(&c[h..h + seg]);
        swapped.extend_from_slice(&c[h + 2 * seg..]);
        let err = open(Kind::Archive, &ring, &swapped).unwrap_err();
        assert!(matches!(err, BackupError::Tampered { segment: 0 }), "{err}");
        let mut longer = c.clone();
        longer.extend_from_slice(b"more");
        let err = open(Kind::Archive, &ring, &longer).unwrap_err();
        assert!(matches!(err, BackupError::Tampered { .. }), "{err}");
    }

    #[test]
    fn wrong_unknown_key_other_kind_and_version_each_have_their_own_error() {
        let (key, _) = keyring();
        let (_, c) = container(&key, 1000);
        // Same key id, different key material.
        let impostor = MasterKey::from_parts(key.id().to_string(), [7u8; 32]);
        let err = open(Kind::Archive, &Keyring::new(impostor, vec![]), &c).unwrap_err();
        assert!(matches!(err, BackupError::WrongKey(_)), "{err}");
        let other = Keyring::new(MasterKey::generate(), vec![]);
        let err = open(Kind::Archive, &other, &c).unwrap_err();
        assert!(
            matches!(err, BackupError::UnknownKey(ref id) if id == key.id()),
            "{err}"
        );
        let err = open(Kind::Manifest, &Keyring::new(key.clone(), vec![]), &c).unwrap_err();
        assert!(matches!(err, BackupError::Malformed(_)), "{err}");
        let mut v2 = c.clone();
        v2[9] = 2;
        let err = open(Kind::Archive, &Keyring::new(key.clone(), vec![]), &v2).unwrap_err();
        assert!(matches!(err, BackupError::UnsupportedVersion(2)), "{err}");
        let err = open(
            Kind::Archive,
            &Keyring::new(key, vec![]),
            b"PK\x03\x04 a zip",
        )
        .unwrap_err();
        assert!(matches!(err, BackupError::NotABackup), "{err}");
    }

    #[test]
    fn two_containers_of_the_same_plaintext_share_no_bytes_after_the_key_id() {
        let (key, _) = keyring();
        let a = seal(Kind::Archive, &key, b"same");
        let b = seal(Kind::Archive, &key, b"same");
        let h = 8 + 2 + 1 + 1 + key.id().len();
        assert_ne!(a[h..h + 32], b[h..h + 32], "salt");
        assert_ne!(a[a.len() - 20..], b[b.len() - 20..], "ciphertext");
    }
}
