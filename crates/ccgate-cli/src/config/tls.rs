//! The certificate and key files of an entry point's `tls`: read, parsed
//! as PEM, and checked to belong together.

use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{ConfigError, Origin};
use super::model::TlsFiles;

/// Reads the certificate chain (leaf first) and the private key of the
/// entry point `name`, whose `tls` is `files`, configured in `main`.
///
/// # Errors
///
/// A [`ConfigError`] on `entryPoints.NAME.tls.certFile` or `.keyFile`: a
/// file that cannot be read, holds no PEM certificate or key, or a key
/// that does not belong to the certificate. Messages about the key never
/// quote its content.
pub(crate) fn read_tls(
    name: &str,
    files: &TlsFiles,
    main: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let origin = Origin::file(main);
    let cert_field = format!("entryPoints.{name}.tls.certFile");
    let key_field = format!("entryPoints.{name}.tls.keyFile");
    let cert_file = files.cert_file.display();
    let key_file = files.key_file.display();

    let text = std::fs::read(&files.cert_file)
        .map_err(|e| origin.error(&cert_field, format!("cannot read {cert_file}: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| origin.error(&cert_field, format!("invalid PEM in {cert_file}: {e}")))?;
    if chain.is_empty() {
        let reason = format!("no `-----BEGIN CERTIFICATE-----` block in {cert_file}");
        return Err(origin.error(&cert_field, reason));
    }

    let text = std::fs::read(&files.key_file)
        .map_err(|e| origin.error(&key_field, format!("cannot read {key_file}: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|error| {
        let reason = match error {
            pem::Error::NoItemsFound => {
                format!(
                    "no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` \
                     block) in {key_file}"
                )
            }
            // Other PEM errors may quote bytes of the key: not shown.
            _ => format!("invalid PEM in {key_file}"),
        };
        origin.error(&key_field, reason)
    })?;

    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(|error| {
        let reason = match error {
            rustls::Error::InconsistentKeys(_) => {
                format!("the key in {key_file} does not belong to the certificate in {cert_file}")
            }
            other => format!("unusable certificate or key: {other}"),
        };
        origin.error(&key_field, reason)
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A directory with `cert.pem`, `key.pem` (its key), `other-key.pem`
    /// and `junk.pem`, removed on drop.
    struct Files(PathBuf);

    impl Files {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("ccgate-tls-{}-{test}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let cert = rcgen::generate_simple_self_signed(["localhost".to_owned()]).unwrap();
            let other = rcgen::KeyPair::generate().unwrap();
            std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
            std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
            std::fs::write(dir.join("junk.pem"), "not PEM at all").unwrap();
            Self(dir)
        }

        fn read(&self, cert: &str, key: &str) -> Result<usize, String> {
            let files = TlsFiles {
                cert_file: self.0.join(cert),
                key_file: self.0.join(key),
            };
            read_tls("websecure", &files, Path::new("ccgate.yaml"))
                .map(|(chain, _)| chain.len())
                .map_err(|e| e.to_string().replace(&*self.0.to_string_lossy(), "DIR"))
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_a_matching_pair() {
        let files = Files::new("pair");
        assert_eq!(files.read("cert.pem", "key.pem"), Ok(1));
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let files = Files::new("errors");
        let err = files.read("missing.pem", "key.pem").unwrap_err();
        assert!(
            err.starts_with(
                "ccgate.yaml: entryPoints.websecure.tls.certFile: cannot read DIR/missing.pem: "
            ),
            "{err}"
        );
        assert_eq!(
            files.read("junk.pem", "key.pem").unwrap_err(),
            "ccgate.yaml: entryPoints.websecure.tls.certFile: no `-----BEGIN CERTIFICATE-----` block in DIR/junk.pem"
        );
        assert_eq!(
            files.read("cert.pem", "junk.pem").unwrap_err(),
            "ccgate.yaml: entryPoints.websecure.tls.keyFile: no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block) in DIR/junk.pem"
        );
        assert_eq!(
            files.read("cert.pem", "other-key.pem").unwrap_err(),
            "ccgate.yaml: entryPoints.websecure.tls.keyFile: the key in DIR/other-key.pem does not belong to the certificate in DIR/cert.pem"
        );
        // A certificate is not a key.
        assert!(
            files
                .read("cert.pem", "cert.pem")
                .unwrap_err()
                .contains("no private key")
        );
    }
}
