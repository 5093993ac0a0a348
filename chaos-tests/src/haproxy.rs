//! A real HAProxy running `docs/ops/haproxy.cfg` in front of three nodes, as production runs it.
//! When the members change, [`HaProxy::reload`] does what `systemctl reload haproxy` does: a new
//! process takes over the listening port (`-sf`) and the old one finishes its connections.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use roomraft_cluster::tls::CertificateAuthority;

/// The balancer's processes: the current one, and old ones still finishing after a reload.
pub struct HaProxy {
    files: Files,
    current: Child,
    old: Vec<Child>,
}

/// What every HAProxy process of one balancer shares.
struct Files {
    bind: String,
    pem: PathBuf,
    ca_pem: PathBuf,
    log: PathBuf,
    config: PathBuf,
}

/// The configuration production runs, `docs/ops/haproxy.cfg`.
pub fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ops/haproxy.cfg")
}

impl HaProxy {
    /// Starts HAProxy on `bind` in front of `nodes` (three `host:port` client addresses), with a
    /// certificate from `ca` (which clients already trust); files go in `dir`.
    pub fn start(
        dir: &Path,
        ca: &CertificateAuthority,
        bind: &str,
        nodes: &[String],
    ) -> anyhow::Result<Self> {
        Self::start_config(dir, ca, bind, nodes, &shipped_config())
    }

    /// As [`HaProxy::start`], with another configuration file (a variant of the shipped one).
    pub fn start_config(
        dir: &Path,
        ca: &CertificateAuthority,
        bind: &str,
        nodes: &[String],
        config: &Path,
    ) -> anyhow::Result<Self> {
        let issued = ca.issue("haproxy", &["127.0.0.1".into()])?;
        let pem = dir.join("haproxy.pem");
        std::fs::write(&pem, format!("{}{}", issued.cert_pem, issued.key_pem))?;
        let ca_pem = dir.join("haproxy-ca.pem");
        std::fs::write(&ca_pem, ca.cert_pem())?;
        let files = Files {
            bind: bind.to_string(),
            pem,
            ca_pem,
            log: dir.join(format!("haproxy-{}.log", bind.replace(':', "-"))),
            config: config.to_path_buf(),
        };
        let check = files
            .command(nodes)?
            .arg("-c")
            .arg("-f")
            .arg(&files.config)
            .output()
            .context("haproxy is installed by scripts/test.sh (Debian package haproxy)")?;
        if !check.status.success() {
            bail!("haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
        }
        let current = files.spawn(nodes, None)?;
        Ok(HaProxy {
            files,
            current,
            old: Vec::new(),
        })
    }

    /// Points the balancer at `nodes` with a soft reload: connections in flight finish on the
    /// old process while the new one accepts.
    pub fn reload(&mut self, nodes: &[String]) -> anyhow::Result<()> {
        self.old
            .retain_mut(|c| c.try_wait().ok().flatten().is_none());
        let next = self.files.spawn(nodes, Some(self.current.id()))?;
        let old = std::mem::replace(&mut self.current, next);
        self.old.push(old);
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.files.bind)
    }

    /// The balancer's log (HAProxy's own warnings: servers going down and up).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.files.log).unwrap_or_default()
    }

    /// Waits until the balancer answers `/health/ready` with 200 through some node.
    pub async fn wait_ready(&self, http: &reqwest::Client, within: Duration) -> anyhow::Result<()> {
        crate::wait_ready(http, &self.url("/health/ready"), within)
            .await
            .with_context(|| format!("haproxy log:\n{}", self.log()))
    }
}

impl Files {
    fn command(&self, nodes: &[String]) -> anyhow::Result<Command> {
        let [n1, n2, n3] = nodes else {
            bail!(
                "docs/ops/haproxy.cfg lists three nodes, not {}",
                nodes.len()
            );
        };
        let mut cmd = Command::new("haproxy");
        cmd.env("ROOMRAFT_LB_BIND", &self.bind)
            .env("ROOMRAFT_LB_CERT", &self.pem)
            .env("ROOMRAFT_CA", &self.ca_pem)
            .env("ROOMRAFT_NODE1", n1)
            .env("ROOMRAFT_NODE2", n2)
            .env("ROOMRAFT_NODE3", n3);
        Ok(cmd)
    }

    fn spawn(&self, nodes: &[String], replaces: Option<u32>) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = self.command(nodes)?;
        cmd.arg("-db").arg("-f").arg(&self.config);
        if let Some(pid) = replaces {
            cmd.arg("-sf").arg(pid.to_string());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting haproxy")
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        for c in self
            .old
            .iter_mut()
            .chain(std::iter::once(&mut self.current))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
