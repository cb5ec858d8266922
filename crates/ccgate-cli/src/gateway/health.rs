//! Active health checks (`loadBalancer.healthCheck`, SPEC §11): one task
//! per service and configuration (not per worker) asks every server of
//! the service every `interval`, each check bounded by `timeout`, and
//! sets the server's [`Server::set_healthy`] flag, which the workers read
//! with one relaxed atomic load per pick. A server is healthy until a
//! check fails; one failed check takes it out, one passed check puts it
//! back.
//!
//! A check goes through the service's servers transport (its TLS
//! settings, `serverName`, client certificate), on a connection of its
//! own that is closed afterwards, never through the workers' pools:
//!
//! - `mode: http`: `method path` over HTTP/1.1 (`https`: TLS), or HTTP/2
//!   with prior knowledge for `scheme: h2c`; passes on `status`, or any
//!   2xx/3xx.
//! - `mode: grpc`: `grpc.health.v1.Health/Check` with an empty
//!   `HealthCheckRequest` (service `""`: the whole server) over HTTP/2
//!   (h2c, or TLS with ALPN `h2` for `https`); passes on `grpc-status: 0`
//!   and `status: SERVING`.
//!
//! Stopping: dropping the [`Checker`] aborts the task and the checks in
//! flight (a reload drops the old configuration's checkers once the new
//! one is in place).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::TlsConnector;

use super::connector::Target;
use super::proxy::{Server, Service};
use crate::config::{HealthCheck, HealthCheckMode};

/// The most of a gRPC health answer that is read.
const MAX_GRPC_ANSWER: usize = 16 * 1024;
/// `grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// A running health checker; dropping it stops the checks.
#[derive(Debug)]
pub(crate) struct Checker(AbortHandle);

impl Drop for Checker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts checking `service`'s servers in the current runtime, if it has
/// a health check.
pub(crate) fn start(service: &Arc<Service>) -> Option<Checker> {
    let check = Arc::new(service.health_check()?.clone());
    let probes: Arc<[Probe]> = service
        .servers()
        .iter()
        .enumerate()
        .filter_map(|(index, server)| {
            let probe = Probe::new(&check, server, index);
            if probe.is_none() {
                // Not expected: the loader checked the URL, and routing
                // builds TLS for `scheme: https`. The server stays in.
                tracing::warn!(service = %service.name(), server = %server.url, "this server cannot be health checked");
            }
            probe
        })
        .collect();
    let service = Arc::clone(service);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(check.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // The servers are asked together; the round ends with the
            // slowest, which `timeout` bounds.
            let mut round = JoinSet::new();
            for index in 0..probes.len() {
                let probes = Arc::clone(&probes);
                round.spawn(async move {
                    let probe = &probes[index];
                    (probe.server, probe.run().await)
                });
            }
            while let Some(done) = round.join_next().await {
                let Ok((index, verdict)) = done else { continue };
                if let Some(server) = service.servers().get(index) {
                    record(service.name(), server, verdict);
                }
            }
        }
    });
    Some(Checker(task.abort_handle()))
}

/// Sets `server`'s health, logging the changes.
fn record(service: &str, server: &Server, verdict: Result<(), String>) {
    let healthy = verdict.is_ok();
    let was = server.set_healthy(healthy);
    match verdict {
        Err(reason) if was => {
            tracing::warn!(service = %service, server = %server.url, %reason, "health check failed: server taken out of the rotation");
        }
        Err(reason) => {
            tracing::debug!(service = %service, server = %server.url, %reason, "health check still failing");
        }
        Ok(()) if !was => {
            tracing::info!(service = %service, server = %server.url, "health check passed: server back in the rotation");
        }
        Ok(()) => {}
    }
}

/// How one server is checked, worked out once per configuration.
#[derive(Debug)]
struct Probe {
    /// The server's index in its service.
    server: usize,
    check: Arc<HealthCheck>,
    /// The checked address: the server's, `scheme` and `port` replaced.
    target: Target,
    /// `:scheme` over HTTP/2: `https` with TLS, else `http`.
    scheme: &'static str,
    /// `hostname`, else the checked authority.
    host: HeaderValue,
    protocol: Protocol,
}

#[derive(Debug)]
enum Protocol {
    /// HTTP/1.1, through the transport's connector (TLS for `https`).
    Http1,
    /// HTTP/2: h2c, or TLS with ALPN `h2`.
    Http2(Option<(Arc<ClientConfig>, ServerName<'static>)>),
}

impl Probe {
    fn new(check: &Arc<HealthCheck>, server: &Server, index: usize) -> Option<Self> {
        let authority = server.uri.authority()?;
        let scheme = check
            .scheme
            .as_deref()
            .or(server.uri.scheme_str())
            .unwrap_or("http");
        let port = check.port.or(authority.port_u16());
        let authority = match port {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        };
        let uri: Uri = format!("{scheme}://{authority}").parse().ok()?;
        let target = server.target.connector.target(&uri)?;
        let tls = scheme == "https";
        let protocol = match (check.mode, scheme) {
            (HealthCheckMode::Http, "http" | "https") => Protocol::Http1,
            _ if tls => {
                let config = target.connector.tls.as_ref()?;
                let mut config = ClientConfig::clone(config);
                config.alpn_protocols = vec![b"h2".to_vec()];
                Protocol::Http2(Some((Arc::new(config), target.server_name.clone()?)))
            }
            _ => Protocol::Http2(None),
        };
        Some(Self {
            server: index,
            check: Arc::clone(check),
            scheme: if tls { "https" } else { "http" },
            host: match &check.hostname {
                Some(host) => host.clone(),
                None => HeaderValue::from_str(&authority).ok()?,
            },
            target,
            protocol,
        })
    }

    /// One check, within `timeout`.
    async fn run(&self) -> Result<(), String> {
        let timeout = self.check.timeout;
        tokio::time::timeout(timeout, self.ask())
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {timeout:?} (healthCheck.timeout)"
                ))
            })
    }

    async fn ask(&self) -> Result<(), String> {
        let response = match &self.protocol {
            Protocol::Http1 => {
                let mut sender = self
                    .target
                    .connect_http1::<Full<Bytes>>()
                    .await
                    .map_err(|e| e.to_string())?;
                let request = self.request(false)?;
                sender.send_request(request).await
            }
            Protocol::Http2(tls) => {
                let mut sender = self.http2(tls.as_ref()).await?;
                let request = self.request(true)?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| format!("request failed: {e}"))?;
        match self.check.mode {
            HealthCheckMode::Http if self.check.passes(response.status().as_u16()) => Ok(()),
            HealthCheckMode::Http => Err(format!("answered {}", response.status())),
            HealthCheckMode::Grpc => grpc_verdict(response).await,
        }
    }

    /// An HTTP/2 connection to the checked address, driven by its own task
    /// (which ends with the connection, when the sender is dropped).
    async fn http2(
        &self,
        tls: Option<&(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Result<hyper::client::conn::http2::SendRequest<Full<Bytes>>, String> {
        let authority = &self.target.key.authority;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority
            .port_u16()
            .unwrap_or(if tls.is_some() { 443 } else { 80 });
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        match tls {
            Some((config, name)) => {
                let stream = TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                let (sender, connection) = builder
                    .handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("HTTP/2: {e}"))?;
                tokio::spawn(connection);
                Ok(sender)
            }
            None => {
                let (sender, connection) = builder
                    .handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("HTTP/2: {e}"))?;
                tokio::spawn(connection);
                Ok(sender)
            }
        }
    }

    /// The check's request: origin form over HTTP/1.1, absolute form (for
    /// `:scheme` and `:authority`) over HTTP/2.
    fn request(&self, http2: bool) -> Result<Request<Full<Bytes>>, String> {
        let check = &self.check;
        let (method, path, body) = match check.mode {
            HealthCheckMode::Http => (check.method.clone(), check.path.as_str(), Bytes::new()),
            // A gRPC message frame: not compressed, 0 bytes long (an empty
            // `HealthCheckRequest`, service "": the whole server).
            HealthCheckMode::Grpc => (
                Method::POST,
                "/grpc.health.v1.Health/Check",
                Bytes::from_static(&[0, 0, 0, 0, 0]),
            ),
        };
        let mut builder = if http2 {
            let host = self.host.to_str().map_err(|e| e.to_string())?;
            Request::builder()
                .version(http::Version::HTTP_2)
                .uri(format!("{}://{host}{path}", self.scheme))
        } else {
            Request::builder()
                .uri(path)
                .header(header::HOST, self.host.clone())
                .header(header::CONNECTION, "close")
        };
        builder = builder
            .method(method)
            .header(header::USER_AGENT, "ccgate-health-check");
        if check.mode == HealthCheckMode::Grpc {
            builder = builder
                .header(header::CONTENT_TYPE, "application/grpc")
                .header(header::TE, "trailers");
        }
        for (name, value) in &check.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))
    }
}

/// Whether a `grpc.health.v1.Health/Check` answer says `SERVING`.
async fn grpc_verdict(response: http::Response<Incoming>) -> Result<(), String> {
    if response.status() != http::StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    // A trailers-only answer carries grpc-status in the head.
    if let Some(status) = response.headers().get("grpc-status")
        && status != "0"
    {
        return Err(format!("grpc-status {status:?}"));
    }
    let collected = Limited::new(response.into_body(), MAX_GRPC_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let trailers_status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .cloned();
    let mut body = collected.to_bytes();
    match trailers_status {
        Some(status) if status != "0" => return Err(format!("grpc-status {status:?}")),
        None if body.is_empty() => return Err("no grpc-status and no message".to_owned()),
        _ => {}
    }
    if body.len() < 5 || body[0] != 0 {
        return Err("not an uncompressed gRPC message".to_owned());
    }
    body.advance(1);
    let length = body.get_u32() as usize;
    if body.len() < length {
        return Err("truncated gRPC message".to_owned());
    }
    match serving_status(&body[..length]) {
        Some(SERVING) => Ok(()),
        Some(other) => Err(format!("status {} ({other})", status_name(other))),
        None => Err("status UNKNOWN (0)".to_owned()),
    }
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unknown value",
    }
}

/// Field 1 (`status`, an enum: varint) of a `HealthCheckResponse`;
/// `None` when absent (proto3 leaves out 0, UNKNOWN) or malformed. Other
/// fields are skipped.
fn serving_status(mut message: &[u8]) -> Option<u64> {
    let mut status = None;
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = Some(varint(&mut message)?),
            (_, 0) => {
                varint(&mut message)?;
            }
            (_, 1) => message = message.get(8..)?,
            (_, 2) => {
                let length = usize::try_from(varint(&mut message)?).ok()?;
                message = message.get(length..)?;
            }
            (_, 5) => message = message.get(4..)?,
            _ => return None,
        }
    }
    status
}

/// A protobuf varint, at most 10 bytes.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for shift in 0..10 {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_status_is_read_from_the_message() {
        assert_eq!(serving_status(&[0x08, 0x01]), Some(SERVING));
        assert_eq!(serving_status(&[0x08, 0x02]), Some(2));
        assert_eq!(serving_status(&[]), None);
        // An unknown length-delimited field first, then status.
        assert_eq!(
            serving_status(&[0x12, 0x02, b'h', b'i', 0x08, 0x01]),
            Some(1)
        );
        // Truncated or hostile input: no status, no panic.
        assert_eq!(serving_status(&[0x08]), None);
        assert_eq!(serving_status(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]), None);
        assert_eq!(serving_status(&[0xff; 12]), None);
        assert_eq!(serving_status(&[0x0b]), None);
    }
}
