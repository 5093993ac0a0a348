//! Wiring: starts the cluster member and the client HTTPS listener, and stops both cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use roomraft_cluster::listener::ConnectionLimits;
use roomraft_cluster::tls::TlsMaterial;
use roomraft_cluster::Cluster;
use roomraft_ops::{Limiter, Metrics};

use crate::analytics::Analytics;
use crate::app::AppState;
use crate::config::Config;
use crate::domain::Bookings;
use crate::routes::router;

/// A running node.
pub struct Node {
    pub cluster: Cluster<Bookings>,
    http: axum_server::Handle,
    pub client_addr: std::net::SocketAddr,
    /// Drops idle rate-limit state every few seconds.
    housekeeping: tokio::task::JoinHandle<()>,
    /// The backup schedule, when backups are configured.
    backups: Option<tokio::task::JoinHandle<()>>,
    /// Sends this node's page views to the cluster in batches.
    analytics: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts the member and its HTTPS listener.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let tls = TlsMaterial::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
        let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
        let limits = Arc::new(
            Limiter::new(&config.limits)
                .map_err(|e| anyhow::anyhow!("invalid [limits] in the config: {e}"))?,
        );
        let backups = match &config.backup {
            Some(b) => {
                Some(Arc::new(b.open().map_err(|e| {
                    anyhow::anyhow!("invalid [backup] in the config: {e}")
                })?))
            }
            None => None,
        };
        let analytics = Arc::new(Analytics::new(config.analytics.clone(), metrics.clone())?);
        let cluster =
            Cluster::<Bookings>::start_observed(config.cluster.clone(), &tls, metrics.raft.clone())
                .await?;
        let schedule = backups.clone().map(|b| {
            tokio::spawn(crate::backup::run_schedule(
                cluster.clone(),
                b,
                metrics.clone(),
            ))
        });
        let housekeeping = tokio::spawn({
            let limits = limits.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(10));
                loop {
                    every.tick().await;
                    limits.housekeeping();
                }
            }
        });
        let batches = tokio::spawn(crate::analytics::run(cluster.clone(), analytics.clone()));
        let state = Arc::new(AppState {
            cluster: cluster.clone(),
            analytics,
            metrics: metrics.clone(),
            limits: limits.clone(),
            backups,
            metrics_token_sha256: config.metrics_token_sha256.clone(),
            operator_token_sha256: config.operator_token_sha256.clone(),
            password_min_length: config.password_min_length,
            sign_in_policy: crate::domain::SignInPolicy {
                failures: config.limits.sign_in_failures_per_account,
                refill_secs: 60,
                lock_max_secs: config.limits.sign_in_lock_max_seconds.min(u32::MAX as u64) as u32,
            },
            body: crate::app::BodyLimits {
                max_bytes: config.max_body_bytes,
                read: Duration::from_secs(config.connections.body_read_seconds.max(1)),
            },
            sessions: crate::app::SessionPolicy {
                idle: Duration::from_secs(config.session.idle_minutes * 60),
                absolute: Duration::from_secs(config.session.absolute_hours * 3600),
            },
        });
        let app = router(state)
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                config.max_concurrent_requests,
            ));
        let http = axum_server::Handle::new();
        let c = &config.connections;
        let seconds = |n: u64| Duration::from_secs(n.max(1));
        let connection_limits = ConnectionLimits {
            handshake: seconds(c.handshake_seconds),
            header_read: Some(seconds(c.header_read_seconds)),
            idle: Some(seconds(c.idle_seconds)),
            per_address: c.per_address,
            exempt: {
                let limits = limits.clone();
                Arc::new(move |ip| limits.is_trusted(ip))
            },
            closed: Some(metrics.http.connections_closed.clone()),
        };
        let client_addr = roomraft_cluster::listener::serve_tls(
            config.client_listen,
            tls.client_listener_config()?,
            app,
            http.clone(),
            "client",
            connection_limits,
        )
        .with_context(|| {
            format!(
                "cannot start the client listener on {}",
                config.client_listen
            )
        })?;
        tracing::info!(node = cluster.id(), client = %client_addr, peer = %config.cluster.peer_listen, "node started");
        Ok(Self {
            cluster,
            http,
            client_addr,
            housekeeping,
            backups: schedule,
            analytics: batches,
        })
    }

    /// Stops accepting requests, lets running ones finish (briefly), then stops Raft.
    pub async fn shutdown(&self) {
        self.http.graceful_shutdown(Some(Duration::from_secs(5)));
        self.housekeeping.abort();
        self.analytics.abort();
        if let Some(b) = &self.backups {
            b.abort();
        }
        self.cluster.shutdown().await;
    }
}

/// `roomraft serve`: runs one node until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
