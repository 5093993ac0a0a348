//! The client side of the peer transport: Raft RPCs and cluster-internal calls over HTTP/2 with
//! mutual TLS. Bodies are bincode; every call has a deadline.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::RaftMetrics;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::encode;
use crate::tls::TlsMaterial;
use crate::types::{NodeId, NodeInfo, TypeConfig};
use crate::{ClusterError, Timeouts};

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made: the request was certainly not delivered.
    #[error("peer {addr} unreachable: {source}")]
    Unreachable {
        addr: String,
        source: reqwest::Error,
    },
    #[error("peer {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("peer {addr} call failed: {source}")]
    Transport {
        addr: String,
        source: reqwest::Error,
    },
    #[error("peer {addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
    #[error("peer {addr} answered with an undecodable body: {reason}")]
    Decode { addr: String, reason: String },
}

/// An HTTP/2 client holding this node's certificate; one multiplexed connection per peer.
#[derive(Clone)]
pub(crate) struct PeerClient {
    http: reqwest::Client,
}

impl PeerClient {
    pub(crate) fn new(
        tls: &TlsMaterial,
        timeouts: &Timeouts,
        source_ip: Option<std::net::IpAddr>,
    ) -> Result<Self, ClusterError> {
        let http = reqwest::Client::builder()
            .local_address(source_ip)
            .use_preconfigured_tls(tls.peer_client_config()?)
            .http2_prior_knowledge()
            .connect_timeout(Duration::from_millis(timeouts.connect_ms))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .http2_keep_alive_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClusterError::Tls {
                reason: format!("cannot build peer client: {e}"),
            })?;
        Ok(Self { http })
    }

    /// POSTs `req` (bincode) to `https://{addr}{path}` and decodes the bincode answer.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let url = format!("https://{addr}{path}");
        let fut = async {
            let resp = self
                .http
                .post(&url)
                .header("content-type", "application/octet-stream")
                .body(encode(req))
                .send()
                .await
                .map_err(|source| classify(addr, source))?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(|source| CallError::Transport {
                addr: addr.to_string(),
                source,
            })?;
            if !status.is_success() {
                let body = String::from_utf8_lossy(&body).chars().take(500).collect();
                return Err(CallError::Status {
                    addr: addr.to_string(),
                    status: status.as_u16(),
                    body,
                });
            }
            bincode::deserialize(&body).map_err(|e| CallError::Decode {
                addr: addr.to_string(),
                reason: e.to_string(),
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }
}

fn classify(addr: &str, source: reqwest::Error) -> CallError {
    if source.is_connect() {
        CallError::Unreachable {
            addr: addr.to_string(),
            source,
        }
    } else {
        CallError::Transport {
            addr: addr.to_string(),
            source,
        }
    }
}

/// Creates a [`PeerConnection`] per target for openraft.
pub(crate) struct PeerNetworkFactory {
    pub(crate) id: NodeId,
    pub(crate) client: PeerClient,
    pub(crate) metrics: Arc<RaftMetrics>,
}

pub(crate) struct PeerConnection {
    id: NodeId,
    target: NodeId,
    node: NodeInfo,
    client: PeerClient,
    metrics: Arc<RaftMetrics>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerConnection {
        PeerConnection {
            id: self.id,
            target,
            node: node.clone(),
            client: self.client.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl PeerConnection {
    async fn rpc<Req, Resp, E>(
        &self,
        action: RPCTypes,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .client
            .call(&self.node.peer_addr, path, req, ttl)
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Timeout { .. } => RPCError::Timeout(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout: ttl,
                }),
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.rpc(
            RPCTypes::AppendEntries,
            "/raft/append",
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let last_chunk = rpc.done;
        let answer = self
            .rpc(
                RPCTypes::InstallSnapshot,
                "/raft/snapshot",
                &rpc,
                option.hard_ttl(),
            )
            .await;
        if last_chunk && answer.is_ok() {
            self.metrics.snapshots_sent.inc();
        }
        answer
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.rpc(RPCTypes::Vote, "/raft/vote", &rpc, option.hard_ttl())
            .await
    }
}
