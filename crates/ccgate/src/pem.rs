//! PEM text of certificates and private keys, read and checked with the
//! field it came from: the token endpoint's `clientConfig.tls` and the
//! Redis store's `store.redis.tls` share these checks.
//!
//! Values are PEM text, never file paths (a path is "not PEM text").
//!
//! # Security
//!
//! No error quotes its input: a PEM parser's message may hold a line of
//! it, which for a key is key material, so every reason is a fixed text.

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

/// The option names of a CA bundle, a client certificate and its key, for
/// errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PemFields {
    pub(crate) ca: &'static str,
    pub(crate) cert: &'static str,
    pub(crate) key: &'static str,
}

/// A PEM client certificate chain and its key.
pub(crate) type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A PEM value that cannot be used: its option and a fixed reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemError {
    /// The option, e.g. `clientConfig.tls.ca`.
    pub(crate) field: &'static str,
    /// What is wrong with it; never a part of the value.
    pub(crate) reason: String,
}

impl PemError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Why rustls refused a client certificate and key, as an error on `field`
/// (the key's option).
pub(crate) fn identity_error(error: &rustls::Error, field: &'static str) -> PemError {
    let reason = match error {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate".to_owned()
        }
        other => format!("unusable certificate or key: {other}"),
    };
    PemError::new(field, reason)
}

/// Checks that `identity` is usable for client authentication (the key
/// belongs to the certificate) with aws-lc-rs, as a TLS client would.
#[cfg(feature = "redis")]
pub(crate) fn check_identity(identity: Identity, fields: PemFields) -> Result<(), PemError> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PemError::new(fields.key, format!("cannot check the key: {e}")))?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(identity.0, identity.1)
        .map_err(|e| identity_error(&e, fields.key))?;
    Ok(())
}

/// The certificates of a CA bundle option (`field`), each checked to be a
/// usable trust anchor.
pub(crate) fn trust_anchors(
    pem: &str,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = certificates(pem, field)?;
    let mut store = RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|_| {
            PemError::new(
                field,
                format!(
                    "certificate #{} is not a valid X.509 CA certificate",
                    index + 1
                ),
            )
        })?;
    }
    Ok(certs)
}

/// The client certificate chain and key, when both are set.
pub(crate) fn identity(
    cert: Option<&str>,
    key: Option<&SecretString>,
    fields: PemFields,
) -> Result<Option<Identity>, PemError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(PemError::new(
            fields.key,
            format!("missing: {} is set, so its key is needed", fields.cert),
        )),
        (None, Some(_)) => Err(PemError::new(
            fields.cert,
            format!(
                "missing: {} is set, so its certificate is needed",
                fields.key
            ),
        )),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, fields.cert)?;
            let key = private_key(key, fields.key)?;
            Ok(Some((chain, key)))
        }
    }
}

/// Every `CERTIFICATE` block of `pem`; at least one.
fn certificates(pem: &str, field: &'static str) -> Result<Vec<CertificateDer<'static>>, PemError> {
    if !pem.contains("-----BEGIN ") {
        return Err(PemError::new(field, NOT_PEM));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::new(field, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(PemError::new(
            field,
            "no `-----BEGIN CERTIFICATE-----` block found",
        ));
    }
    Ok(certs)
}

/// The first private key block of `pem`, the value of `field`.
fn private_key(
    pem: &SecretString,
    field: &'static str,
) -> Result<PrivateKeyDer<'static>, PemError> {
    let pem = pem.expose_secret();
    if !pem.contains("-----BEGIN ") {
        return Err(PemError::new(field, NOT_PEM));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        let reason = match e {
            pem::Error::NoItemsFound if pem.contains("ENCRYPTED PRIVATE KEY") => {
                "encrypted private keys are not supported"
            }
            pem::Error::NoItemsFound => {
                "no `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block found"
            }
            other => pem_reason(&other),
        };
        PemError::new(field, reason)
    })
}

const NOT_PEM: &str = "not PEM text (expected `-----BEGIN …-----` blocks; a file path is not read)";

/// A fixed reason for a PEM error: the error's own text may quote a line
/// of the input, which for a key is key material.
fn pem_reason(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no `-----END …-----` line",
        pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed",
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64",
        pem::Error::SectionTooLarge => "a PEM block is too large",
        _ => "not valid PEM",
    }
}
