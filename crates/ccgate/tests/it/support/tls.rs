//! Test TLS material made with rcgen: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and a client certificate, as PEM text and
//! as files in a temporary directory (for the IdP's `--tls-cert`,
//! `--tls-key` and `--client-ca`). Nothing comes from the machine's trust
//! store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A fresh test CA with a server and a client certificate, written to a
/// temporary directory that is removed on drop.
pub(crate) struct Pki {
    /// The CA certificate (PEM).
    pub(crate) ca_pem: String,
    /// The client certificate (PEM), signed by the CA.
    pub(crate) client_cert_pem: String,
    /// The client certificate's private key (PEM, PKCS#8).
    pub(crate) client_key_pem: String,
    /// A client certificate of the same CA for another name
    /// (`someone-else`), and its key: valid TLS, but not the subject the
    /// IdP registered for `tls-client`.
    pub(crate) stranger_cert_pem: String,
    pub(crate) stranger_key_pem: String,
    dir: PathBuf,
}

impl Pki {
    /// Generates the CA and certificates and writes `ca.pem`,
    /// `server.pem` and `server-key.pem`.
    pub(crate) fn new() -> Self {
        let (ca_pem, issuer) = ca("ccgate test CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) = leaf(
            &issuer,
            &["ccgate-test-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (stranger_cert_pem, stranger_key_pem) = leaf(
            &issuer,
            &["someone-else"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let dir = temp_dir();
        for (name, pem) in [
            ("ca.pem", &ca_pem),
            ("server.pem", &server_cert),
            ("server-key.pem", &server_key),
        ] {
            std::fs::write(dir.join(name), pem).expect("write test PEM file");
        }
        Self {
            ca_pem,
            client_cert_pem,
            client_key_pem,
            stranger_cert_pem,
            stranger_key_pem,
            dir,
        }
    }

    /// The CA certificate file.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate file (for `127.0.0.1` and `localhost`).
    pub(crate) fn server_cert_file(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server key file.
    pub(crate) fn server_key_file(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed CA: its PEM certificate and the issuer that signs leaves.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A leaf certificate for `names` (IP addresses become IP SANs): PEM
/// certificate and PEM key.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, &names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

/// A new, empty directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ccgate-test-pki-{}-{}-{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).expect("create test PKI directory");
    dir
}
