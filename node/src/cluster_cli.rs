//! `roomraft cluster`: membership from the command line, through any node's HTTPS API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::client::{call, https_client};

#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCmd,
    /// Any node's HTTPS address.
    #[arg(
        long,
        global = true,
        env = "ROOMRAFT_URL",
        default_value = "https://127.0.0.1:8441"
    )]
    url: String,
    /// The cluster CA certificate.
    #[arg(
        long,
        global = true,
        env = "ROOMRAFT_CA",
        default_value = "roomraft-dev/ca.pem"
    )]
    ca: PathBuf,
    /// File holding the operator token (needed to change membership).
    #[arg(
        long,
        global = true,
        env = "ROOMRAFT_OPERATOR_TOKEN_FILE",
        default_value = "roomraft-dev/operator.token"
    )]
    token_file: PathBuf,
}

#[derive(clap::Subcommand)]
enum ClusterCmd {
    /// Show what the node knows: leader, term, indexes, members (with the operator token; without
    /// it, only the node's role and the leader).
    Status,
    /// Show the per-school quotas, or change some: `--set lessons=30000 --set rooms=3000`.
    Quotas {
        /// `kind=number`, for rooms, users, departments, lessons, bookings, api_tokens, feeds
        /// or enquiries; repeat for several.
        #[arg(long = "set", value_name = "KIND=N")]
        set: Vec<String>,
    },
    /// Add a node: first as a learner (it catches up), then as a voter.
    AddNode {
        /// The new node's id; never reuse an id, not even of a removed node.
        #[arg(long)]
        id: u64,
        /// host:port of its peer listener.
        #[arg(long)]
        peer_addr: String,
        /// host:port of its client HTTPS listener.
        #[arg(long)]
        client_addr: String,
        /// Leave it as a learner (no vote).
        #[arg(long)]
        learner_only: bool,
    },
    /// Remove a node from the membership.
    RemoveNode {
        #[arg(long)]
        id: u64,
    },
    /// Prepare a new node's folder (certificate from the dev CA, node.toml) next to a dev cluster.
    PrepareNode {
        #[arg(long)]
        id: u64,
        /// The dev cluster's folder.
        #[arg(long, default_value = "roomraft-dev")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 8440)]
        port_base: u16,
    },
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    if let ClusterCmd::PrepareNode {
        id,
        data_dir,
        port_base,
    } = &args.command
    {
        let ca = crate::dev::load_or_create_ca(data_dir)?;
        let token =
            std::fs::read_to_string(data_dir.join("operator.token")).with_context(|| {
                format!(
                    "no operator.token in {}; run roomraft dev there first",
                    data_dir.display()
                )
            })?;
        let path = crate::dev::prepare_node(
            data_dir,
            &ca,
            *id,
            *port_base,
            Default::default(),
            token.trim(),
        )?;
        let info = crate::dev::node_info(*port_base, *id);
        println!("prepared {}", path.display());
        println!("start it:  roomraft serve --config {}", path.display());
        println!(
            "then:      roomraft cluster add-node --id {id} --peer-addr {} --client-addr {}",
            info.peer_addr, info.client_addr
        );
        return Ok(());
    }
    let client = https_client(&args.ca, Duration::from_secs(180))?;
    let url = args.url.trim_end_matches('/');
    let token = || -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(&args.token_file)
            .with_context(|| {
                format!(
                    "cannot read operator token file {}; pass --token-file",
                    args.token_file.display()
                )
            })?
            .trim()
            .to_string())
    };
    let status = match &args.command {
        ClusterCmd::Status => {
            let mut req = client.get(format!("{url}/api/v1/cluster"));
            if let Ok(t) = token() {
                req = req.bearer_auth(t);
            }
            call(req).await?
        }
        ClusterCmd::Quotas { set } => {
            let t = token()?;
            let path = format!("{url}/api/v1/cluster/quotas");
            if set.is_empty() {
                call(client.get(&path).bearer_auth(&t)).await?
            } else {
                let mut q = call(client.get(&path).bearer_auth(&t)).await?;
                for kv in set {
                    let (k, v) = kv.split_once('=').with_context(|| {
                        format!("--set {kv}: use kind=number, like lessons=30000")
                    })?;
                    let n: u64 = v
                        .trim()
                        .parse()
                        .with_context(|| format!("--set {kv}: {v:?} is not a whole number"))?;
                    if q.get(k.trim()).is_none() {
                        anyhow::bail!(
                            "--set {kv}: no quota {k:?}; use one of {}",
                            q.as_object()
                                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        );
                    }
                    q[k.trim()] = json!(n);
                }
                call(client.put(&path).bearer_auth(&t).json(&q)).await?
            }
        }
        ClusterCmd::AddNode {
            id,
            peer_addr,
            client_addr,
            learner_only,
        } => {
            let t = token()?;
            let body = json!({ "id": id, "peer_addr": peer_addr, "client_addr": client_addr });
            let mut s = call(
                client
                    .post(format!("{url}/api/v1/cluster/learners"))
                    .bearer_auth(&t)
                    .json(&body),
            )
            .await?;
            println!("node {id} added as a learner and caught up");
            if !learner_only {
                s = call(
                    client
                        .post(format!("{url}/api/v1/cluster/voters"))
                        .bearer_auth(&t)
                        .json(&json!({ "ids": [id] })),
                )
                .await?;
                println!("node {id} promoted to voter");
            }
            s
        }
        ClusterCmd::RemoveNode { id } => {
            call(
                client
                    .delete(format!("{url}/api/v1/cluster/members/{id}"))
                    .bearer_auth(token()?),
            )
            .await?
        }
        ClusterCmd::PrepareNode { .. } => unreachable!("handled above"),
    };
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}
