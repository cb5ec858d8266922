//! Insecure TLS knobs, loud by name (STYLE.md §7): they exist for tests
//! and for the `insecureSkipVerify` options, which log a warning when
//! used. Shared by the token endpoint client and the gateway's upstream
//! connector, so that there is one of each.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
//! let verifier = ccgate::danger::AcceptAnyServerCertificate::new(provider);
//! let _config = rustls::ClientConfig::builder()
//!     .dangerous()
//!     .with_custom_certificate_verifier(Arc::new(verifier))
//!     .with_no_client_auth();
//! ```

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// `insecureSkipVerify`: accepts any server certificate for any name. The
/// handshake signatures are still checked, which proves only that the peer
/// holds the key of the certificate it sent, not who it is.
#[derive(Debug)]
pub struct AcceptAnyServerCertificate {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCertificate {
    /// A verifier that accepts every certificate, checking handshake
    /// signatures with `provider`'s algorithms.
    #[must_use]
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ServerCertVerifier for AcceptAnyServerCertificate {
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
