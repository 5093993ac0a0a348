//! HTTPS listeners: TLS, HTTP/1.1 and HTTP/2, and the limits that keep slow or greedy clients
//! from holding connections: a TLS handshake deadline, a deadline for an HTTP/1 request head, an
//! idle timeout for a connection with no request in flight (HTTP/1 keep-alive and HTTP/2 alike),
//! and a cap on the connections open at once from one address.
//!
//! A request body that trickles in is the application's to bound (it knows which routes take
//! bodies); see `roomraft-node`'s body deadline.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use axum_server::accept::Accept;
use hyper_util::rt::TokioTimer;
use parking_lot::Mutex;
use prometheus::IntCounterVec;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::ClusterError;

/// What one listener allows each client connection.
#[derive(Clone)]
pub struct ConnectionLimits {
    /// The TLS handshake must finish within this.
    pub handshake: Duration,
    /// HTTP/1: a request's head (request line and headers) must arrive within this from when
    /// the connection starts waiting for it. This also ends an idle HTTP/1 keep-alive.
    pub header_read: Option<Duration>,
    /// A connection with no request in flight for this long is closed (bytes that trickle in
    /// without making a request do not keep it open).
    pub idle: Option<Duration>,
    /// Most connections open at once from one address; 0 for no cap.
    pub per_address: usize,
    /// Addresses the per-address cap does not apply to (load balancers, which carry many
    /// clients' connections and enforce a cap of their own).
    pub exempt: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    /// Counts connections this listener ended, by `reason` (`per_address`, `idle`).
    pub closed: Option<IntCounterVec>,
}

impl ConnectionLimits {
    /// No limits but the TLS handshake's: the peer listener, whose clients are cluster members
    /// proven by their certificates.
    pub fn unlimited() -> Self {
        ConnectionLimits {
            handshake: Duration::from_secs(10),
            header_read: None,
            idle: None,
            per_address: 0,
            exempt: Arc::new(|_| true),
            closed: None,
        }
    }

    fn count(&self, reason: &str) {
        if let Some(c) = &self.closed {
            c.with_label_values(&[reason]).inc();
        }
    }
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("handshake", &self.handshake)
            .field("header_read", &self.header_read)
            .field("idle", &self.idle)
            .field("per_address", &self.per_address)
            .finish_non_exhaustive()
    }
}

/// Binds `listen` and serves `router` over TLS with `config` until `handle` shuts it down,
/// holding every connection to `limits`. Returns the bound address. `what` names the listener
/// in logs.
pub fn serve_tls(
    listen: SocketAddr,
    config: ServerConfig,
    router: axum::Router,
    handle: axum_server::Handle,
    what: &'static str,
    limits: ConnectionLimits,
) -> Result<SocketAddr, ClusterError> {
    let bind_err = |source| ClusterError::Bind {
        addr: listen.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(limits.handshake)
        .acceptor(ConnAcceptor {
            shared: Arc::new(Shared {
                open: Mutex::new(HashMap::new()),
                limits: limits.clone(),
            }),
        });
    let mut server = axum_server::from_tcp(listener)
        .acceptor(acceptor)
        .handle(handle);
    let builder = server.http_builder();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder.http2().timer(TokioTimer::new());
    tokio::spawn(async move {
        // Connection info lets handlers see the client's socket address (rate limits, logs).
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = server.serve(service).await {
            tracing::error!(listener = what, error = %e, "listener stopped");
        }
    });
    Ok(local)
}

/// What every connection of one listener shares.
struct Shared {
    /// Connections open per address (only addresses the cap applies to).
    open: Mutex<HashMap<IpAddr, usize>>,
    limits: ConnectionLimits,
}

/// One connection's place in the per-address count, given back when the connection ends.
struct Slot {
    shared: Arc<Shared>,
    addr: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(addr) = self.addr {
            let mut open = self.shared.open.lock();
            if let Some(n) = open.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&addr);
                }
            }
        }
    }
}

/// The state of one connection that its stream and its service share.
struct Conn {
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Since when no request has been in flight.
    idle_since: Mutex<Instant>,
    _slot: Slot,
}

impl Conn {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }
}

/// A request in flight on its connection, until its response body is dropped.
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            *since = Instant::now();
        }
    }
}

/// Sets TCP_NODELAY, admits the connection under the per-address cap, and tracks it.
#[derive(Clone)]
struct ConnAcceptor {
    shared: Arc<Shared>,
}

impl<S> Accept<TcpStream, S> for ConnAcceptor {
    type Stream = Tracked<TcpStream>;
    type Service = Counted<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.admit(stream, service))
    }
}

impl ConnAcceptor {
    fn admit<S>(
        &self,
        stream: TcpStream,
        service: S,
    ) -> io::Result<(Tracked<TcpStream>, Counted<S>)> {
        // TCP_NODELAY: an answer goes out as several small TLS records (HTTP/2 headers, then
        // data). With Nagle's algorithm the later ones wait for the peer to acknowledge the
        // first, and the peer delays that acknowledgement by up to 40 ms: a stalled append
        // answer stalls every commit behind it.
        stream.set_nodelay(true)?;
        let limits = &self.shared.limits;
        let ip = stream.peer_addr()?.ip();
        let capped = limits.per_address > 0 && !(limits.exempt)(ip);
        if capped {
            let mut open = self.shared.open.lock();
            let n = open.entry(ip).or_insert(0);
            if *n >= limits.per_address {
                drop(open);
                limits.count("per_address");
                tracing::warn!(client = %ip, cap = limits.per_address, "connection refused: too many open from this address");
                return Err(io::Error::other("too many connections from this address"));
            }
            *n += 1;
        }
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            _slot: Slot {
                shared: self.shared.clone(),
                addr: capped.then_some(ip),
            },
        });
        let tracked = Tracked {
            inner: stream,
            conn: conn.clone(),
            idle: limits.idle,
            timer: None,
            limits: limits.clone(),
        };
        Ok((
            tracked,
            Counted {
                inner: service,
                conn,
            },
        ))
    }
}

/// A connection's byte stream, which fails its reads once the connection has had no request in
/// flight for the idle timeout (hyper then closes it).
struct Tracked<T> {
    inner: T,
    conn: Arc<Conn>,
    idle: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    limits: ConnectionLimits,
}

impl<T> Tracked<T> {
    /// Called when a read would wait: polls the idle timer, and when it fires looks again at the
    /// connection: idle long enough, and the read fails; else the timer is set for the next
    /// look. (It is reset only when it fires, so a busy connection costs no timer work per read.)
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(idle) = self.idle else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + idle)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let busy = self.conn.in_flight.load(Ordering::SeqCst) > 0;
            let now = Instant::now();
            // While a request is in flight, look again in a quarter of the timeout, so the
            // connection closes at most a quarter late once it falls idle.
            let due = if busy {
                now + idle / 4
            } else {
                *self.conn.idle_since.lock() + idle
            };
            if !busy && due <= now {
                self.limits.count("idle");
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the idle timeout",
                ));
            }
            timer.as_mut().reset(due);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            ready => ready,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connection's service, marking each request in flight until its response is sent.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    conn: Arc<Conn>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ReqBody> tower::Service<Request<ReqBody>> for Counted<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: http_body::Body + Unpin,
{
    type Response = Response<Guarded<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let guard = self.conn.begin();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|body| Guarded {
                inner: body,
                _in_flight: guard,
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
pub struct Guarded<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: http_body::Body + Unpin> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
