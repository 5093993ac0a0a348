//! N real `roomraft serve` processes on loopback, their peer traffic through [`Net`] proxies,
//! and the process faults: SIGKILL, restart, SIGSTOP/SIGCONT, losing the data directory, and
//! membership changes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use roomraft_cluster::tls::CertificateAuthority;
use roomraft_cluster::{ClusterConfig, NodeInfo, Timeouts};
use roomraft_node::config::{Config, TlsPaths};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::net::{source_ip, Net, NodeId};

/// Ports of node `id`: client HTTPS, the real peer listener, and the proxy in front of it.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub client: u16,
    pub peer: u16,
    pub proxy: u16,
}

struct NodeProc {
    ports: Ports,
    child: Option<Child>,
    paused: bool,
}

/// A cluster of `roomraft serve` processes with fault injection.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub net: Net,
    pub http: reqwest::Client,
    /// Operator token (membership, state digests).
    pub operator: String,
    /// Admin token of the test school.
    pub admin: String,
    /// The test school's rooms.
    pub rooms: Vec<u64>,
    port_base: u16,
    ca: CertificateAuthority,
    timeouts: Timeouts,
    nodes: BTreeMap<NodeId, NodeProc>,
    next_id: NodeId,
    /// Applied to every node's config before it is written.
    tune: Box<dyn Fn(&mut Config) + Send + Sync>,
}

/// Raft timing for the suite: the defaults, so what is tested is what ships.
pub fn default_timeouts() -> Timeouts {
    Timeouts::default()
}

impl Cluster {
    /// Starts `n` voters, waits until each is ready, and creates a school with `rooms` rooms.
    /// Node `id` uses ports `port_base + id` (client), `+ 100` (peer), `+ 200` (proxy).
    pub async fn start(port_base: u16, n: u64, rooms: usize) -> anyhow::Result<Self> {
        Self::start_with(port_base, n, rooms, |_| {}).await
    }

    /// As [`Cluster::start`], with every node's config changed by `tune` first.
    pub async fn start_with(
        port_base: u16,
        n: u64,
        rooms: usize,
        tune: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let mut dir = tempfile::Builder::new()
            .prefix("roomraft-chaos-")
            .tempdir()?;
        if std::env::var_os("CHAOS_KEEP_DIR").is_some() {
            // Data directories and node logs stay behind for inspection.
            dir.disable_cleanup(true);
            eprintln!("chaos: keeping {}", dir.path().display());
        }
        let ca = CertificateAuthority::generate("Roomraft chaos CA")?;
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem())?;
        let operator = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes())?)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        let mut c = Cluster {
            dir,
            net: Net::new(),
            http,
            operator,
            admin: String::new(),
            rooms: Vec::new(),
            port_base,
            ca,
            timeouts: default_timeouts(),
            nodes: BTreeMap::new(),
            next_id: n + 1,
            tune: Box::new(|_| {}),
        };
        let tune: Box<dyn Fn(&mut Config) + Send + Sync> = Box::new(tune);
        c.tune = tune;
        let members: BTreeMap<NodeId, NodeInfo> = (1..=n).map(|id| (id, c.info(id))).collect();
        for id in 1..=n {
            c.prepare(id, members.clone()).await?;
        }
        for id in 1..=n {
            c.start_node(id)?;
        }
        for id in 1..=n {
            c.wait_ready(id, Duration::from_secs(60)).await?;
        }
        let tenant = c
            .post(
                1,
                "/api/v1/tenants",
                &c.operator.clone(),
                "chaos-tenant",
                json!({"slug": "chaos", "name": "Chaos School", "time_zone": "Europe/London"}),
            )
            .await?;
        c.admin = tenant["admin_token"]
            .as_str()
            .context("admin token")?
            .to_string();
        for r in 0..rooms {
            let room = c
                .post(
                    1,
                    "/api/v1/rooms",
                    &c.admin.clone(),
                    &format!("chaos-room-{r}"),
                    json!({"name": format!("Room {r}"), "category": "classroom", "capacity": 30}),
                )
                .await?;
            c.rooms.push(room["id"].as_u64().context("room id")?);
        }
        Ok(c)
    }

    /// The cluster CA (clients trust it; a balancer's certificate comes from it).
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    pub fn ports(&self, id: NodeId) -> Ports {
        let p = self.port_base;
        let id = id as u16;
        Ports {
            client: p + id,
            peer: p + 100 + id,
            proxy: p + 200 + id,
        }
    }

    fn info(&self, id: NodeId) -> NodeInfo {
        let p = self.ports(id);
        NodeInfo {
            peer_addr: format!("127.0.0.1:{}", p.proxy),
            client_addr: format!("127.0.0.1:{}", p.client),
        }
    }

    fn node_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    /// Writes node `id`'s certificate and config, and starts its proxy.
    async fn prepare(
        &mut self,
        id: NodeId,
        initial_members: BTreeMap<NodeId, NodeInfo>,
    ) -> anyhow::Result<()> {
        let dir = self.node_dir(id);
        std::fs::create_dir_all(&dir)?;
        let names = ["127.0.0.1".to_string(), "localhost".into()];
        let issued = self.ca.issue(&format!("node{id}"), &names)?;
        std::fs::write(dir.join("cert.pem"), issued.cert_pem)?;
        std::fs::write(dir.join("key.pem"), issued.key_pem)?;
        let ports = self.ports(id);
        let mut config = Config {
            client_listen: format!("127.0.0.1:{}", ports.client).parse()?,
            tls: TlsPaths {
                ca: "../ca.pem".into(),
                cert: "cert.pem".into(),
                key: "key.pem".into(),
            },
            operator_token_sha256: Some(hex::encode(Sha256::digest(self.operator.as_bytes()))),
            metrics_token_sha256: None,
            // The suite's clients all come from 127.0.0.1: the local limits, as `roomraft dev`.
            limits: roomraft_node::dev::dev_limits(),
            max_body_bytes: 1 << 20,
            max_concurrent_requests: 4096,
            connections: roomraft_node::dev::dev_connections(),
            log_json: false,
            session: Default::default(),
            password_min_length: 15,
            analytics: Default::default(),
            backup: None,
            cluster: ClusterConfig {
                node_id: id,
                data_dir: "data".into(),
                peer_listen: format!("127.0.0.1:{}", ports.peer).parse()?,
                advertise: self.info(id),
                peer_source_ip: Some(source_ip(id)),
                initial_members,
                timeouts: self.timeouts.clone(),
                // Small, so snapshots, purges and snapshot installs happen during the suite.
                snapshot_every_entries: 300,
                snapshot_scales_with_state: false,
                keep_logs_after_snapshot: 50,
                peer_body_limit_bytes: 64 << 20,
            },
        };
        (self.tune)(&mut config);
        std::fs::write(dir.join("node.toml"), toml::to_string(&config)?)?;
        let proxy: SocketAddr = format!("127.0.0.1:{}", ports.proxy).parse()?;
        let real: SocketAddr = format!("127.0.0.1:{}", ports.peer).parse()?;
        self.net.proxy(id, proxy, real).await?;
        self.nodes.insert(
            id,
            NodeProc {
                ports,
                child: None,
                paused: false,
            },
        );
        Ok(())
    }

    /// Starts (or restarts) node `id` from its config.
    pub fn start_node(&mut self, id: NodeId) -> anyhow::Result<()> {
        let dir = self.node_dir(id);
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if node.child.is_some() {
            bail!("node {id} is already running");
        }
        let child = crate::spawn_serve(&dir.join("node.toml"), &dir.join("node.log"))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    fn signal(&mut self, id: NodeId, sig: i32) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let child = node.child.as_ref().context("node is not running")?;
        // SAFETY: kill(2) on a process this harness spawned and has not reaped.
        if unsafe { libc::kill(child.id() as i32, sig) } != 0 {
            bail!(
                "kill({sig}) on node {id} failed: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: NodeId) -> anyhow::Result<()> {
        self.signal(id, libc::SIGKILL)?;
        let node = self.nodes.get_mut(&id).expect("checked by signal");
        let mut child = node.child.take().expect("checked by signal");
        child.wait()?;
        node.paused = false;
        Ok(())
    }

    /// SIGSTOPs node `id`: it keeps its sockets but does nothing until resumed.
    pub fn pause(&mut self, id: NodeId) -> anyhow::Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.nodes.get_mut(&id).expect("checked").paused = true;
        Ok(())
    }

    pub fn resume(&mut self, id: NodeId) -> anyhow::Result<()> {
        self.signal(id, libc::SIGCONT)?;
        self.nodes.get_mut(&id).expect("checked").paused = false;
        Ok(())
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.child.is_some() && !n.paused)
    }

    /// Members this harness runs (running or not).
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Members whose process runs and is not paused.
    pub fn running(&self) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|id| self.is_running(*id))
            .collect()
    }

    pub fn url(&self, id: NodeId, path: &str) -> String {
        let client = self.nodes.get(&id).map(|n| n.ports.client).unwrap_or(0);
        format!("https://127.0.0.1:{client}{path}")
    }

    /// Every member's client base URL, by id.
    pub fn urls(&self) -> BTreeMap<NodeId, String> {
        self.ids()
            .into_iter()
            .map(|id| (id, self.url(id, "")))
            .collect()
    }

    pub async fn wait_ready(&self, id: NodeId, within: Duration) -> anyhow::Result<()> {
        crate::wait_ready(&self.http, &self.url(id, "/health/ready"), within)
            .await
            .with_context(|| format!("see {}/node.log", self.node_dir(id).display()))
    }

    pub async fn get(&self, id: NodeId, path: &str, token: &str) -> anyhow::Result<Value> {
        crate::get_json(&self.http, &self.url(id, path), token).await
    }

    /// POSTs with an Idempotency-Key, retrying through every running node until it succeeds.
    pub async fn post(
        &self,
        first: NodeId,
        path: &str,
        token: &str,
        key: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        let mut attempt = 0usize;
        while Instant::now() < deadline {
            let nodes = self.running();
            let id = if attempt == 0 && nodes.contains(&first) {
                first
            } else {
                nodes[attempt % nodes.len().max(1)]
            };
            attempt += 1;
            match self
                .http
                .post(self.url(id, path))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(r.json().await?),
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    bail!(
                        "POST {path}: {status} {}",
                        r.text().await.unwrap_or_default()
                    );
                }
                Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("POST {path} did not succeed within 60s: {last}")
    }

    /// The leader as the running members see it, once they agree.
    pub async fn leader(&self, within: Duration) -> anyhow::Result<NodeId> {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            for id in self.running() {
                if let Ok(v) = self.get(id, "/api/v1/cluster", &self.operator).await {
                    seen.push(v["leader_id"].as_u64());
                }
            }
            if let Some(Some(l)) = seen.first().copied() {
                if seen.iter().all(|s| *s == Some(l)) && self.is_running(l) {
                    return Ok(l);
                }
            }
            if Instant::now() > deadline {
                bail!("the running members did not agree on a running leader within {within:?}: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Node `id`'s state digest: `(applied index, sha256)`.
    pub async fn digest(&self, id: NodeId) -> anyhow::Result<(u64, String)> {
        let v = self
            .get(id, "/api/v1/cluster/state", &self.operator)
            .await?;
        Ok((
            v["applied_index"].as_u64().context("applied_index")?,
            v["sha256"].as_str().context("sha256")?.to_string(),
        ))
    }

    /// Waits until every running member reports the same state digest at the same index.
    /// Returns how long convergence took.
    pub async fn converged(&self, within: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let deadline = start + within;
        loop {
            let mut digests = BTreeMap::new();
            for id in self.running() {
                if let Ok(d) = self.digest(id).await {
                    digests.insert(id, d);
                }
            }
            let first = digests.values().next().cloned();
            if digests.len() == self.running().len()
                && digests.values().all(|d| Some(d) == first.as_ref())
            {
                return Ok(start.elapsed());
            }
            if Instant::now() > deadline {
                bail!("members did not converge within {within:?}: {digests:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds a brand-new member (a fresh id, never reused) as a learner, then promotes it.
    pub async fn add_member(&mut self) -> anyhow::Result<NodeId> {
        let id = self.next_id;
        self.next_id += 1;
        self.prepare(id, BTreeMap::new()).await?;
        self.start_node(id)?;
        let info = self.info(id);
        let via = *self.running().first().context("no running member")?;
        let op = self.operator.clone();
        self.post(
            via,
            "/api/v1/cluster/learners",
            &op,
            &format!("add-learner-{id}"),
            json!({"id": id, "peer_addr": info.peer_addr, "client_addr": info.client_addr}),
        )
        .await?;
        self.post(
            via,
            "/api/v1/cluster/voters",
            &op,
            &format!("add-voter-{id}"),
            json!({"ids": [id]}),
        )
        .await?;
        Ok(id)
    }

    /// Removes member `id` from the membership (its process, if running, is killed after).
    pub async fn remove_member(&mut self, id: NodeId) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            for via in self.running().into_iter().filter(|v| *v != id) {
                match self
                    .http
                    .delete(self.url(via, &format!("/api/v1/cluster/members/{id}")))
                    .bearer_auth(&self.operator)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        if self.nodes.get(&id).is_some_and(|n| n.child.is_some()) {
                            if self.nodes[&id].paused {
                                self.resume(id)?;
                            }
                            self.kill(id)?;
                        }
                        self.nodes.remove(&id);
                        return Ok(());
                    }
                    Ok(r) => {
                        last = format!("{} {}", r.status(), r.text().await.unwrap_or_default())
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("could not remove node {id}: {last}")
    }

    /// Node `id` lost its disk: it is killed, removed from the membership, and a fresh node with
    /// a new id joins in its place. Returns the new id.
    pub async fn lose_disk_and_rejoin(&mut self, id: NodeId) -> anyhow::Result<NodeId> {
        if self.nodes.get(&id).is_some_and(|n| n.child.is_some()) {
            if self.nodes[&id].paused {
                self.resume(id)?;
            }
            self.kill(id)?;
        }
        std::fs::remove_dir_all(self.node_dir(id).join("data"))?;
        self.remove_member(id).await?;
        self.add_member().await
    }

    /// Node `id`'s log, for failure reports.
    pub fn log_tail(&self, id: NodeId, lines: usize) -> String {
        let text = std::fs::read_to_string(self.node_dir(id).join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.net.shutdown();
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
