//! Proposal batching: the leader puts the commands that arrive while earlier proposals are still
//! being committed into one log entry.
//!
//! Every log entry costs an append, a flush to disk on the leader and on each follower, a place in
//! an append request and an apply call, whatever it holds. Under load, commands queue behind the
//! few proposals in flight and go out together, so those costs are shared; with one client
//! nothing waits and each command is its own entry, as before.
//!
//! An entry's payload is one encoded command, or several behind [`BATCH_TAG`]. Commands of one
//! entry are applied in order, all at the entry's log index.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};

use crate::store::{decode, encode};
use crate::types::{AppRequest, Raft};
use crate::wire::ByteStrings;

/// Marks an entry holding several commands. A single command is stored bare, as it always was;
/// an application's command encoding must not begin with these bytes (bincode of an enum begins
/// with its variant number as a little-endian u32, far below `0xff`).
pub(crate) const BATCH_TAG: &[u8] = b"\xffRRBATCH";

/// At most this many commands share an entry.
const MAX_COMMANDS: usize = 256;
/// At most this many bytes of commands share an entry.
const MAX_BYTES: usize = 1 << 20;
/// A command larger than this gets an entry of its own (imports: they may use most of the
/// application's ids for one entry).
const ALONE_BYTES: usize = 64 << 10;
/// Proposals the leader keeps in flight at once; commands arriving meanwhile wait and batch up.
/// One makes entries larger and fsyncs fewer. Alternating A/B runs at 64 clients (2-core
/// machine, docs/benchmarks.md) gave it 0–37 % more writes a second than two, about 11 % on
/// average, with a lower p99; a command waits at most one commit round before it is proposed.
const IN_FLIGHT: usize = 1;

/// The payload of a log entry holding `commands`.
pub(crate) fn encode_entry(mut commands: Vec<Vec<u8>>) -> Vec<u8> {
    if commands.len() == 1 {
        return commands.pop().expect("one command");
    }
    let mut out = BATCH_TAG.to_vec();
    out.extend(encode(&ByteStrings(commands)));
    out
}

/// The commands of a log entry's payload.
pub(crate) fn decode_entry(payload: Vec<u8>) -> Result<Vec<Vec<u8>>, crate::error::StoreError> {
    match payload.strip_prefix(BATCH_TAG) {
        Some(rest) => decode("command batch", rest).map(|b: ByteStrings| b.0),
        None => Ok(vec![payload]),
    }
}

/// What the leader answered for one command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WriteAnswer {
    pub(crate) index: u64,
    #[serde(with = "serde_bytes")]
    pub(crate) outcome: Vec<u8>,
}

/// Why a proposal was not committed.
#[derive(Debug, Clone)]
pub(crate) enum ProposeError {
    /// This node does not lead (any more).
    NotLeader { leader: Option<u64> },
    /// A membership change was refused.
    Refused { reason: String },
    /// Raft stopped.
    Stopped { reason: String },
}

struct Pending {
    command: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Result<WriteAnswer, ProposeError>>,
}

/// Hands commands to the batching task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    /// Starts the batching task for `raft`.
    pub(crate) fn start(raft: Raft) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(run(raft, rx)))
    }

    /// Proposes `command` in the next batch and waits until it is applied, or until `deadline`
    /// (`None`: the outcome is unknown).
    pub(crate) async fn propose(
        &self,
        command: Vec<u8>,
        deadline: Instant,
    ) -> Option<Result<WriteAnswer, ProposeError>> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            command,
            deadline,
            reply,
        };
        if self.tx.send(pending).is_err() {
            return Some(Err(ProposeError::Stopped {
                reason: "the proposal batcher has stopped".into(),
            }));
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => Some(answer),
            // The batch gave up at its deadline without an answer: the outcome is unknown.
            Err(_) | Ok(Err(_)) => None,
        }
    }
}

/// A queue drained in batches, with a bounded number of batches in flight: items that arrive
/// while every slot is taken wait, and go together in the next batch.
pub(crate) struct Queue<P> {
    rx: mpsc::UnboundedReceiver<P>,
    carried: Option<P>,
    in_flight: Arc<Semaphore>,
}

impl<P> Queue<P> {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<P>, in_flight: usize) -> Self {
        Self {
            rx,
            carried: None,
            in_flight: Arc::new(Semaphore::new(in_flight)),
        }
    }

    /// The first item of the next batch and a free slot for it; `None` once every sender is gone.
    /// Waiting for the slot is what lets the batch grow.
    pub(crate) async fn first(&mut self) -> Option<(P, OwnedSemaphorePermit)> {
        let first = match self.carried.take() {
            Some(p) => p,
            None => self.rx.recv().await?,
        };
        let permit = self.in_flight.clone().acquire_owned().await.ok()?;
        Some((first, permit))
    }

    /// The next item already waiting, if any.
    pub(crate) fn waiting(&mut self) -> Option<P> {
        self.rx.try_recv().ok()
    }

    /// Keeps `item` (which does not fit this batch) to start the next one.
    pub(crate) fn carry(&mut self, item: P) {
        self.carried = Some(item);
    }
}

async fn run(raft: Raft, rx: mpsc::UnboundedReceiver<Pending>) {
    let mut queue = Queue::new(rx, IN_FLIGHT);
    while let Some((first, permit)) = queue.first().await {
        let mut bytes = first.command.len();
        let mut batch = vec![first];
        if bytes <= ALONE_BYTES {
            while batch.len() < MAX_COMMANDS {
                let Some(p) = queue.waiting() else { break };
                let n = p.command.len();
                if n > ALONE_BYTES || bytes + n > MAX_BYTES {
                    queue.carry(p);
                    break;
                }
                bytes += n;
                batch.push(p);
            }
        }
        // A caller that stopped waiting (deadline passed) gets nothing proposed for it.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch).await;
            drop(permit);
        });
    }
}

async fn propose(raft: &Raft, batch: Vec<Pending>) {
    // Nobody waits longer than the latest caller; an isolated leader that can never commit
    // must not hold its slot for ever.
    let deadline = batch
        .iter()
        .map(|p| p.deadline)
        .max()
        .expect("a batch is never empty");
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let count = commands.len();
    let term = raft.metrics().borrow().current_term;
    let write = timeout_at(
        deadline,
        raft.client_write(AppRequest(encode_entry(commands))),
    );
    let written = tokio::select! {
        written = write => match written {
            Ok(written) => written,
            // Dropping the replies tells every caller the outcome is unknown.
            Err(_) => return,
        },
        // openraft 0.9 does not always answer the writes of a leader that steps down (one that
        // restarted believing it led, say); they would hold their slots until the deadline and
        // stall every proposal after them. The callers retry through the new leader instead:
        // commands are idempotent, so one that does commit is not applied twice.
        leader = term_ended(raft, term) => {
            for reply in replies {
                let _ = reply.send(Err(ProposeError::NotLeader { leader }));
            }
            return;
        }
    };
    let result = written
        .map_err(|e| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ProposeError::NotLeader {
                leader: f.leader_id,
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                ProposeError::Refused {
                    reason: e.to_string(),
                }
            }
            RaftError::Fatal(f) => ProposeError::Stopped {
                reason: f.to_string(),
            },
        })
        .and_then(|resp| {
            let ByteStrings(outcomes) =
                decode("batch outcomes", &resp.data.0).map_err(|e| ProposeError::Stopped {
                    reason: e.to_string(),
                })?;
            if outcomes.len() != count {
                return Err(ProposeError::Stopped {
                    reason: format!("{} outcomes for {count} commands", outcomes.len()),
                });
            }
            Ok((resp.log_id.index, outcomes))
        });
    match result {
        Ok((index, outcomes)) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(WriteAnswer { index, outcome }));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Resolves, with the leader then known, once this node's term is no longer `term`.
async fn term_ended(raft: &Raft, term: u64) -> Option<u64> {
    let mut rx = raft.metrics();
    loop {
        {
            let m = rx.borrow_and_update();
            if m.current_term != term {
                return m.current_leader;
            }
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let one = vec![b"\x00\x00\x00\x00abc".to_vec()];
        assert_eq!(
            encode_entry(one.clone()),
            one[0],
            "one command is stored bare"
        );
        assert_eq!(decode_entry(encode_entry(one.clone())).unwrap(), one);
        let many = vec![b"a".to_vec(), Vec::new(), b"ccc".to_vec()];
        let payload = encode_entry(many.clone());
        assert!(payload.starts_with(BATCH_TAG));
        assert_eq!(decode_entry(payload).unwrap(), many);
        assert!(
            decode_entry(BATCH_TAG.to_vec()).is_err(),
            "a cut batch is an error"
        );
    }
}
