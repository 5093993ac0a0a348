//! `roomraft`: the Roomraft node and its command-line tools.

use roomraft_node::{backup_cli, cluster_cli, config, dev, logging, server};

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "roomraft",
    version,
    about = "Room and venue booking for schools, replicated with Raft"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local cluster with a demo school (the command a newcomer runs).
    Dev(dev::DevArgs),
    /// Run one production node from its config file.
    Serve {
        /// Path of the node's TOML config (see docs/operations.md).
        #[arg(long, env = "ROOMRAFT_CONFIG")]
        config: PathBuf,
    },
    /// Inspect and change cluster membership.
    Cluster(cluster_cli::ClusterArgs),
    /// Encrypted backups: keygen, now, list, verify, prune.
    Backup(backup_cli::BackupArgs),
    /// Build the first node of a new cluster from a backup (disaster recovery).
    Restore(backup_cli::RestoreArgs),
}

fn init_tracing(json: bool) {
    // Colours only for a terminal: a log file or journald would keep the escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    logging::init(json, "info,openraft=warn,sled=warn", ansi, std::io::stdout);
}

/// Command-line tools log only warnings (to stderr) unless ROOMRAFT_LOG says otherwise.
fn init_cli_tracing() {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    logging::init(false, "warn", ansi, std::io::stderr);
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Serve { config } => {
                let config = config::Config::load(&config)?;
                init_tracing(config.log_json);
                server::serve(config).await
            }
            Cmd::Dev(args) => {
                init_tracing(false);
                dev::run(args).await
            }
            Cmd::Cluster(args) => cluster_cli::run(args).await,
            Cmd::Backup(args) => {
                init_cli_tracing();
                backup_cli::run(args).await
            }
            Cmd::Restore(args) => {
                init_cli_tracing();
                backup_cli::restore(args).await
            }
        }
    })
}
