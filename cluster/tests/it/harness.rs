use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use roomraft_cluster::tls::{CertificateAuthority, TlsMaterial};
use roomraft_cluster::{
    App, Cluster, ClusterConfig, LoadError, NodeId, NodeInfo, Timeouts, WriteSet,
};
use serde::{Deserialize, Serialize};

/// A test application: a slot may be claimed once; later claims see who holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub slots: BTreeMap<String, Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub owner: String,
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Cmd {
    Claim { slot: String, owner: String },
    Release { slot: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Claimed { index: u64 },
    Taken { owner: String },
    Released,
}

impl App for Claims {
    type Command = Cmd;
    type Outcome = Outcome;

    fn apply(&mut self, index: u64, command: Cmd, writes: &mut WriteSet) -> Outcome {
        match command {
            Cmd::Claim { slot, owner } => {
                if let Some(c) = self.slots.get(&slot) {
                    return Outcome::Taken {
                        owner: c.owner.clone(),
                    };
                }
                let claim = Claim { owner, index };
                writes.put(slot.as_bytes(), bincode::serialize(&claim).unwrap());
                self.slots.insert(slot, claim);
                Outcome::Claimed { index }
            }
            Cmd::Release { slot } => {
                self.slots.remove(&slot);
                writes.delete(slot.as_bytes());
                Outcome::Released
            }
        }
    }

    fn load(records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Self, LoadError> {
        let mut app = Claims::default();
        for (k, v) in records {
            let key = String::from_utf8_lossy(&k).to_string();
            let claim = bincode::deserialize(&v).map_err(|e| LoadError {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            app.slots.insert(key, claim);
        }
        Ok(app)
    }

    fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.slots
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), bincode::serialize(v).unwrap()))
            .collect()
    }
}

pub const WAIT: Duration = Duration::from_secs(20);

/// Three (or more) members in this process, talking over real mutual TLS on loopback.
pub struct TestCluster {
    pub nodes: BTreeMap<NodeId, Option<Cluster<Claims>>>,
    pub configs: BTreeMap<NodeId, ClusterConfig>,
    pub tls: BTreeMap<NodeId, TlsMaterial>,
    pub ca: CertificateAuthority,
    _dir: tempfile::TempDir,
}

pub fn node_info(port_base: u16, id: NodeId) -> NodeInfo {
    NodeInfo {
        peer_addr: format!("127.0.0.1:{}", port_base + 100 + id as u16),
        client_addr: format!("127.0.0.1:{}", port_base + id as u16),
    }
}

impl TestCluster {
    /// Starts `n` members on ports `port_base + 100 + id`; `tune` adjusts every config.
    pub async fn start(port_base: u16, n: u64, tune: impl Fn(&mut ClusterConfig)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("test cluster CA").unwrap();
        let members: BTreeMap<NodeId, NodeInfo> =
            (1..=n).map(|id| (id, node_info(port_base, id))).collect();
        let mut cluster = TestCluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            tls: BTreeMap::new(),
            ca,
            _dir: dir,
        };
        for id in 1..=n {
            let mut config = ClusterConfig {
                node_id: id,
                data_dir: cluster._dir.path().join(format!("node{id}")),
                peer_listen: members[&id].peer_addr.parse().unwrap(),
                advertise: members[&id].clone(),
                peer_source_ip: None,
                initial_members: members.clone(),
                timeouts: Timeouts::default(),
                snapshot_every_entries: 20_000,
                snapshot_scales_with_state: true,
                keep_logs_after_snapshot: 2_000,
                peer_body_limit_bytes: 64 << 20,
            };
            tune(&mut config);
            let tls = cluster
                .ca
                .node_material(
                    &format!("node{id}"),
                    &["127.0.0.1".into(), "localhost".into()],
                )
                .unwrap();
            cluster.configs.insert(id, config);
            cluster.tls.insert(id, tls);
        }
        for id in 1..=n {
            cluster.restart(id).await;
        }
        cluster.leader().await;
        cluster
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.configs[&id].data_dir.clone()
    }

    pub fn node(&self, id: NodeId) -> &Cluster<Claims> {
        self.nodes[&id].as_ref().expect("node is running")
    }

    pub fn running(&self) -> impl Iterator<Item = &Cluster<Claims>> {
        self.nodes.values().flatten()
    }

    /// Starts (or restarts) member `id` from its data directory.
    pub async fn restart(&mut self, id: NodeId) {
        let node = Cluster::start(self.configs[&id].clone(), &self.tls[&id])
            .await
            .expect("node starts");
        self.nodes.insert(id, Some(node));
    }

    /// Stops member `id` as a crash would leave it (no further writes), keeping its data.
    pub async fn stop(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.insert(id, None).flatten() {
            node.shutdown().await;
        }
    }

    /// Waits until the running members agree on a leader, and returns it.
    pub async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<NodeId>> =
                self.running().map(|n| n.status().leader_id).collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l))
                    && self.nodes.get(l).is_some_and(|n| n.is_some())
                {
                    return *l;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader within {WAIT:?}: {leaders:?}"
            );
            let n = self.running().next().unwrap();
            let _ = n
                .raft()
                .wait(Some(Duration::from_millis(100)))
                .metrics(|_| false, "leader change")
                .await;
        }
    }

    pub fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, n)| **id != leader && n.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Waits until every running member has applied `index`.
    pub async fn await_applied(&self, index: u64) {
        for n in self.running() {
            n.raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index), "applied everywhere")
                .await
                .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", n.id()));
        }
    }

    pub async fn claim(&self, via: NodeId, slot: &str) -> Outcome {
        let cmd = Cmd::Claim {
            slot: slot.into(),
            owner: format!("client-via-{via}"),
        };
        self.node(via).write(&cmd).await.expect("write succeeds").1
    }
}
