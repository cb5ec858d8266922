//! Test support of the `ccgate` command's tests: the real test IdP and
//! TLS material (shared with the library's tests), a real echo upstream,
//! the `ccgate serve` process on a temporary configuration, the committed
//! examples, the reverse proxies of the forward-auth tests, real Redis
//! servers, a real WebSocket server, and the library's FAKE token server
//! (for token claims the real IdP cannot issue).

// Shared with the library's tests; not every helper is used here.
#[allow(dead_code)]
#[path = "../../../../ccgate/tests/it/support/fault_server.rs"]
pub(crate) mod fault_server;
#[allow(dead_code)]
#[path = "../../../../ccgate/tests/it/support/idp.rs"]
pub(crate) mod idp;
#[allow(dead_code)]
#[path = "../../../../ccgate/tests/it/support/redis_server.rs"]
pub(crate) mod redis_server;
#[allow(dead_code)]
#[path = "../../../../ccgate/tests/it/support/tls.rs"]
pub(crate) mod tls;

mod check;
pub(crate) mod echo;
pub(crate) mod examples;
#[cfg(feature = "kubernetes")]
pub(crate) mod fake_kube;
pub(crate) mod gateway;
pub(crate) mod proxies;
pub(crate) mod websocket;

pub(crate) use check::{ConfigDir, assert_contains};

/// The rustls provider the tests' own TLS clients use: aws-lc-rs, as ccgate.
pub(crate) fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `Basic base64(id:secret)`.
pub(crate) fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}
