//! TLS to the token endpoint: the `clientConfig.tls` options turned into a
//! rustls configuration with aws-lc-rs as its explicit provider (no
//! process-wide default provider is needed).
//!
//! Trust: the platform's trust store (through rustls-platform-verifier),
//! plus the certificates of `clientConfig.tls.ca` when it is set — the CA
//! is **added** to the system roots, as Traefik adds it to the system
//! pool. The system store is read once per endpoint, at construction for
//! an `https` URL; if it is empty and no CA is set, TLS handshakes fail
//! (the fetch is [`Unreachable`](super::FetchError::Unreachable)) and a
//! warning is logged at construction.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls_platform_verifier::Verifier;
use secrecy::{ExposeSecret, SecretString};

use super::BuildError;

const CA: &str = "clientConfig.tls.ca";
const CERT: &str = "clientConfig.tls.cert";
const KEY: &str = "clientConfig.tls.key";

/// The option names of a CA bundle, a client certificate and its key, for
/// errors: PEM checks are shared with the Redis store's `tls` options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PemFields {
    pub(crate) ca: &'static str,
    pub(crate) cert: &'static str,
    pub(crate) key: &'static str,
}

const CLIENT_CONFIG: PemFields = PemFields {
    ca: CA,
    cert: CERT,
    key: KEY,
};

/// A PEM client certificate chain and its key.
pub(crate) type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The `clientConfig.tls` options: how to reach an `https` token endpoint.
///
/// Server certificates are verified against the platform's trust store
/// plus `ca`: the CA bundle is **added** to the system roots, as Traefik
/// adds it to its system pool, so setting it for a private CA does not
/// break a public endpoint. A failed verification or handshake is a
/// [`FetchError::Unreachable`](super::FetchError::Unreachable) naming the
/// TLS reason. TLS 1.2 and 1.3, with aws-lc-rs.
///
/// `Debug` shows the certificates (public) and hides the key.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM certificates trusted in addition to the system's roots.
    pub ca: Option<String>,
    /// PEM client certificate chain for mutual TLS, leaf first; needs `key`.
    pub cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert`.
    pub key: Option<SecretString>,
    /// Accept any server certificate. Only for tests: anyone on the path
    /// can then read the client secret and forge tokens. Logs a warning when
    /// an endpoint is built with it.
    pub insecure_skip_verify: bool,
}

/// The rustls configuration for `settings`. `https` says whether the
/// endpoint URL uses TLS, in which case the system trust store is read now.
pub(super) fn client_config(
    settings: &TlsSettings,
    url: &str,
    https: bool,
) -> Result<ClientConfig, BuildError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let extra_roots = match &settings.ca {
        Some(pem) => trust_anchors(pem, CA)?,
        None => Vec::new(),
    };
    let identity = identity(
        settings.cert.as_deref(),
        settings.key.as_ref(),
        CLIENT_CONFIG,
    )?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Client {
            detail: e.to_string(),
        })?
        .dangerous();
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure_skip_verify {
        tracing::warn!(
            url,
            "clientConfig.tls.insecureSkipVerify is on: the token endpoint's certificate is NOT \
             verified, so anyone on the network path can read client secrets and forge tokens"
        );
        Arc::new(InsecureAcceptAnyServerCertificate { provider })
    } else {
        let verifier = PlatformRoots::new(extra_roots, provider);
        // Read the trust store now, at configuration time, not during the
        // first request. A failure is kept and reported at each handshake.
        if https && let Err(error) = verifier.get() {
            tracing::warn!(
                url,
                %error,
                "no trust roots for the token endpoint (the system store is empty and \
                 clientConfig.tls.ca is unset): TLS connections to it will fail"
            );
        }
        Arc::new(verifier)
    };
    let builder = builder.with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| identity_error(&e, KEY))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why rustls refused a client certificate and key, as an error on `field`
/// (the key's option).
fn identity_error(error: &rustls::Error, field: &'static str) -> BuildError {
    let reason = match error {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate".to_owned()
        }
        other => format!("unusable certificate or key: {other}"),
    };
    BuildError::invalid(field, reason)
}

/// Checks that `identity` is usable for client authentication (the key
/// belongs to the certificate) with aws-lc-rs, as a TLS client would.
pub(crate) fn check_identity(identity: Identity, fields: PemFields) -> Result<(), BuildError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Client {
            detail: e.to_string(),
        })?
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
) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let certs = certificates(pem, field)?;
    let mut store = RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|_| {
            BuildError::invalid(
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
) -> Result<Option<Identity>, BuildError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(BuildError::invalid(
            fields.key,
            format!("missing: {} is set, so its key is needed", fields.cert),
        )),
        (None, Some(_)) => Err(BuildError::invalid(
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
fn certificates(
    pem: &str,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    if !pem.contains("-----BEGIN ") {
        return Err(BuildError::invalid(field, NOT_PEM));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::invalid(field, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(BuildError::invalid(
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
) -> Result<PrivateKeyDer<'static>, BuildError> {
    let pem = pem.expose_secret();
    if !pem.contains("-----BEGIN ") {
        return Err(BuildError::invalid(field, NOT_PEM));
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
        BuildError::invalid(field, reason)
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

/// Verifies server certificates against the platform's roots plus the
/// configured CA. The platform store is read on first use (or by
/// [`PlatformRoots::get`] at construction) and kept.
#[derive(Debug)]
struct PlatformRoots {
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
}

impl PlatformRoots {
    fn new(extra_roots: Vec<CertificateDer<'static>>, provider: Arc<CryptoProvider>) -> Self {
        Self {
            extra_roots,
            provider,
            verifier: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    Arc::clone(&self.provider),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for PlatformRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `insecureSkipVerify`: accepts any server certificate for any name. The
/// handshake signatures are still checked, which proves only that the peer
/// holds the key of the certificate it sent, not who it is.
#[derive(Debug)]
struct InsecureAcceptAnyServerCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for InsecureAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TlsSettings {
        TlsSettings::default()
    }

    fn error(settings: &TlsSettings) -> BuildError {
        client_config(settings, "https://idp.test/token", false).expect_err("must fail")
    }

    const SECRET_KEY_LINE: &str = "c2VjcmV0LWtleS1tYXRlcmlhbA";

    #[test]
    fn defaults_build() {
        let config = client_config(&settings(), "http://idp.test/token", false).expect("builds");
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn cert_and_key_come_together() {
        let only_cert = TlsSettings {
            cert: Some("x".into()),
            ..settings()
        };
        assert_eq!(error(&only_cert).field(), Some(KEY));
        let only_key = TlsSettings {
            key: Some("x".into()),
            ..settings()
        };
        assert_eq!(error(&only_key).field(), Some(CERT));
    }

    #[test]
    fn unreadable_pem_names_the_field() {
        let ca = TlsSettings {
            ca: Some("/etc/ssl/ca.pem".into()),
            ..settings()
        };
        let e = error(&ca);
        assert_eq!(e.field(), Some(CA));
        assert!(e.to_string().contains("not PEM text"), "{e}");

        let no_cert = TlsSettings {
            ca: Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into()),
            ..settings()
        };
        assert!(
            error(&no_cert)
                .to_string()
                .contains("no `-----BEGIN CERTIFICATE-----`")
        );

        let garbage_cert = TlsSettings {
            ca: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
            ..settings()
        };
        assert!(
            error(&garbage_cert)
                .to_string()
                .contains("certificate #1 is not a valid")
        );
    }

    #[test]
    fn key_errors_never_quote_the_key() {
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for key in [
            format!("-----BEGIN PRIVATE KEY-----\n{SECRET_KEY_LINE}\n"),
            format!(
                "-----BEGIN PRIVATE KEY-----\n{SECRET_KEY_LINE}!!\n-----END PRIVATE KEY-----\n"
            ),
            format!("-----BEGIN PRIVATE KEY {SECRET_KEY_LINE}\n"),
            format!(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{SECRET_KEY_LINE}\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            SECRET_KEY_LINE.to_owned(),
        ] {
            let settings = TlsSettings {
                cert: Some(cert.into()),
                key: Some(key.as_str().into()),
                ..settings()
            };
            let e = error(&settings);
            assert_eq!(e.field(), Some(KEY), "{e}");
            for text in [e.to_string(), format!("{e:?}"), format!("{settings:?}")] {
                assert!(!text.contains(SECRET_KEY_LINE), "{text}");
            }
        }
    }
}
