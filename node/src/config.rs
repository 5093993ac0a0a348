//! The node's configuration file (`node.toml`), with `ROOMRAFT_*` environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use roomraft_cluster::ClusterConfig;
pub use roomraft_ops::{AnalyticsConfig, LimitsConfig};
use serde::{Deserialize, Serialize};

/// One Roomraft node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the client HTTPS listener binds (API, health).
    pub client_listen: SocketAddr,
    /// TLS files: the cluster CA, and this node's certificate and key (PEM).
    pub tls: TlsPaths,
    /// Hex SHA-256 of the operator token; operator endpoints are refused when unset.
    #[serde(default)]
    pub operator_token_sha256: Option<String>,
    /// Hex SHA-256 of the token Prometheus presents to scrape `/metrics` (the operator token
    /// is accepted too); `/metrics` answers 401 to anyone else.
    #[serde(default)]
    pub metrics_token_sha256: Option<String>,
    /// Rate limits (quotas per address, per tenant, on sign-in) and trusted proxies.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Largest client request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most client requests served at once; more wait.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
    /// Deadlines and caps for client connections: slow or idle clients are dropped.
    #[serde(default)]
    pub connections: ConnectionsConfig,
    /// Log as JSON lines instead of text.
    #[serde(default)]
    pub log_json: bool,
    /// Sign-in session lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
    /// Shortest new password accepted; NIST SP 800-63B-4 asks for 15 where a password alone
    /// signs in. New passwords are also checked against common and easily guessed ones.
    #[serde(default = "default_password_min")]
    pub password_min_length: usize,
    /// Encrypted backups (destination, keys, schedule, retention); none when absent.
    #[serde(default)]
    pub backup: Option<crate::backup::BackupConfig>,
    /// Usage analytics: GeoIP database, retention, ingestion limits and batching.
    #[serde(default)]
    pub analytics: AnalyticsConfig,
    /// Raft membership, storage and timing.
    pub cluster: ClusterConfig,
}

/// How long a client may take, and how many connections one address may hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// The TLS handshake must finish within this many seconds.
    pub handshake_seconds: u64,
    /// HTTP/1: a request's line and headers must all arrive within this many seconds (this
    /// also closes an HTTP/1 keep-alive connection idle for that long).
    pub header_read_seconds: u64,
    /// A request's whole body must arrive within this many seconds of its headers.
    pub body_read_seconds: u64,
    /// A connection with no request in flight for this many seconds is closed (HTTP/1 and
    /// HTTP/2).
    pub idle_seconds: u64,
    /// Most connections open at once from one address; 0 for no cap. Trusted proxies
    /// (`[limits] trusted_proxies`) are exempt: they carry many clients and cap them themselves.
    /// A school behind one NAT address shares this, so it is generous.
    pub per_address: usize,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            handshake_seconds: 10,
            header_read_seconds: 10,
            body_read_seconds: 30,
            idle_seconds: 60,
            per_address: 256,
        }
    }
}

/// How long a sign-in lasts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Signed out after this many minutes without a request.
    #[serde(default = "default_idle")]
    pub idle_minutes: u64,
    /// Signed out this many hours after signing in, however busy.
    #[serde(default = "default_absolute")]
    pub absolute_hours: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: default_idle(),
            absolute_hours: default_absolute(),
        }
    }
}

fn default_idle() -> u64 {
    120
}
fn default_absolute() -> u64 {
    12
}

fn default_password_min() -> usize {
    15
}

fn default_max_body() -> usize {
    1024 * 1024
}
fn default_max_concurrent() -> usize {
    4096
}

/// Paths of the PEM files; relative paths are relative to the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Reads `path`, resolves relative paths against its folder, then applies `ROOMRAFT_*` overrides.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.tls.ca,
            &mut config.tls.cert,
            &mut config.tls.key,
            &mut config.cluster.data_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(b) = &mut config.backup {
            for p in std::iter::once(&mut b.key_file).chain(&mut b.old_key_files) {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
            let folder = !b.destination.contains("://");
            if folder && std::path::Path::new(&b.destination).is_relative() {
                b.destination = base.join(&b.destination).display().to_string();
            }
        }
        if let Some(p) = &mut config.analytics.geoip_database {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = var("ROOMRAFT_CLIENT_LISTEN") {
            self.client_listen = v
                .parse()
                .context("ROOMRAFT_CLIENT_LISTEN must be host:port")?;
        }
        if let Some(v) = var("ROOMRAFT_DATA_DIR") {
            self.cluster.data_dir = v.into();
        }
        if let Some(v) = var("ROOMRAFT_LOG_JSON") {
            self.log_json = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = var("ROOMRAFT_OPERATOR_TOKEN_SHA256") {
            self.operator_token_sha256 = Some(v);
        }
        if let Some(v) = var("ROOMRAFT_METRICS_TOKEN_SHA256") {
            self.metrics_token_sha256 = Some(v);
        }
        if let Some(v) = var("ROOMRAFT_GEOIP_DATABASE") {
            self.analytics.geoip_database = (!v.is_empty()).then(|| v.into());
        }
        Ok(())
    }
}
