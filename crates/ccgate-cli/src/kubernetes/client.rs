//! The API client of the provider: with `endpoint`, that server (with
//! `token` and `certAuthFilePath`); else the in-cluster service account
//! when its environment is there (`KUBERNETES_SERVICE_HOST`); else the
//! kubeconfig (`KUBECONFIG`, `~/.kube/config`). TLS is rustls on
//! aws-lc-rs, as everywhere in ccgate.

use std::time::Duration;

use kube::config::KubeConfigOptions;
use kube::{Client, Config};

use crate::config::KubernetesCrd;

/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client `settings` describe.
///
/// # Errors
///
/// No usable configuration: an in-cluster environment without its token
/// or CA files, an unreadable kubeconfig, or a TLS setup that fails. The
/// message holds no token.
pub(super) async fn build(settings: &KubernetesCrd) -> Result<Client, String> {
    let mut config = match &settings.endpoint {
        Some(endpoint) => {
            let mut config = Config::new(endpoint.clone());
            config.auth_info.token.clone_from(&settings.token);
            config
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            Config::incluster().map_err(|error| format!("in-cluster configuration: {error}"))?
        }
        None => Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .map_err(|error| format!("kubeconfig: {error}"))?,
    };
    if settings.endpoint.is_none() && settings.token.is_some() {
        // With the service account or a kubeconfig, `token` still wins.
        config.auth_info.token.clone_from(&settings.token);
    }
    if let Some((_, certificates)) = &settings.cert_authority {
        config.root_cert = Some(certificates.clone());
        config.root_cert_file = None;
    }
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // No read timeout: it would cut quiet watches, which the watcher's
    // own idle timeout (295 s) guards.
    // The watcher retries on its own; a retrying client would hide an
    // unreachable server from the backoff (and the logs).
    config.default_retry = false;
    Client::try_from(config).map_err(|error| format!("client: {error}"))
}
