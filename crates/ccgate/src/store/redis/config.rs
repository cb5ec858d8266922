//! From `store.redis` options to a redis-rs client, every check naming its
//! field. Nothing here touches the network.

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates, TlsMode,
};
use secrecy::ExposeSecret;

use super::link::{CONNECT_TIMEOUT, Mode, RESPONSE_TIMEOUT};
use crate::options::{OptionsError, RedisOptions, RedisTlsOptions};
use crate::pem::{PemError, PemFields, check_identity, identity, trust_anchors};

const TLS_FIELDS: PemFields = PemFields {
    ca: "store.redis.tls.caBundle",
    cert: "store.redis.tls.cert",
    key: "store.redis.tls.key",
};

/// The connection mode and client for `options`.
pub(super) fn mode(options: &RedisOptions) -> Result<Mode, OptionsError> {
    let hosts = endpoints(&options.endpoints)?;
    let tls = options.tls.as_ref().map(tls).transpose()?;
    let addr = |(host, port): &(String, u16)| match &tls {
        Some(tls) => ConnectionAddr::TcpTls {
            host: host.clone(),
            port: *port,
            insecure: tls.insecure,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host.clone(), *port),
    };
    let mut settings = RedisConnectionInfo::default().set_db(i64::from(options.database));
    if let Some(username) = &options.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &options.password {
        settings = settings.set_password(password.expose_secret());
    }
    let sentinel = &options.sentinel;
    let sentinel_used =
        sentinel.master_set.is_some() || sentinel.username.is_some() || sentinel.password.is_some();

    if options.cluster {
        if sentinel_used {
            return Err(OptionsError::new(
                "store.redis.sentinel",
                "cannot be used with `cluster: true` (a Redis Cluster has no Sentinels)",
            ));
        }
        if options.database != 0 {
            tracing::warn!(
                database = options.database,
                "store.redis.database is ignored with `cluster: true`: a Redis Cluster has database 0 only"
            );
        }
        let nodes: Vec<ConnectionInfo> = hosts
            .iter()
            .map(|host| connection_info(addr(host), RedisConnectionInfo::default()))
            .collect::<Result<_, _>>()?;
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(2);
        if let Some(username) = &options.username {
            builder = builder.username(username);
        }
        if let Some(password) = &options.password {
            builder = builder.password(password.expose_secret());
        }
        if let Some(tls) = &tls {
            builder = builder.tls(tls.mode).certs(tls.certificates.clone());
        }
        let client = builder.build().map_err(|error| client_error(&error))?;
        return Ok(Mode::Cluster(client));
    }

    if let Some(master_set) = &sentinel.master_set {
        let sentinels: Vec<ConnectionAddr> = hosts.iter().map(addr).collect();
        let mut builder =
            SentinelClientBuilder::new(sentinels, master_set, SentinelServerType::Master)
                .map_err(|error| client_error(&error))?
                .set_client_to_redis_db(i64::from(options.database));
        if let Some(username) = &options.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &options.password {
            builder = builder.set_client_to_redis_password(password.expose_secret());
        }
        if let Some(username) = &sentinel.username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &sentinel.password {
            builder = builder.set_client_to_sentinel_password(password.expose_secret());
        }
        if let Some(tls) = &tls {
            builder = builder
                .set_client_to_redis_tls_mode(tls.mode)
                .set_client_to_redis_certificates(tls.certificates.clone())
                .set_client_to_sentinel_tls_mode(tls.mode)
                .set_client_to_sentinel_certificates(tls.certificates.clone());
        }
        let client = builder.build().map_err(|error| client_error(&error))?;
        return Ok(Mode::Sentinel(tokio::sync::Mutex::new(client)));
    }
    if sentinel_used {
        return Err(OptionsError::new(
            "store.redis.sentinel.masterSet",
            "required to use Sentinel (sentinel.username or sentinel.password is set)",
        ));
    }

    if hosts.len() > 1 {
        return Err(OptionsError::new(
            "store.redis.endpoints",
            "a standalone server has one endpoint: set `cluster: true` for a Redis Cluster, or \
             `sentinel.masterSet` when these are Sentinels",
        ));
    }
    let info = connection_info(addr(&hosts[0]), settings)?;
    let client = match &tls {
        Some(tls) => redis::Client::build_with_tls(info, tls.certificates.clone()),
        None => redis::Client::open(info),
    }
    .map_err(|error| client_error(&error))?;
    Ok(Mode::Standalone(client))
}

fn connection_info(
    addr: ConnectionAddr,
    settings: RedisConnectionInfo,
) -> Result<ConnectionInfo, OptionsError> {
    Ok(addr
        .into_connection_info()
        .map_err(|error| client_error(&error))?
        .set_redis_settings(settings))
}

/// A redis-rs refusal of checked options. Its detail could quote PEM
/// input, so only its category is shown.
fn client_error(error: &redis::RedisError) -> OptionsError {
    OptionsError::new(
        "store.redis",
        format!(
            "the Redis client refused these options: {}",
            error.category()
        ),
    )
}

/// `host:port` pairs of `store.redis.endpoints`.
fn endpoints(endpoints: &[String]) -> Result<Vec<(String, u16)>, OptionsError> {
    if endpoints.is_empty() {
        return Err(OptionsError::new(
            "store.redis.endpoints",
            "required: at least one `host:port`",
        ));
    }
    endpoints
        .iter()
        .enumerate()
        .map(|(index, value)| {
            endpoint(value).map_err(|reason| {
                OptionsError::new(&format!("store.redis.endpoints[{index}]"), reason)
            })
        })
        .collect()
}

fn endpoint(endpoint: &str) -> Result<(String, u16), String> {
    const FORM: &str = "expected `host:port`, e.g. `redis.example.com:6379` or `[::1]:6379`";
    if endpoint.contains("://") || endpoint.contains('@') || endpoint.contains('/') {
        return Err(format!("{FORM} (not a URL)"));
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Err(format!("{FORM}: the port is missing"));
    };
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .ok_or_else(|| format!("{FORM}: unbalanced `[`"))?,
        None if host.contains(':') => {
            return Err(format!("{FORM}: write an IPv6 address in brackets"));
        }
        None => host,
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("{FORM}: the host is missing or has spaces"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok((host.to_owned(), port)),
        _ => Err(format!("{FORM}: the port must be 1 to 65535")),
    }
}

/// Checked `store.redis.tls` settings in redis-rs's form.
struct Tls {
    mode: TlsMode,
    insecure: bool,
    certificates: TlsCertificates,
}

fn tls(options: &RedisTlsOptions) -> Result<Tls, OptionsError> {
    let invalid = |error: PemError| OptionsError::new(error.field, error.reason);
    if let Some(ca) = &options.ca_bundle {
        trust_anchors(ca, TLS_FIELDS.ca).map_err(invalid)?;
    }
    let client_tls = match identity(options.cert.as_deref(), options.key.as_ref(), TLS_FIELDS)
        .map_err(invalid)?
    {
        Some(pair) => {
            check_identity(pair, TLS_FIELDS).map_err(invalid)?;
            Some(ClientTlsConfig {
                client_cert: options.cert.clone().unwrap_or_default().into_bytes(),
                client_key: options
                    .key
                    .as_ref()
                    .map(|key| key.expose_secret().as_bytes().to_vec())
                    .unwrap_or_default(),
            })
        }
        None => None,
    };
    if options.insecure_skip_verify {
        tracing::warn!(
            "store.redis.tls.insecureSkipVerify is on: Redis servers' certificates are NOT \
             verified, so anyone on the network path can read and forge cached tokens"
        );
    }
    ensure_aws_lc_provider();
    Ok(Tls {
        mode: if options.insecure_skip_verify {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        },
        insecure: options.insecure_skip_verify,
        certificates: TlsCertificates {
            client_tls,
            root_cert: options.ca_bundle.clone().map(String::into_bytes),
        },
    })
}

/// redis-rs builds its rustls configuration from the process-default
/// crypto provider; make that aws-lc-rs, ccgate's one provider, unless the
/// application installed one already.
fn ensure_aws_lc_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is installed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `database` with `cluster: true` is ignored with a warning (the seed
    /// page's promise), not refused.
    #[test]
    fn a_database_with_cluster_is_ignored_with_a_warning() {
        let options: RedisOptions = serde_json::from_value(serde_json::json!({
            "endpoints": ["127.0.0.1:7000", "127.0.0.1:7001"],
            "cluster": true,
            "database": 3,
        }))
        .unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Writer(std::sync::Arc::clone(&sink)))
            .finish();
        let built = tracing::subscriber::with_default(subscriber, || mode(&options));
        assert!(built.is_ok(), "{:?}", built.err());
        let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("WARN") && text.contains("store.redis.database is ignored"),
            "{text}"
        );
    }

    #[derive(Clone)]
    struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn endpoints_are_host_and_port() {
        assert_eq!(endpoint("redis:6379"), Ok(("redis".to_owned(), 6379)));
        assert_eq!(endpoint("[::1]:6380"), Ok(("::1".to_owned(), 6380)));
        for bad in [
            "redis",
            "redis:0",
            "redis:x",
            ":6379",
            "redis://redis:6379",
            "user@redis:6379",
            "::1:6379",
            "[::1:6379",
            "red is:6379",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }
}
