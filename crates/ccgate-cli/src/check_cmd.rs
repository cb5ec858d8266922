//! `ccgate check [-c FILE]`: validates a configuration as `serve` would,
//! without touching the network, and prints a summary with every secret
//! redacted. What building the middlewares warns about (a Redis store
//! without `store.secret`, TLS verification turned off, also a servers
//! transport's `insecureSkipVerify`) goes to standard
//! error at WARN, as `serve` logs it.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, Config, ConfigError, Summary};

/// Loads and checks the configuration at `path`. Prints the summary and
/// returns success when it is valid; prints the error to standard error
/// and returns failure (1) otherwise.
pub(crate) fn run(path: &Path) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .try_init();
    match check(path) {
        Ok(config) => {
            print!("{}", Summary::new(&config, path));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ccgate: invalid configuration: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Everything `serve` checks before it listens: the files (the servers
/// transports' PEM files and references among them), the middlewares as
/// built, and the entry points' TLS certificates and keys. A servers
/// transport with `insecureSkipVerify` is warned about, as `serve` does.
fn check(path: &Path) -> Result<Config, ConfigError> {
    let config = config::load(path)?;
    for transport in config.http.servers_transports.values() {
        transport.warn_if_insecure();
    }
    for (name, middleware) in &config.http.middlewares {
        ccgate::Middleware::builder(middleware.options.clone())
            .name(name)
            .build()
            .map_err(|error| middleware.error(&error))?;
    }
    for (name, entry_point) in &config.entry_points {
        if let Some(tls) = &entry_point.tls {
            config::read_tls(name, tls, path)?;
        }
    }
    Ok(config)
}
