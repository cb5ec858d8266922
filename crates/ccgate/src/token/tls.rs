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
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_platform_verifier::Verifier;
use secrecy::SecretString;

use super::BuildError;
use crate::pem::{PemFields, identity, identity_error, trust_anchors};

const CA: &str = "clientConfig.tls.ca";
const CERT: &str = "clientConfig.tls.cert";
const KEY: &str = "clientConfig.tls.key";

const CLIENT_CONFIG: PemFields = PemFields {
    ca: CA,
    cert: CERT,
    key: KEY,
};

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
        Some(pem) => trust_anchors(pem, CLIENT_CONFIG.ca)?,
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
        Arc::new(crate::danger::AcceptAnyServerCertificate::new(provider))
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
            .map_err(|e| BuildError::from(identity_error(&e, KEY)))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
