//! Workers: one thread per core, each running its own single-threaded
//! runtime, accepting on every entry point and keeping its own pool of
//! upstream connections.
//!
//! A request then stays on one thread from the caller's socket to the
//! upstream's and back: no work stealing, no hand-off between threads, no
//! cross-thread wake-ups. On one core this serves about a fifth more
//! requests per second than tokio's multi-threaded runtime
//! (docs/benchmarks.md). A connection stays on the worker that accepted
//! it, as with nginx's workers; the kernel wakes whichever worker waits
//! in `accept`, so busy workers take fewer new connections.
//!
//! What the workers share — routing, token sources and their caches,
//! metrics, the access log — is behind `Arc`s and locks that work across
//! threads; tasks a middleware spawns (a token fetch, a refresh) run on
//! the worker whose request started them.

use std::sync::Arc;
use std::thread::JoinHandle;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{mpsc, watch};

use super::StartError;
use super::handler::Gateway;
use super::listener::EntryPoint;
use super::upstream::UpstreamPool;

/// The running workers.
pub(crate) struct Workers {
    threads: Vec<JoinHandle<()>>,
    /// Tells the workers' runtimes to end (after the grace period).
    exit: watch::Sender<bool>,
    /// One message per worker that has stopped accepting.
    stopped_accepting: mpsc::Receiver<()>,
}

/// How many workers to run: one per core this process may use (the
/// affinity mask and cgroup CPU quota count).
pub(crate) fn count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Starts `count` workers, each accepting on its own copy of every entry
/// point's socket until `stop` turns true; `graceful` watches every
/// connection so that shutdown can wait for it.
///
/// # Errors
///
/// A [`StartError`] when a socket cannot be shared or a thread or runtime
/// cannot start.
pub(crate) fn start(
    count: usize,
    entry_points: &[EntryPoint],
    gateway: &Arc<Gateway>,
    graceful: &Arc<GracefulShutdown>,
    stop: &watch::Receiver<bool>,
) -> Result<Workers, StartError> {
    let (exit, exited) = watch::channel(false);
    let (accepting_done, stopped_accepting) = mpsc::channel(count.max(1));
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let own: Vec<EntryPoint> = entry_points
            .iter()
            .map(EntryPoint::try_clone)
            .collect::<Result<_, _>>()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StartError::Worker {
                index,
                what: "'s runtime",
                source,
            })?;
        let (gateway, graceful, stop) = (Arc::clone(gateway), Arc::clone(graceful), stop.clone());
        let (accepting_done, mut exited) = (accepting_done.clone(), exited.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ccgate-worker-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    // This worker's own pool of upstream connections.
                    let upstream = Arc::new(UpstreamPool::default());
                    let accepting: Vec<_> = own
                        .into_iter()
                        .map(|entry_point| {
                            tokio::spawn(entry_point.serve(
                                Arc::clone(&gateway),
                                Arc::clone(&upstream),
                                Arc::clone(&graceful),
                                stop.clone(),
                            ))
                        })
                        .collect();
                    for task in accepting {
                        let _ = task.await;
                    }
                    // Shutdown needs every handle on `graceful` back.
                    drop(graceful);
                    let _ = accepting_done.send(()).await;
                    drop(accepting_done);
                    // Connections keep running here until the gateway
                    // has waited for them (or given up).
                    let _ = exited.wait_for(|exit| *exit).await;
                });
            })
            .map_err(|source| StartError::Worker {
                index,
                what: "",
                source,
            })?;
        threads.push(thread);
    }
    Ok(Workers {
        threads,
        exit,
        stopped_accepting,
    })
}

impl Workers {
    /// Waits until every worker has stopped accepting (after `stop`).
    pub(crate) async fn stopped_accepting(&mut self) {
        for _ in 0..self.threads.len() {
            if self.stopped_accepting.recv().await.is_none() {
                break;
            }
        }
    }

    /// Ends the workers' runtimes (dropping connections still open) and
    /// waits for their threads.
    pub(crate) async fn exit(self) {
        let _ = self.exit.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}
