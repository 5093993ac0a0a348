//! Forward batching: a follower sends the writes its clients give it to the leader together, one
//! peer request per batch, as the leader puts the commands it receives in one log entry.
//!
//! Every peer request costs both ends an HTTP/2 stream, headers, encoding and a task, whatever it
//! carries. Under load, writes queue behind the few forwards in flight and go out together; with
//! one client nothing waits and each write is forwarded alone, as before.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

use crate::metrics::RaftMetrics;

use crate::batch::{Queue, WriteAnswer};
use crate::cluster::{ForwardError, ForwardedWrite};
use crate::network::{CallError, PeerClient};

/// At most this many writes share a forward.
const MAX_WRITES: usize = 256;
/// At most this many bytes of commands share a forward.
const MAX_BYTES: usize = 1 << 20;
/// Forwards in flight at once; writes arriving meanwhile wait and batch up.
const IN_FLIGHT: usize = 3;

/// The peer path of a batch of forwarded writes.
pub(crate) const PATH: &str = "/cluster/writes";

/// Why a forward got no answer from the leader.
#[derive(Debug, Clone)]
pub(crate) enum Failed {
    /// No connection could be made: the write was certainly not delivered.
    Unreachable,
    /// No answer in time: the write may or may not have been applied.
    Timeout,
    /// Delivered, perhaps, but the answer was lost.
    Other(String),
}

impl From<CallError> for Failed {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unreachable { .. } => Failed::Unreachable,
            CallError::Timeout { .. } => Failed::Timeout,
            other => Failed::Other(other.to_string()),
        }
    }
}

/// What the leader answered for one forwarded write.
pub(crate) type Forwarded = Result<Result<WriteAnswer, ForwardError>, Failed>;

struct Pending {
    addr: String,
    command: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Forwarded>,
}

/// Hands writes to the forwarding task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Forwarder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// Starts the forwarding task, which sends through `peers`.
    pub(crate) fn start(
        peers: PeerClient,
        metrics: Arc<RaftMetrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(run(peers, metrics, rx)))
    }

    /// Forwards `command` to the leader at peer address `addr` in the next batch for it, and
    /// waits for its answer until `deadline` (then: [`Failed::Timeout`]).
    pub(crate) async fn forward(
        &self,
        addr: &str,
        command: Vec<u8>,
        deadline: Instant,
    ) -> Forwarded {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            addr: addr.to_string(),
            command,
            deadline,
            reply,
        };
        if self.tx.send(pending).is_err() {
            return Err(Failed::Unreachable);
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            Err(_) | Ok(Err(_)) => Err(Failed::Timeout),
        }
    }
}

async fn run(peers: PeerClient, metrics: Arc<RaftMetrics>, rx: mpsc::UnboundedReceiver<Pending>) {
    let mut queue = Queue::new(rx, IN_FLIGHT);
    while let Some((first, permit)) = queue.first().await {
        let mut bytes = first.command.len();
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES {
            let Some(p) = queue.waiting() else { break };
            // A batch goes to one leader: a write for another (after a leader change) waits.
            if p.addr != batch[0].addr || bytes + p.command.len() > MAX_BYTES {
                queue.carry(p);
                break;
            }
            bytes += p.command.len();
            batch.push(p);
        }
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        metrics.forward_requests.inc();
        metrics.forwarded_writes.inc_by(batch.len() as u64);
        let peers = peers.clone();
        tokio::spawn(async move {
            send(&peers, batch).await;
            drop(permit);
        });
    }
}

async fn send(peers: &PeerClient, batch: Vec<Pending>) {
    let now = Instant::now();
    let addr = batch[0].addr.clone();
    let latest = batch
        .iter()
        .map(|p| p.deadline)
        .max()
        .expect("a batch is never empty");
    let (writes, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|p| {
            let budget = p.deadline.saturating_duration_since(now);
            (
                ForwardedWrite::new(p.command, budget.as_millis() as u64),
                p.reply,
            )
        })
        .unzip();
    let count = writes.len();
    let answer: Result<Vec<Result<WriteAnswer, ForwardError>>, CallError> = peers
        .call(&addr, PATH, &writes, latest.saturating_duration_since(now))
        .await;
    match answer {
        Ok(answers) if answers.len() == count => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            let failed = Failed::Other(format!("{} answers for {count} writes", answers.len()));
            for reply in replies {
                let _ = reply.send(Err(failed.clone()));
            }
        }
        Err(e) => {
            let failed = Failed::from(e);
            for reply in replies {
                let _ = reply.send(Err(failed.clone()));
            }
        }
    }
}
