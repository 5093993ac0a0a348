//! `roomraft backup …` and `roomraft restore`: backups from the command line.
//!
//! `now` asks a running node (through its HTTPS API) to take a backup. `list`, `verify`,
//! `prune` and `restore` work on the destination directly, with the key files, so they work
//! when the whole cluster is gone.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use jiff::Timestamp;
use roomraft_backup::{
    choose, list, read_backup, Destination, Keyring, Manifest, MasterKey, Progress, S3Options,
};
use roomraft_cluster::NodeInfo;

use crate::backup::BackupConfig;
use crate::client::{call, https_client};
use crate::domain::Bookings;

/// Where the backups are and which keys read them: a node's config, or named directly.
#[derive(clap::Args, Clone)]
pub struct Location {
    /// A node's `node.toml`; its `[backup]` section names the destination and keys.
    #[arg(long, env = "ROOMRAFT_CONFIG", conflicts_with = "destination")]
    pub config: Option<PathBuf>,
    /// A folder or `s3://bucket/prefix` (S3 settings from the `AWS_*` variables).
    #[arg(long, visible_alias = "from")]
    pub destination: Option<String>,
    /// The current master key file.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Older key files, for backups written before a key rotation (repeatable).
    #[arg(long)]
    pub old_key_file: Vec<PathBuf>,
}

impl Location {
    fn backup_config(&self) -> anyhow::Result<BackupConfig> {
        if let Some(path) = &self.config {
            let config = crate::config::Config::load(path)?;
            return config.backup.with_context(|| {
                format!(
                    "{} has no [backup] section; add one or pass --destination and --key-file",
                    path.display()
                )
            });
        }
        let dest = self.destination.clone().context(
            "say where the backups are: --config node.toml, or --destination (a folder or s3://bucket/prefix) with --key-file",
        )?;
        let key = self
            .key_file
            .clone()
            .context("pass --key-file: the master key the backups were encrypted with")?;
        let mut c = BackupConfig::new(dest, key);
        c.old_key_files = self.old_key_file.clone();
        c.s3 = S3Options::default();
        Ok(c)
    }

    fn open(&self) -> anyhow::Result<(BackupConfig, Destination, Keyring)> {
        let c = self.backup_config()?;
        let keys = Keyring::load(&c.key_file, &c.old_key_files)?;
        let dest = Destination::open(&c.destination, &c.s3)?;
        Ok((c, dest, keys))
    }
}

#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: BackupCmd,
}

#[derive(clap::Subcommand)]
enum BackupCmd {
    /// Write a new master key file (mode 0600); never overwrites one.
    Keygen {
        /// Where to write it; keep it apart from the backups.
        #[arg(long)]
        out: PathBuf,
    },
    /// Ask a running node to take a backup now (it includes every acknowledged write).
    Now {
        /// Any node's HTTPS address.
        #[arg(long, env = "ROOMRAFT_URL", default_value = "https://127.0.0.1:8441")]
        url: String,
        /// The cluster CA certificate.
        #[arg(long, env = "ROOMRAFT_CA", default_value = "roomraft-dev/ca.pem")]
        ca: PathBuf,
        /// File holding the operator token.
        #[arg(
            long,
            env = "ROOMRAFT_OPERATOR_TOKEN_FILE",
            default_value = "roomraft-dev/operator.token"
        )]
        token_file: PathBuf,
    },
    /// List the backups at the destination: id, time, log index, size, key.
    List {
        #[command(flatten)]
        at: Location,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download, decrypt and check a backup against its manifest.
    Verify {
        /// The backup id (see `list`).
        id: Option<String>,
        /// Verify the newest backup.
        #[arg(long, conflicts_with = "id")]
        latest: bool,
        /// Also restore it into a scratch folder and compare the restored state's hash with
        /// the one recorded when it was taken.
        #[arg(long)]
        restore_check: bool,
        #[command(flatten)]
        at: Location,
    },
    /// Delete backups past retention; the newest that verifies is always kept.
    Prune {
        /// Override the configured retention.
        #[arg(long)]
        retention_days: Option<u64>,
        #[command(flatten)]
        at: Location,
    },
}

/// `roomraft restore`: the first node of a new cluster from a backup.
#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    at: Location,
    /// Restore the newest backup.
    #[arg(long, conflicts_with_all = ["backup", "before"])]
    latest: bool,
    /// Restore this backup id.
    #[arg(long)]
    backup: Option<String>,
    /// Restore the newest backup taken before this time (RFC 3339, e.g. 2026-11-23T09:00:00Z).
    #[arg(long)]
    before: Option<String>,
    /// The new node's data folder (must not exist or be empty).
    #[arg(long)]
    data_dir: PathBuf,
    /// The new node's id.
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// host:port of the new node's peer listener, as its config will have it.
    #[arg(long)]
    peer_addr: String,
    /// host:port of the new node's client HTTPS listener.
    #[arg(long)]
    client_addr: String,
}

/// Shows bytes, rate and time left on a terminal while `counter` grows.
fn show_progress(total: Option<u64>, counter: &Progress, what: &str) -> Option<ProgressGuard> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .expect("valid template");
    bar.set_style(style);
    bar.set_message(what.to_string());
    let (b, c) = (bar.clone(), counter.clone());
    let task = tokio::spawn(async move {
        loop {
            b.set_position(c.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Some(ProgressGuard { bar, task })
}

struct ProgressGuard {
    bar: indicatif::ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    match args.command {
        BackupCmd::Keygen { out } => {
            let key = MasterKey::keygen(&out)?;
            println!("wrote master key {} to {}", key.id(), out.display());
            println!("keep a copy apart from the backups (a password manager or a second site): without it they cannot be read");
        }
        BackupCmd::Now {
            url,
            ca,
            token_file,
        } => {
            let client = https_client(&ca, Duration::from_secs(3600))?;
            let token = std::fs::read_to_string(&token_file).with_context(|| {
                format!(
                    "cannot read operator token file {}; pass --token-file",
                    token_file.display()
                )
            })?;
            let m = call(
                client
                    .post(format!(
                        "{}/api/v1/cluster/backups",
                        url.trim_end_matches('/')
                    ))
                    .bearer_auth(token.trim()),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&m)?);
        }
        BackupCmd::List { at, json } => {
            let (_, dest, keys) = at.open()?;
            let listed = list(&dest, &keys).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(());
            }
            println!(
                "{:<28} {:<20} {:>10} {:>10} {:<18} PROBLEM",
                "ID", "TAKEN (UTC)", "INDEX", "SIZE", "KEY"
            );
            for l in &listed {
                let (index, size) = match &l.manifest {
                    Some(m) => (m.index.to_string(), human_bytes(m.archive_bytes)),
                    None => ("?".into(), "?".into()),
                };
                println!(
                    "{:<28} {:<20} {:>10} {:>10} {:<18} {}",
                    l.id,
                    l.created().strftime("%Y-%m-%d %H:%M:%S"),
                    index,
                    size,
                    l.key_id.as_deref().unwrap_or("?"),
                    l.problem.as_deref().unwrap_or("")
                );
            }
            println!("{} backup(s) at {dest}", listed.len());
        }
        BackupCmd::Verify {
            id,
            latest,
            restore_check,
            at,
        } => {
            let (_, dest, keys) = at.open()?;
            if id.is_none() && !latest {
                bail!("name a backup id (see `roomraft backup list`) or pass --latest");
            }
            let manifest = choose(&dest, &keys, id.as_deref(), None).await?;
            let records = download(&dest, &keys, &manifest, "verifying").await?;
            println!(
                "backup {} verified: {} records at log index {}, plaintext SHA-256 {}",
                manifest.id, manifest.records, manifest.index, manifest.plaintext_sha256
            );
            if restore_check {
                let scratch = tempfile::tempdir()?;
                let dir = scratch.path().join("node");
                let info = NodeInfo {
                    peer_addr: "127.0.0.1:1".into(),
                    client_addr: "127.0.0.1:2".into(),
                };
                roomraft_cluster::restore_data_dir::<Bookings>(
                    &dir,
                    1,
                    info,
                    manifest.index,
                    records,
                )?;
                let (index, digest) = roomraft_cluster::stored_state_digest::<Bookings>(&dir)?;
                if index != manifest.index || digest != manifest.state_sha256 {
                    bail!(
                        "restore check failed: restored state at index {index} has hash {digest}, the backup recorded {} at {}",
                        manifest.state_sha256,
                        manifest.index
                    );
                }
                println!("restore check passed: the restored state hash {digest} matches the cluster's when the backup was taken");
            }
        }
        BackupCmd::Prune { retention_days, at } => {
            let (mut config, dest, keys) = at.open()?;
            if let Some(d) = retention_days {
                if d < 1 {
                    bail!("--retention-days must be at least 1");
                }
                config.retention_days = d;
            }
            let report =
                roomraft_backup::prune(&dest, &keys, config.retention(), Timestamp::now(), None)
                    .await?;
            println!(
                "kept the newest verified backup {}; deleted {} past {} days, {} orphaned archive(s)",
                report.kept_newest_verified.as_deref().unwrap_or("-"),
                report.deleted.len(),
                config.retention_days,
                report.orphans_deleted.len()
            );
            for id in &report.deleted {
                println!("deleted {id}");
            }
        }
    }
    Ok(())
}

/// Reads a whole backup, checked against its manifest, into memory (restore needs every record).
async fn download(
    dest: &Destination,
    keys: &Keyring,
    manifest: &Manifest,
    what: &str,
) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let counter: Progress = Arc::default();
    let _bar = show_progress(Some(manifest.archive_bytes), &counter, what);
    let records = Arc::new(Mutex::new(Vec::with_capacity(manifest.records as usize)));
    let sink = records.clone();
    read_backup(
        dest,
        keys,
        manifest,
        move |k, v| {
            sink.lock().expect("not poisoned").push((k, v));
            Ok(())
        },
        Some(counter),
    )
    .await?;
    let records = std::mem::take(&mut *records.lock().expect("not poisoned"));
    Ok(records)
}

fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: restore builds a new node's data folder; never restore into a running member's",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    ensure_empty(&args.data_dir)?;
    for (flag, v) in [
        ("--peer-addr", &args.peer_addr),
        ("--client-addr", &args.client_addr),
    ] {
        if v.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            bail!("{flag} must be host:port, as in the new node's config");
        }
    }
    let before = match &args.before {
        Some(t) => Some(t.parse::<Timestamp>().with_context(|| {
            format!("--before {t:?} is not an RFC 3339 time such as 2026-11-23T09:00:00Z")
        })?),
        None => None,
    };
    if args.backup.is_none() && before.is_none() && !args.latest {
        bail!("choose a backup: --latest, --backup ID or --before TIME");
    }
    let (_, dest, keys) = args.at.open()?;
    let started = std::time::Instant::now();
    let manifest = choose(&dest, &keys, args.backup.as_deref(), before).await?;
    eprintln!(
        "restoring backup {} (cluster {}, log index {}, {} records, {}) from {dest}",
        manifest.id,
        manifest.cluster_id,
        manifest.index,
        manifest.records,
        human_bytes(manifest.archive_bytes)
    );
    let records = download(&dest, &keys, &manifest, "restoring").await?;
    let new_id = format!("rr-{:012x}", rand::random::<u64>() >> 16);
    let (records, _) = crate::domain::reidentify(
        records,
        &new_id,
        Timestamp::now(),
        &manifest.id,
        manifest.index,
    )
    .map_err(|e| anyhow::anyhow!("the backup's identity record is unreadable: {e}"))?;
    let info = NodeInfo {
        peer_addr: args.peer_addr.clone(),
        client_addr: args.client_addr.clone(),
    };
    roomraft_cluster::restore_data_dir::<Bookings>(
        &args.data_dir,
        args.node_id,
        info,
        manifest.index,
        records,
    )?;
    println!(
        "restored backup {} into {} in {:.1?}: new cluster {new_id} (from {}), node {} is its only member",
        manifest.id,
        args.data_dir.display(),
        started.elapsed(),
        manifest.cluster_id,
        args.node_id
    );
    println!("next: point the node's config at this data_dir with an empty initial_members, start it with `roomraft serve`,");
    println!("      then add the other nodes (fresh data folders, new ids) with `roomraft cluster add-node` (docs/disaster-recovery.md)");
    Ok(())
}
