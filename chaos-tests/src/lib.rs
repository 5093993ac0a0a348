//! A harness that runs the real `roomraft` binary as separate processes and injects faults.
//!
//! - [`DevCluster`]: the cluster exactly as `roomraft dev` starts it (the newcomer's path).
//! - [`cluster::Cluster`]: `roomraft serve` processes whose peer traffic goes through the
//!   fault-injecting proxies of [`net`], with process faults and membership changes.
//! - [`workload`] records a [`history`]; [`check`] holds one checker per invariant;
//!   [`schedule`] runs seeded fault rounds and reports.

pub mod check;
pub mod cluster;
pub mod haproxy;
pub mod history;
pub mod net;
pub mod schedule;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

/// The `roomraft` binary built next to this test (`target/<profile>/roomraft`), or `ROOMRAFT_BIN`.
pub fn roomraft_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ROOMRAFT_BIN") {
        return p.into();
    }
    // Tests run from target/<profile>/deps, the chaos-soak binary from target/<profile>.
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable folder");
    let candidates = [Some(dir), dir.parent()];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|d| d.join("roomraft"))
        .find(|b| b.exists());
    found.unwrap_or_else(|| {
        panic!(
            "no roomraft binary next to {}: run `cargo build -p roomraft-node` first (scripts/test.sh does), or set ROOMRAFT_BIN",
            exe.display()
        )
    })
}

/// Starts `roomraft serve --config <config>`, appending its output to `log`.
pub fn spawn_serve(config: &Path, log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(roomraft_bin())
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

/// GETs `url` with a bearer token and returns its JSON body; a non-2xx answer is an error.
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let r = http.get(url).bearer_auth(token).send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {v}");
    }
    Ok(v)
}

/// Waits until `ready_url` (a node's `/health/ready`) answers 200.
pub async fn wait_ready(
    http: &reqwest::Client,
    ready_url: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = http
            .get(ready_url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{ready_url} not ready within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `roomraft dev` cluster plus any node processes the test restarted itself.
pub struct DevCluster {
    pub dir: tempfile::TempDir,
    pub port_base: u16,
    pub nodes: u64,
    pub http: reqwest::Client,
    pub admin: String,
    dev: Child,
    restarted: Vec<Child>,
}

impl DevCluster {
    pub async fn start(port_base: u16, nodes: u64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let dev = Command::new(roomraft_bin())
            .args([
                "dev",
                "--port-base",
                &port_base.to_string(),
                "--nodes",
                &nodes.to_string(),
                "--data-dir",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        // `roomraft dev` prints its banner only after every node is ready and the demo school is
        // fully seeded: wait for that line, not for files to appear.
        let mut dev = dev;
        let stdout = dev.stdout.take().context("dev stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("cluster is up") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(90)).is_err() {
            let _ = dev.kill();
            bail!("roomraft dev did not report the cluster up within 90s");
        }
        let admin_file = dir.path().join("admin.token");
        let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.pem"))?)?;
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(10))
            .build()?;
        let admin = std::fs::read_to_string(&admin_file)?.trim().to_string();
        let c = DevCluster {
            dir,
            port_base,
            nodes,
            http,
            admin,
            dev,
            restarted: Vec::new(),
        };
        for id in 1..=nodes {
            c.wait_ready(id, Duration::from_secs(30)).await?;
        }
        Ok(c)
    }

    pub fn url(&self, node: u64, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port_base as u64 + node)
    }

    pub async fn wait_ready(&self, node: u64, within: Duration) -> anyhow::Result<()> {
        wait_ready(&self.http, &self.url(node, "/health/ready"), within).await
    }

    /// Waits until node `node`'s client port refuses connections (the process is gone).
    pub async fn wait_refused(&self, node: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let addr = format!("127.0.0.1:{}", self.port_base as u64 + node);
        while tokio::net::TcpStream::connect(&addr).await.is_ok() {
            if Instant::now() > deadline {
                bail!("node {node} still accepts connections after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    pub async fn get(&self, node: u64, path: &str) -> anyhow::Result<Value> {
        get_json(&self.http, &self.url(node, path), &self.admin).await
    }

    /// The leader as node `asked` sees it.
    pub async fn leader(&self, asked: u64) -> anyhow::Result<u64> {
        let v = self.get(asked, "/api/v1/cluster").await?;
        v["leader_id"].as_u64().context("no leader known")
    }

    fn pid(&self, node: u64) -> anyhow::Result<i32> {
        let p = self.dir.path().join(format!("node{node}/pid"));
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("no pid file {}", p.display()))?
            .trim()
            .parse()?)
    }

    /// SIGKILLs a node started by `roomraft dev`.
    pub fn sigkill(&self, node: u64) -> anyhow::Result<()> {
        let pid = self.pid(node)?;
        // SAFETY: kill(2) on a pid of a process this test's cluster started.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            bail!("kill {pid} failed: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Starts a node alone from its `node.toml`, as an operator would after a crash.
    pub fn restart(&mut self, node: u64) -> anyhow::Result<()> {
        let dir = self.dir.path().join(format!("node{node}"));
        let child = spawn_serve(&dir.join("node.toml"), &dir.join("node.log"))?;
        self.restarted.push(child);
        Ok(())
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        for c in &mut self.restarted {
            let _ = c.kill();
            let _ = c.wait();
        }
        // SAFETY: kill(2) on the dev process this harness started; it stops its own nodes.
        unsafe { libc::kill(self.dev.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.dev.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.dev.kill();
        let _ = self.dev.wait();
    }
}
