//! [`StartError`]: why `ccgate serve` could not start.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the gateway could not start. Each message names the option it is
/// about, as the configuration file spells it, and never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum StartError {
    /// The configuration does not load or a middleware cannot be built.
    /// Class: configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A router names a service or middleware that does not exist (the
    /// loader checks references first, so this is a last line of defence).
    /// Class: configuration.
    #[error("http.routers.{router}.{field}: no {what} named {name:?}")]
    Reference {
        /// The router.
        router: String,
        /// `service` or `middlewares`.
        field: &'static str,
        /// `service` or `middleware`.
        what: &'static str,
        /// The name it gives.
        name: String,
    },
    /// An entry point's TLS certificate and key are unusable. Class:
    /// configuration.
    #[error("entryPoints.{entry_point}.tls: {reason}")]
    Tls {
        /// The entry point.
        entry_point: String,
        /// rustls's reason (certificates are public; keys never quoted).
        reason: String,
    },
    /// TLS to a service's `https` servers cannot be set up (no trust
    /// roots, an unusable client key). Class: configuration.
    #[error("{transport}: {reason}")]
    UpstreamTls {
        /// `http.serversTransports.NAME`, or the default transport.
        transport: String,
        /// The reason (keys never quoted).
        reason: String,
    },
    /// An entry point cannot listen on its address. Class: environment.
    #[error("entryPoints.{entry_point}.address: cannot listen on {address}: {source}")]
    Listen {
        /// The entry point.
        entry_point: String,
        /// Its address.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A listening socket cannot be handed to the workers. Class:
    /// environment.
    #[error("entryPoints.{entry_point}.address: cannot share the socket: {source}")]
    ShareSocket {
        /// The entry point.
        entry_point: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The access log file cannot be opened. Class: environment.
    #[error("accessLog.filePath: cannot open: {0}")]
    AccessLog(std::io::Error),
    /// The watched configuration cannot be watched. Class: environment.
    #[error("providers.file.watch: {0}")]
    Watch(String),
    /// A worker thread or its runtime cannot start. Class: environment.
    #[error("cannot start worker {index}{what}: {source}")]
    Worker {
        /// Which worker.
        index: usize,
        /// `""` for the thread, `"'s runtime"` for its runtime.
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A broken invariant of the gateway itself. Class: internal.
    #[error("internal: {0}")]
    Internal(&'static str),
}
