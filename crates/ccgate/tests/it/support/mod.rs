//! Test support shared by the integration tests: the real test
//! authorization server ([`idp`]), real Redis servers ([`redis_server`]), test
//! TLS material ([`tls`]) and a fake token server for faults the real one
//! cannot produce ([`fault_server`]).

pub(crate) mod fault_server;
pub(crate) mod idp;
#[cfg(feature = "redis")]
pub(crate) mod redis_server;
pub(crate) mod tls;
pub(crate) mod upstream;

use std::fmt::Debug;

/// Asserts that neither `Display` nor `Debug` of `value` contains any of
/// `needles` (secrets, tokens, bodies).
pub(crate) fn assert_no_leak<T: std::fmt::Display + Debug>(value: &T, needles: &[&str]) {
    let shown = format!("{value} / {value:?}");
    for needle in needles {
        assert!(
            !shown.contains(needle),
            "{needle:?} leaked into an error: {shown}"
        );
    }
}

/// The rustls provider the tests use for their own TLS clients: the one
/// ccgate uses, aws-lc-rs, passed explicitly.
pub(crate) fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Log lines written while a [`LogCapture`] is alive on this thread.
///
/// Tests run on tokio's current-thread runtime, so every task of the test,
/// and every event the code under test emits, runs on this thread.
pub(crate) struct LogCapture {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Captures every event, down to `TRACE`, from now on.
    pub(crate) fn start() -> Self {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = SharedBuffer(std::sync::Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The lines so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("log buffer")).into_owned()
    }
}

#[derive(Clone)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
