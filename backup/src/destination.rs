//! Where backups go: a local folder (the embedded default) or S3-compatible storage, both
//! through `object_store`.

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::BackupError;

/// S3 settings; anything unset comes from the usual `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint of an S3-compatible service (MinIO, Ceph, ...); AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (only for a test server on loopback).
    #[serde(default)]
    pub allow_http: bool,
}

/// A backup destination: an object store and the prefix backups live under.
#[derive(Clone)]
pub struct Destination {
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    display: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Destination {
    /// `s3://bucket/prefix` or a folder (`/path`, `file:///path`); the folder is created.
    pub fn open(spec: &str, s3: &S3Options) -> Result<Self, BackupError> {
        let bad =
            |reason: String| BackupError::Config(format!("backup destination {spec:?}: {reason}"));
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("name a bucket: s3://bucket/prefix".into()));
            }
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(e) = &s3.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(r) = &s3.region {
                b = b.with_region(r);
            }
            if let Some(k) = &s3.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(k) = &s3.secret_access_key {
                b = b.with_secret_access_key(k);
            }
            if s3.allow_http {
                b = b.with_allow_http(true);
            }
            let store = b.build().map_err(|e| bad(e.to_string()))?;
            return Ok(Self {
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix.trim_matches('/')),
                display: spec.to_string(),
            });
        }
        if spec.contains("://") && !spec.starts_with("file://") {
            return Err(bad(
                "use s3://bucket/prefix or a folder path; no other scheme is supported".into(),
            ));
        }
        let dir = spec.strip_prefix("file://").unwrap_or(spec);
        if dir.is_empty() {
            return Err(bad("the folder path is empty".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create the folder: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            display: dir.to_string(),
        })
    }

    pub(crate) fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.as_ref().is_empty() {
            ObjectPath::from(name)
        } else {
            self.prefix.child(name)
        }
    }

    pub(crate) fn prefix(&self) -> Option<&ObjectPath> {
        (!self.prefix.as_ref().is_empty()).then_some(&self.prefix)
    }

    /// The object name's last part (the file name under the prefix).
    pub(crate) fn name_of<'a>(&self, path: &'a ObjectPath) -> Option<&'a str> {
        path.filename()
    }
}
