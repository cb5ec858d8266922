//! The `ccgate` command, as a library so that its fuzz targets
//! (`fuzz/`) reach the parts that read untrusted input; the binary
//! (`src/main.rs`) only calls [`run`].
//!
//! - `ccgate serve [-c FILE]`: run the gateway;
//! - `ccgate check [-c FILE]`: validate a configuration and print its
//!   summary, secrets redacted;
//! - `ccgate claims 'EXPR' [JSON_FILE|-]`: evaluate a claims expression.

// The connection task's future nests the gateway's types (middleware →
// token source → Redis client → TLS stream) deeper than the default
// limit of auto-trait checking.
#![recursion_limit = "256"]

mod check_cmd;
mod claims_cmd;
mod config;
mod edge;
mod gateway;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod rule;

#[doc(hidden)]
pub mod fuzzing;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ccgate: an OAuth 2.0 client-credentials gateway.
#[derive(Debug, Parser)]
#[command(name = "ccgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGTERM or SIGINT.
    Serve {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE", default_value = "ccgate.yaml")]
        config: PathBuf,
    },
    /// Validate a configuration file as `serve` would, without network.
    ///
    /// Prints a summary (entry points, routers, middlewares, services; every
    /// secret redacted) and exits 0 when it is valid; prints the error
    /// (file, field path, reason) and exits 1 when it is not.
    Check {
        /// The main configuration file.
        #[arg(
            short = 'c',
            long = "config",
            value_name = "FILE",
            default_value = "ccgate.yaml"
        )]
        config: PathBuf,
    },
    /// Evaluate a claims expression against a JSON document.
    ///
    /// Prints `true` and exits 0 when it holds, prints `false` and exits 1
    /// when it does not; exits 2 when the expression or the document is
    /// malformed.
    Claims {
        /// The expression, e.g. "Equals(`grp`, `admin`)".
        expression: String,
        /// The JSON document: a file, or `-` (the default) for standard input.
        #[arg(value_name = "JSON_FILE|-", default_value = "-")]
        document: PathBuf,
    },
}

/// Runs the command the process's arguments name.
#[must_use]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check_cmd::run(&config),
        Command::Claims {
            expression,
            document,
        } => claims_cmd::run(&expression, &document),
    }
}

fn serve(config: &std::path::Path) -> ExitCode {
    // Housekeeping only (signals, reloads): the gateway's workers run
    // their own runtimes.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ccgate: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(gateway::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ccgate: {error}");
            ExitCode::FAILURE
        }
    }
}
