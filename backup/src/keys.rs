//! Master keys: 256-bit, each with an id written into every container it encrypts.
//!
//! A key file is one line, `roomraft-backup-key 1 <id> <base64 key>`, after optional `#`
//! comments. The current key encrypts new backups; older keys stay in the keyring so the backups
//! they wrote can still be read until those age out.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use rand::RngCore;

use crate::BackupError;

const FILE_TAG: &str = "roomraft-backup-key";
const FILE_VERSION: &str = "1";

/// A 256-bit master key and its id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

impl MasterKey {
    /// A fresh random key with an id naming the day it was made (`k20261123-9f3a1c`).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut tail = [0u8; 3];
        rand::rngs::OsRng.fill_bytes(&mut tail);
        let day = jiff::Timestamp::now().strftime("%Y%m%d");
        Self {
            id: format!("k{day}-{}", hex::encode(tail)),
            key,
        }
    }

    /// A key from its id and bytes (tests, and reading key files).
    pub fn from_parts(id: String, key: [u8; 32]) -> Self {
        Self { id, key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.key
    }

    /// Parses a key file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("the file holds no key line")?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [FILE_TAG, FILE_VERSION, id, key] => {
                if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("key id {id:?} must be 1 to 64 printable characters"));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(key)
                    .map_err(|e| format!("the key is not base64: {e}"))?;
                let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                    format!("the key is {} bytes; a master key is 32 (256 bits)", b.len())
                })?;
                Ok(Self::from_parts(id.to_string(), key))
            }
            [FILE_TAG, version, ..] => Err(format!(
                "key file version {version} is not supported (this roomraft reads version {FILE_VERSION})"
            )),
            _ => Err(format!("expected `{FILE_TAG} {FILE_VERSION} <id> <base64 key>`")),
        }
    }

    /// The key file's text.
    pub fn to_file_text(&self) -> String {
        format!(
            "# Roomraft backup master key (AES-256). Keep it apart from the backups: without it they\n\
             # cannot be read, and with them it reads every booking.\n\
             {FILE_TAG} {FILE_VERSION} {} {}\n",
            self.id,
            base64::engine::general_purpose::STANDARD.encode(self.key)
        )
    }

    /// Reads a key file; warns when others may read it.
    pub fn load(path: &Path) -> Result<Self, BackupError> {
        let bad = |reason: String| BackupError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "backup key file is readable by others; chmod 600 it");
            }
        }
        Self::parse(&text).map_err(bad)
    }

    /// Writes a new key to `path` with mode 0600; never overwrites an existing file.
    pub fn keygen(path: &Path) -> Result<Self, BackupError> {
        let key = Self::generate();
        let bad = |reason: String| BackupError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    bad("already exists; a key is never overwritten (choose another path)".into())
                }
                _ => bad(e.to_string()),
            })?;
        f.write_all(key.to_file_text().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| bad(e.to_string()))?;
        Ok(key)
    }
}

/// The key that encrypts new backups and every key that may still be needed to read old ones.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey, older: Vec<MasterKey>) -> Self {
        Self { current, older }
    }

    /// Loads the current key file and any older ones.
    pub fn load(current: &Path, older: &[impl AsRef<Path>]) -> Result<Self, BackupError> {
        let current = MasterKey::load(current)?;
        let older = older
            .iter()
            .map(|p| MasterKey::load(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(current, older))
    }

    /// The key new backups are written with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The key with `id`, if the keyring holds it.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == id)
    }

    /// Every key id, current first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .map(|k| k.id())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_file_that_loads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.key");
        let key = MasterKey::keygen(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = MasterKey::load(&path).unwrap();
        assert_eq!(loaded.id(), key.id());
        assert_eq!(loaded.bytes(), key.bytes());
        let err = MasterKey::keygen(&path).unwrap_err().to_string();
        assert!(err.contains("never overwritten"), "{err}");
        assert_eq!(MasterKey::load(&path).unwrap().bytes(), key.bytes());
    }

    #[test]
    fn bad_key_files_say_what_is_wrong() {
        for (text, expect) in [
            ("", "no key line"),
            ("roomraft-backup-key 2 k1 AAAA", "version 2"),
            ("roomraft-backup-key 1 k1 !!!", "not base64"),
            ("roomraft-backup-key 1 k1 AAAA", "32 (256 bits)"),
            ("hello", "expected"),
        ] {
            let err = MasterKey::parse(text).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_keyring_finds_current_and_older_keys_by_id() {
        let (a, b) = (MasterKey::generate(), MasterKey::generate());
        let ring = Keyring::new(b.clone(), vec![a.clone()]);
        assert_eq!(ring.current().id(), b.id());
        assert!(ring.get(a.id()).is_some());
        assert!(ring.get("k-nope").is_none());
        assert_eq!(ring.ids(), vec![b.id(), a.id()]);
    }
}
