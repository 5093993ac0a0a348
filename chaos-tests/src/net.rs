//! A fault-injecting TCP proxy for peer traffic.
//!
//! Every node advertises a proxy address as its peer address, and binds its outgoing peer
//! connections to its own loopback address (`127.0.0.{10 + id}`), so the proxy in front of node
//! `dst` knows which node `src` a connection comes from. Faults are set per directed link
//! `src -> dst` and apply to the bytes flowing that way, whichever side opened the connection:
//! - blocked: bytes stall in the proxy until the link heals (a partition; TCP keeps the bytes, so
//!   they arrive late, as after a long outage);
//! - delay: each chunk is held this long before it is passed on;
//! - a reset closes every open connection on the link (the next ones are made afresh).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub type NodeId = u64;

/// The loopback address node `id` sends its peer traffic from.
pub fn source_ip(id: NodeId) -> IpAddr {
    assert!(
        id < 200,
        "node ids above 199 have no loopback source address"
    );
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

fn node_of(ip: IpAddr) -> Option<NodeId> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] >= 10 => {
            Some(v4.octets()[3] as NodeId - 10)
        }
        _ => None,
    }
}

/// The fault on one directed link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub blocked: bool,
    pub delay: Duration,
    /// Bumped to close the link's open connections.
    pub resets: u64,
}

#[derive(Debug, Clone, Default)]
struct Faults {
    links: HashMap<(NodeId, NodeId), Link>,
}

impl Faults {
    fn link(&self, src: NodeId, dst: NodeId) -> Link {
        self.links.get(&(src, dst)).copied().unwrap_or_default()
    }
}

/// The proxies in front of every node's peer listener, and the faults they apply.
#[derive(Clone)]
pub struct Net {
    faults: Arc<watch::Sender<Faults>>,
    /// The proxies' accept loops, stopped by [`Net::shutdown`].
    listeners: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}

impl Net {
    pub fn new() -> Self {
        Self {
            faults: Arc::new(watch::channel(Faults::default()).0),
            listeners: Arc::default(),
        }
    }

    /// Starts the proxy for node `dst` on `listen`, forwarding to its real peer listener.
    pub async fn proxy(
        &self,
        dst: NodeId,
        listen: SocketAddr,
        real: SocketAddr,
    ) -> std::io::Result<()> {
        let listener = TcpListener::bind(listen).await?;
        let faults = self.faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, from)) = listener.accept().await else {
                    continue;
                };
                // Traffic from an address that is no node (a test's own probe) is never faulted.
                let src = node_of(from.ip()).unwrap_or(0);
                tokio::spawn(relay(inbound, real, src, dst, faults.subscribe()));
            }
        });
        self.listeners.lock().unwrap().push(task.abort_handle());
        Ok(())
    }

    /// Stops every proxy listener (their ports are free again) and closes open connections.
    pub fn shutdown(&self) {
        for l in self.listeners.lock().unwrap().drain(..) {
            l.abort();
        }
        self.update(|f| {
            for link in f.links.values_mut() {
                link.resets += 1;
            }
        });
    }

    fn update(&self, f: impl FnOnce(&mut Faults)) {
        self.faults.send_modify(f);
    }

    /// Blocks or unblocks the bytes flowing `src -> dst`.
    pub fn set_blocked(&self, src: NodeId, dst: NodeId, blocked: bool) {
        self.update(|f| f.links.entry((src, dst)).or_default().blocked = blocked);
    }

    /// Delays every chunk flowing `src -> dst`.
    pub fn set_delay(&self, src: NodeId, dst: NodeId, delay: Duration) {
        self.update(|f| f.links.entry((src, dst)).or_default().delay = delay);
    }

    /// Closes every open connection between `a` and `b`.
    pub fn reset(&self, a: NodeId, b: NodeId) {
        self.update(|f| {
            f.links.entry((a, b)).or_default().resets += 1;
            f.links.entry((b, a)).or_default().resets += 1;
        });
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        self.update(|f| {
            for &a in side_a {
                for &b in side_b {
                    f.links.entry((a, b)).or_default().blocked = true;
                    f.links.entry((b, a)).or_default().blocked = true;
                }
            }
        });
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.update(|f| {
            for link in f.links.values_mut() {
                link.blocked = false;
                link.delay = Duration::ZERO;
            }
        });
    }
}

async fn relay(
    inbound: TcpStream,
    real: SocketAddr,
    src: NodeId,
    dst: NodeId,
    faults: watch::Receiver<Faults>,
) {
    let Ok(outbound) = TcpStream::connect(real).await else {
        return; // the node is down: the caller sees its connection closed
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pump(in_read, out_write, src, dst, faults.clone());
    let down = pump(out_read, in_write, dst, src, faults);
    // Either direction ending (EOF, error, reset) ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies bytes flowing `from -> to`, applying that link's faults.
async fn pump(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    from: NodeId,
    to: NodeId,
    mut faults: watch::Receiver<Faults>,
) {
    let resets_at_start = faults.borrow().link(from, to).resets;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = read.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A reset closes the connection even while it is idle.
            _ = wait_reset(&mut faults, from, to, resets_at_start) => return,
        };
        // Hold the bytes while the link is blocked; a reset meanwhile drops them.
        let delay = loop {
            let link = faults.borrow_and_update().link(from, to);
            if link.resets != resets_at_start {
                return;
            }
            if !link.blocked {
                break link.delay;
            }
            if faults.changed().await.is_err() {
                return;
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if write.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_reset(faults: &mut watch::Receiver<Faults>, from: NodeId, to: NodeId, at_start: u64) {
    let mut rx = faults.clone();
    loop {
        if rx.borrow_and_update().link(from, to).resets != at_start {
            return;
        }
        if rx.changed().await.is_err() {
            // The harness is gone: never resolve, the connection ends with its sockets.
            std::future::pending::<()>().await;
        }
    }
}
