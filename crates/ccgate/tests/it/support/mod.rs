//! Test support shared by the integration tests: the real test
//! authorization server ([`idp`]) and test TLS material ([`tls`]).

pub(crate) mod idp;
pub(crate) mod tls;

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

