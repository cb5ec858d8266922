//! Hot reload (`providers.file.watch: true`): watch the directories that
//! hold the configuration files — Kubernetes replaces a mounted ConfigMap
//! by swapping a `..data` symlink, which only a directory watch sees —
//! wait for changes to settle, load and compile the new configuration,
//! and swap it in whole. An invalid version is logged and the running one
//! stays. Requests in flight finish on the configuration they started
//! with; middlewares whose token settings did not change keep their
//! cached tokens (their claims decisions are remade under the new rules).
//!
//! Only the dynamic part (`http`) is reloaded; a change to entry points,
//! logs or metrics needs a restart, and is logged as such (as does one to
//! `providers.kubernetesCRD`). The new files are combined with the
//! Kubernetes provider's middlewares through [`Sources`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::StartError;
use super::sources::Sources;
use crate::config::{self, AccessLog, Config, EntryPoint, Log};

/// How long to wait after a change for more changes before reloading.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts watching; reloading stops when the returned watcher is dropped.
///
/// # Errors
///
/// A [`StartError::Watch`] when a directory cannot be watched.
pub(crate) fn watch(
    main: PathBuf,
    running: &Config,
    sources: Arc<Sources>,
) -> Result<RecommendedWatcher, StartError> {
    let paths = &running.watch;
    let started_with = StaticPart::of(running);
    let (changed, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            let _ = changed.send(());
        }
    })
    .map_err(|error| StartError::Watch(error.to_string()))?;
    let directories: BTreeSet<PathBuf> = paths.iter().map(|path| watched_directory(path)).collect();
    for directory in &directories {
        watcher
            .watch(directory, RecursiveMode::NonRecursive)
            .map_err(|error| {
                StartError::Watch(format!("cannot watch {}: {error}", directory.display()))
            })?;
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Let a burst of writes settle, then reload once.
            while tokio::time::timeout(DEBOUNCE, changes.recv())
                .await
                .is_ok_and(|c| c.is_some())
            {}
            reload(&main, &sources, &started_with);
        }
    });
    Ok(watcher)
}

/// A directory is watched itself; a file through its parent.
fn watched_directory(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_owned();
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The parts of a configuration that only a restart applies.
#[derive(PartialEq)]
struct StaticPart {
    entry_points: BTreeMap<String, EntryPoint>,
    ping: Option<String>,
    metrics: Option<String>,
    log: Log,
    access_log: Option<AccessLog>,
}

impl StaticPart {
    fn of(config: &Config) -> Self {
        Self {
            entry_points: config.entry_points.clone(),
            ping: config.ping.clone(),
            metrics: config.metrics.clone(),
            log: config.log.clone(),
            access_log: config.access_log.clone(),
        }
    }
}

fn reload(main: &Path, sources: &Sources, started_with: &StaticPart) {
    let config = match config::load(main) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "configuration change rejected; the running configuration stays");
            return;
        }
    };
    if StaticPart::of(&config) != *started_with {
        tracing::warn!("entry points, logs, ping or metrics changed: restart ccgate to apply them");
    }
    // Combined with the Kubernetes provider's middlewares, if any.
    match sources.set_file(config) {
        Ok(()) => {
            tracing::info!("configuration reloaded");
        }
        Err(error) => {
            tracing::error!(%error, "configuration change rejected; the running configuration stays")
        }
    }
}
