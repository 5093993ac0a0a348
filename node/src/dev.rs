//! `roomraft dev`: a local cluster of real node processes with its own CA and a demo school.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use roomraft_cluster::tls::CertificateAuthority;
use roomraft_cluster::{ClusterConfig, NodeInfo, Timeouts};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::client::{call, https_client};
use crate::config::{AnalyticsConfig, Config, ConnectionsConfig, LimitsConfig, TlsPaths};

#[derive(clap::Args)]
pub struct DevArgs {
    /// Folder for the CA, tokens and every node's data; reused on the next run.
    #[arg(long, default_value = "roomraft-dev")]
    pub data_dir: PathBuf,
    /// How many nodes to run (1 to 9).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Node i serves HTTPS on port-base + i and Raft on port-base + 100 + i.
    #[arg(long, default_value_t = 8440)]
    pub port_base: u16,
}

/// Writes a file readable only by its owner.
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// Loads the dev CA from `dir`, or creates it.
pub fn load_or_create_ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert.exists() && key.exists() {
        return Ok(CertificateAuthority::from_pem(
            &std::fs::read_to_string(&cert)?,
            &std::fs::read_to_string(&key)?,
        )?);
    }
    let ca = CertificateAuthority::generate("Roomraft dev cluster CA")?;
    std::fs::write(&cert, ca.cert_pem())?;
    write_secret(&key, &ca.key_pem())?;
    Ok(ca)
}

pub fn node_info(port_base: u16, id: u64) -> NodeInfo {
    NodeInfo {
        peer_addr: format!("127.0.0.1:{}", port_base as u64 + 100 + id),
        client_addr: format!("127.0.0.1:{}", port_base as u64 + id),
    }
}

/// Prepares `dir/node{id}`: certificate, key and `node.toml`. Returns the config path.
pub fn prepare_node(
    dir: &Path,
    ca: &CertificateAuthority,
    id: u64,
    port_base: u16,
    initial_members: BTreeMap<u64, NodeInfo>,
    operator_token: &str,
) -> anyhow::Result<PathBuf> {
    let node_dir = dir.join(format!("node{id}"));
    std::fs::create_dir_all(&node_dir)?;
    if !node_dir.join("cert.pem").exists() {
        let names = ["127.0.0.1".to_string(), "::1".into(), "localhost".into()];
        let issued = ca.issue(&format!("node{id}"), &names)?;
        std::fs::write(node_dir.join("cert.pem"), issued.cert_pem)?;
        write_secret(&node_dir.join("key.pem"), &issued.key_pem)?;
    }
    let info = node_info(port_base, id);
    let metrics_token = read_or_create_token(&dir.join("metrics.token"))?;
    let key_file = dir.join("backup.key");
    if !key_file.exists() {
        roomraft_backup::MasterKey::keygen(&key_file)?;
    }
    let config = Config {
        client_listen: info.client_addr.parse()?,
        tls: TlsPaths {
            ca: "../ca.pem".into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        },
        operator_token_sha256: Some(hex::encode(Sha256::digest(operator_token.as_bytes()))),
        metrics_token_sha256: Some(hex::encode(Sha256::digest(metrics_token.as_bytes()))),
        limits: dev_limits(),
        max_body_bytes: 1024 * 1024,
        max_concurrent_requests: 4096,
        connections: dev_connections(),
        log_json: false,
        session: Default::default(),
        password_min_length: 15,
        analytics: dev_analytics(),
        // Hourly encrypted backups to a folder beside the nodes, like production's offsite ones.
        backup: Some(crate::backup::BackupConfig::new(
            "../backups",
            "../backup.key",
        )),
        cluster: ClusterConfig {
            node_id: id,
            data_dir: "data".into(),
            peer_listen: info.peer_addr.parse()?,
            advertise: info,
            peer_source_ip: None,
            initial_members,
            timeouts: Timeouts::default(),
            snapshot_every_entries: 20_000,
            snapshot_scales_with_state: true,
            keep_logs_after_snapshot: 2_000,
            peer_body_limit_bytes: 64 << 20,
        },
    };
    let path = node_dir.join("node.toml");
    let text = format!("# Roomraft node {id}, written by `roomraft dev`; run alone with `roomraft serve --config {}`\n{}", path.display(), toml::to_string(&config)?);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Every local client shares 127.0.0.1, so the per-address and per-tenant limits are raised far
/// above production's (benchmarks and the chaos suite drive thousands of requests a second from
/// one address). Failed sign-ins per account keep production's limit.
pub fn dev_limits() -> LimitsConfig {
    LimitsConfig {
        per_address_per_second: 100_000,
        per_address_burst: 100_000,
        sign_in_per_address_per_minute: 100_000,
        sign_in_per_address_burst: 10_000,
        per_tenant_per_second: 100_000,
        per_tenant_burst: 100_000,
        ..LimitsConfig::default()
    }
}

/// As [`dev_limits`]: benchmarks open hundreds of connections from 127.0.0.1, so one address
/// may hold many; every deadline stays production's.
pub fn dev_connections() -> ConnectionsConfig {
    ConnectionsConfig {
        per_address: 100_000,
        ..ConnectionsConfig::default()
    }
}

/// As [`dev_limits`]: every local browser and benchmark shares 127.0.0.1, so the per-address
/// page-view quota is raised; the GeoIP database comes from `ROOMRAFT_GEOIP_DATABASE` if set.
pub fn dev_analytics() -> AnalyticsConfig {
    AnalyticsConfig {
        per_address_per_minute: 6_000_000,
        per_address_burst: 100_000,
        ..AnalyticsConfig::default()
    }
}

fn read_or_create_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        return Ok(t.trim().to_string());
    }
    let token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    write_secret(path, &token)?;
    Ok(token)
}

async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    children: &mut [(u64, Child)],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/health/ready")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        for (id, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("node {id} exited during start-up ({status}); see its node.log");
            }
        }
        if Instant::now() > deadline {
            bail!("{url} was not ready within 60s; see the nodes' node.log files");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seed_demo(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    operator_token: &str,
) -> anyhow::Result<(String, Vec<crate::seed::DemoUser>)> {
    let admin_file = dir.join("admin.token");
    let admin = match std::fs::read_to_string(&admin_file) {
        Ok(t) => t.trim().to_string(),
        Err(_) => {
            let created = call(
                client
                    .post(format!("{url}/api/v1/tenants"))
                    .bearer_auth(operator_token)
                    .header("Idempotency-Key", "dev-seed-tenant")
                    .json(&json!({ "slug": "demo", "name": "Demo School", "time_zone": "Europe/London" })),
            )
            .await
            .context("cannot create the demo school")?;
            let admin = created["admin_token"]
                .as_str()
                .context("no admin token in the answer")?
                .to_string();
            write_secret(&admin_file, &admin)?;
            admin
        }
    };
    let users_file = dir.join("demo-users.txt");
    let users = match std::fs::read_to_string(&users_file) {
        Ok(text) => {
            let mut users = crate::seed::demo_users();
            for u in users.iter_mut() {
                if let Some(pw) = text
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{} ", u.username)))
                {
                    u.password = pw.trim().to_string();
                }
            }
            users
        }
        Err(_) => {
            let users = crate::seed::demo_users();
            let text: String = users
                .iter()
                .map(|u| format!("{} {}\n", u.username, u.password))
                .collect();
            write_secret(&users_file, &text)?;
            users
        }
    };
    let spec = crate::seed::SchoolSpec {
        teaching_rooms: 18,
        occupancy_percent: 70,
        users: users.clone(),
    };
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/London")?)
        .date();
    crate::seed::seed_school(client, url, &admin, &spec, today)
        .await
        .context("cannot seed the demo school")?;
    Ok((admin, users))
}

fn stop_children(children: &mut [(u64, Child)], dir: &Path) {
    for (_, child) in children.iter() {
        // SAFETY: kill(2) with a pid we spawned; no memory is touched.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (id, child) in children.iter_mut() {
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(dir.join(format!("node{id}/pid")));
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if !(1..=9).contains(&args.nodes) {
        bail!("--nodes must be between 1 and 9");
    }
    if args.port_base > 65_400 {
        bail!("--port-base must leave room for ports up to port-base + 109");
    }
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = load_or_create_ca(dir)?;
    let operator_token = read_or_create_token(&dir.join("operator.token"))?;
    let members: BTreeMap<u64, NodeInfo> = (1..=args.nodes)
        .map(|i| (i, node_info(args.port_base, i)))
        .collect();
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for id in 1..=args.nodes {
        let config = prepare_node(
            dir,
            &ca,
            id,
            args.port_base,
            members.clone(),
            &operator_token,
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("node{id}/node.log")))?;
        let child = std::process::Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start a node process")?;
        std::fs::write(dir.join(format!("node{id}/pid")), child.id().to_string())?;
        children.push((id, child));
    }
    let client = https_client(&dir.join("ca.pem"), Duration::from_secs(10))?;
    let result = async {
        for id in 1..=args.nodes {
            wait_ready(
                &client,
                &format!("https://{}", members[&id].client_addr),
                &mut children,
            )
            .await?;
        }
        seed_demo(
            &client,
            &format!("https://{}", members[&1].client_addr),
            dir,
            &operator_token,
        )
        .await
    }
    .await;
    let (admin, users) = match result {
        Ok(a) => a,
        Err(e) => {
            stop_children(&mut children, dir);
            return Err(e);
        }
    };
    let ca_path = std::fs::canonicalize(dir.join("ca.pem"))?;
    println!(
        "Roomraft dev cluster is up: {} nodes, demo school \"Demo School\".",
        args.nodes
    );
    for (id, info) in &members {
        println!(
            "  node {id}: https://{}  (config {}/node{id}/node.toml)",
            info.client_addr,
            dir.display()
        );
    }
    println!("CA certificate:  {}", ca_path.display());
    println!(
        "Admin token:     {admin}   (also in {}/admin.token)",
        dir.display()
    );
    println!("Operator token:  in {}/operator.token", dir.display());
    println!(
        "Metrics:         GET /metrics with the token in {}/metrics.token",
        dir.display()
    );
    println!(
        "Backups:         hourly into {d}/backups, encrypted with {d}/backup.key (roomraft backup list --config {d}/node1/node.toml)",
        d = dir.display()
    );
    println!(
        "Staff sign-in (tenant \"demo\"; also in {}/demo-users.txt):",
        dir.display()
    );
    for u in &users {
        println!("  {:<8} {:<7} {}", u.username, u.role, u.password);
    }
    println!(
        "Try:  curl --cacert {} -H 'Authorization: Bearer {admin}' https://{}/api/v1/rooms",
        ca_path.display(),
        members[&1].client_addr
    );
    println!("Ctrl-C stops every node; running the same command again brings the cluster back with its data.");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut reported = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for (id, child) in children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        if reported.insert(*id) {
                            println!("node {id} exited ({status}); the others keep serving. Restart it alone with: roomraft serve --config {}/node{id}/node.toml", dir.display());
                        }
                    }
                }
            }
        }
    }
    println!("stopping the nodes");
    stop_children(&mut children, dir);
    Ok(())
}
