//! The sources of the dynamic configuration — the files (reloaded by
//! [`super::reload`]) and the Kubernetes provider's middlewares (from
//! `crate::kubernetes`) — combined into one [`Config`] and swapped in
//! whole as a new [`Routing`]. Both sources change it through
//! [`Sources`], one change at a time, so neither undoes the other's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::StartError;
use super::handler::Gateway;
use super::metrics::GatewayMetrics;
use super::routing::Routing;
use crate::config::{self, Config};

/// A middleware found by the Kubernetes provider, validated.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// The object's namespace.
    pub(crate) namespace: String,
    /// The object's name.
    pub(crate) name: String,
    /// Its options, secret URNs resolved in its namespace.
    pub(crate) middleware: config::Middleware,
}

/// What the running routing was compiled from.
#[derive(Debug)]
struct Current {
    file: Config,
    /// By `NAMESPACE-NAME@kubernetescrd`.
    kubernetes: BTreeMap<String, Discovered>,
}

/// The sources of the running configuration; see the module docs.
#[derive(Debug)]
pub(crate) struct Sources {
    current: Mutex<Current>,
    gateway: Arc<Gateway>,
    metrics: Arc<GatewayMetrics>,
}

impl Sources {
    /// The sources of `gateway`, whose routing was compiled from `file`.
    pub(crate) fn new(file: Config, gateway: Arc<Gateway>, metrics: Arc<GatewayMetrics>) -> Self {
        Self {
            current: Mutex::new(Current {
                file,
                kubernetes: BTreeMap::new(),
            }),
            gateway,
            metrics,
        }
    }

    #[cfg(feature = "kubernetes")]
    /// The gateway whose routing these sources make.
    pub(crate) fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Swaps in a new file configuration (already loaded and checked).
    ///
    /// # Errors
    ///
    /// When the combined configuration does not compile; the running one
    /// stays.
    pub(crate) fn set_file(&self, file: Config) -> Result<(), StartError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.swap(&file, &current.kubernetes)?;
        current.file = file;
        Ok(())
    }

    #[cfg(feature = "kubernetes")]
    /// Swaps in the Kubernetes provider's middlewares (each already
    /// validated).
    ///
    /// # Errors
    ///
    /// When the combined configuration does not compile; the running one
    /// stays.
    pub(crate) fn set_kubernetes(
        &self,
        kubernetes: BTreeMap<String, Discovered>,
    ) -> Result<(), StartError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.swap(&current.file, &kubernetes)?;
        current.kubernetes = kubernetes;
        Ok(())
    }

    /// Compiles `file` with `kubernetes` (reusing the running
    /// middlewares' tokens where their settings did not change) and
    /// stores it. Called under the lock: one swap at a time.
    fn swap(
        &self,
        file: &Config,
        kubernetes: &BTreeMap<String, Discovered>,
    ) -> Result<(), StartError> {
        let mut combined = file.clone();
        for (name, discovered) in kubernetes {
            combined
                .http
                .middlewares
                .insert(name.clone(), discovered.middleware.clone());
            combined.http.kubernetes.insert(
                name.clone(),
                (discovered.namespace.clone(), discovered.name.clone()),
            );
        }
        let running = self.gateway.routing.load();
        let routing = Routing::compile_reusing(&combined, &self.metrics, &running)?;
        // The new checkers run before the swap, so that no server goes
        // unchecked; the old ones stop after it.
        routing.start_health_checks();
        let routing = Arc::new(routing);
        self.gateway.routing.store(Arc::clone(&routing));
        running.retire(&routing, &self.metrics);
        Ok(())
    }
}
