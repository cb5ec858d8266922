//! `ccgate serve`: the gateway process.
//!
//! Workers ([`worker`]), one per core, accept connections on the entry
//! points ([`listener`]); each request is routed
//! ([`routing`], with the rules of [`crate::rule`]) through its router's middlewares to a service
//! ([`proxy`]) or to `forward-auth@internal` ([`handler`]), and logged
//! ([`access_log`]). `/ping` and `/metrics` answer on the entry points the
//! configuration names. With `providers.file.watch`, changed files are
//! reloaded ([`reload`]). SIGTERM or SIGINT stops accepting and lets
//! in-flight requests finish for up to the longest
//! `transport.lifeCycle.graceTimeOut` of the entry points ([`grace_period`]).
//! Connections are timed by [`transport`]. A WebSocket handshake the
//! middlewares allow becomes a tunnel to its server ([`websocket`]).

mod access_log;
mod connector;
mod error;
mod h1_client;
mod h1_server;
mod h2_pool;
mod handler;
mod header_lines;
mod health;
mod listener;
mod metrics;
mod proxy;
mod reload;
mod routing;
mod sources;
#[cfg(test)]
mod testing;
mod transport;
mod upstream;
mod websocket;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::{self, Config, LogFormat};
use access_log::AccessLog;
pub(crate) use error::StartError;
pub(crate) use handler::Gateway;
use listener::EntryPoint;
pub(crate) use metrics::GatewayMetrics;
use routing::Routing;
#[cfg(feature = "kubernetes")]
pub(crate) use sources::Discovered;
pub(crate) use sources::Sources;

/// How long in-flight requests may take to finish after SIGTERM/SIGINT:
/// the longest `transport.lifeCycle.graceTimeOut` of the entry points
/// (one drain waits for every connection).
fn grace_period(config: &Config) -> Duration {
    config
        .entry_points
        .values()
        .map(|entry_point| entry_point.transport.grace_timeout)
        .max()
        .unwrap_or(config::DEFAULT_GRACE_TIMEOUT)
}

/// Runs the gateway described by the file at `path` until SIGTERM or
/// SIGINT. This runtime does the housekeeping (signals, reloads); the
/// workers serve the requests.
///
/// # Errors
///
/// A [`StartError`]: a configuration that does not load, an entry point
/// that cannot listen, a worker that cannot start.
pub(crate) async fn serve(path: &Path) -> Result<(), StartError> {
    let config = config::load(path)?;
    init_logging(&config);
    let metrics = Arc::new(GatewayMetrics::new());
    let routing = Routing::compile(&config, &metrics)?;
    routing.start_health_checks();
    let access_log = match &config.access_log {
        Some(log) => Some(
            AccessLog::open(
                log.format,
                log.file_path.as_deref(),
                metrics.access_log_dropped(),
            )
            .map_err(StartError::AccessLog)?,
        ),
        None => None,
    };
    let gateway = Arc::new(Gateway::new(&config, routing, &metrics, access_log));
    let grace_period = grace_period(&config);
    let entry_points = bind(&config, path).await?;
    let (stop, stopped) = watch::channel(false);
    let graceful = Arc::new(GracefulShutdown::new());
    let count = worker::count();
    let mut workers = worker::start(count, &entry_points, &gateway, &graceful, &stopped)?;
    // The workers hold the sockets now: once they stop accepting, new
    // connections are refused.
    drop(entry_points);
    tracing::info!(workers = count, "serving");
    let kubernetes = config.kubernetes.clone();
    let watch = !config.watch.is_empty();
    let sources = Arc::new(Sources::new(config.clone(), Arc::clone(&gateway), metrics));
    let _watcher = if watch {
        Some(reload::watch(
            path.to_owned(),
            &config,
            Arc::clone(&sources),
        )?)
    } else {
        None
    };
    // Runs until the process ends; the last configuration it found keeps
    // serving while the API server is away.
    #[cfg(feature = "kubernetes")]
    if let Some(kubernetes) = kubernetes {
        crate::kubernetes::start(kubernetes, Arc::clone(&sources));
    }
    #[cfg(not(feature = "kubernetes"))]
    let _ = kubernetes;

    shutdown_signal().await;
    let _ = stop.send(true);
    // Once every worker has stopped accepting, the sockets are closed.
    workers.stopped_accepting().await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let graceful = Arc::try_unwrap(graceful)
        .map_err(|_| StartError::Internal("connections still being accepted"))?;
    if tokio::time::timeout(grace_period, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace_period, "some connections did not finish in time");
    }
    workers.exit().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(config: &Config, main: &Path) -> Result<Vec<EntryPoint>, StartError> {
    let mut bound = Vec::with_capacity(config.entry_points.len());
    for (name, entry_point) in &config.entry_points {
        let listener = TcpListener::bind(entry_point.address)
            .await
            .map_err(|source| StartError::Listen {
                entry_point: name.clone(),
                address: entry_point.address,
                source,
            })?;
        let tls = entry_point
            .tls
            .as_ref()
            .map(|files| listener::tls_acceptor(name, files, main))
            .transpose()?;
        tracing::info!(entry_point = %name, address = %entry_point.address, tls = tls.is_some(), "listening");
        let listener = listener
            .into_std()
            .map_err(|source| StartError::ShareSocket {
                entry_point: name.clone(),
                source,
            })?;
        bound.push(EntryPoint {
            name: Arc::from(name.as_str()),
            listener,
            tls,
            edge: Arc::new(entry_point.edge.clone()),
            transport: entry_point.transport,
            connections: Arc::new(Semaphore::new(entry_point.transport.max_connections)),
        });
    }
    Ok(bound)
}

fn init_logging(config: &Config) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(config.log.level)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Common => builder.try_init(),
    };
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers there is nothing to wait for but ctrl-c.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The routing table, for the request-head fuzz target (`crate::fuzzing`).
pub(crate) mod fuzzing_routing {
    use http::request::Parts;

    use super::metrics::GatewayMetrics;
    use super::routing::Routing;
    use crate::config::Config;

    /// Compiled routes of a configuration's entry point `web`.
    pub(crate) struct Table(Routing);

    impl Table {
        /// The routes of `config`.
        ///
        /// # Panics
        ///
        /// When they do not compile: the fuzz target's table is fixed.
        pub(crate) fn new(config: &Config) -> Self {
            Self(Routing::compile(config, &GatewayMetrics::new()).expect("routes compile"))
        }

        /// The name of the router `request` takes on `web`.
        pub(crate) fn route(&self, request: &Parts) -> Option<&str> {
            self.0
                .route("web", request)
                .map(|route| route.name.as_str())
        }
    }
}
