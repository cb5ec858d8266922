//! JWT client assertions (RFC 7523 §2.2, as profiled by OpenID Connect
//! Core §9): `client_secret_jwt` (HS256 keyed by the client secret) and
//! `private_key_jwt` (RS256, ES256 or EdDSA with `privateKey`).
//!
//! An assertion has `iss` = `sub` = the client id, `aud` = the token
//! endpoint URL, a fresh random `jti` (128 bits), `iat` = now and `exp` =
//! [`LIFETIME`] later. A new one is signed for every HTTP attempt, so a
//! retry never replays a `jti` the server may already have seen.
//!
//! # Security
//!
//! Keys live in aws-lc-rs key pairs, which print nothing of themselves;
//! errors about a key name the field and a fixed reason, never its text.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};

use super::BuildError;
use super::auth::form_urlencode;
use crate::credentials::Credentials;

/// Time from `iat` to `exp` of every assertion.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub(super) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Smallest accepted RSA modulus, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// The option name of the private key, for errors.
const FIELD: &str = "privateKey";

/// The private key of `private_key_jwt` and the JWS algorithm it implies.
pub(super) enum PrivateKey {
    /// RSA ≥ 2048 bits: RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
    Rs256(RsaKeyPair),
    /// EC P-256: ES256 (fixed-length `r || s`, RFC 7518 §3.4).
    Es256(EcdsaKeyPair),
    /// Ed25519: EdDSA (RFC 8037).
    EdDsa(Ed25519KeyPair),
}

impl PrivateKey {
    /// Reads the first private key of PEM text (PKCS#8, PKCS#1 RSA or SEC1
    /// EC).
    ///
    /// # Errors
    ///
    /// A [`BuildError`] on `privateKey`: not PEM, no key block, a key
    /// that aws-lc-rs rejects, RSA under 2048 bits, or a curve other than
    /// P-256 and Ed25519. The reason never quotes the key.
    pub(super) fn from_pem(pem: &SecretString) -> Result<Self, BuildError> {
        let text = pem.expose_secret();
        if !text.contains("-----BEGIN ") {
            return Err(BuildError::invalid(
                FIELD,
                "not PEM text (expected a `-----BEGIN … PRIVATE KEY-----` block; a file path is not read)",
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|_| {
            BuildError::invalid(
                FIELD,
                "no unencrypted `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block found",
            )
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs1(rsa) => RsaKeyPair::from_der(rsa.secret_pkcs1_der())
                .map(Self::Rs256)
                .map_err(|_| unsupported())?,
            PrivateKeyDer::Sec1(ec) => EcdsaKeyPair::from_private_key_der(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                ec.secret_sec1_der(),
            )
            .map(Self::Es256)
            .map_err(|_| unsupported())?,
            PrivateKeyDer::Pkcs8(pkcs8) => {
                let bytes = pkcs8.secret_pkcs8_der();
                if let Ok(rsa) = RsaKeyPair::from_pkcs8(bytes) {
                    Self::Rs256(rsa)
                } else if let Ok(ec) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
                {
                    Self::Es256(ec)
                } else if let Ok(ed) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes) {
                    Self::EdDsa(ed)
                } else {
                    return Err(unsupported());
                }
            }
            _ => return Err(unsupported()),
        };
        if let Self::Rs256(rsa) = &key
            && rsa.public_modulus_len() < MIN_RSA_BYTES
        {
            return Err(BuildError::invalid(
                FIELD,
                "an RSA key must have at least 2048 bits",
            ));
        }
        Ok(key)
    }

    /// The JWS `alg`.
    pub(super) fn algorithm(&self) -> &'static str {
        match self {
            Self::Rs256(_) => "RS256",
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ()> {
        let rng = SystemRandom::new();
        match self {
            Self::Rs256(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| ())?;
                Ok(signature)
            }
            Self::Es256(key) => Ok(key.sign(&rng, message).map_err(|_| ())?.as_ref().to_vec()),
            Self::EdDsa(key) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }
}

fn unsupported() -> BuildError {
    BuildError::invalid(
        FIELD,
        "unsupported key: expected RSA (at least 2048 bits), EC P-256 or Ed25519",
    )
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, [REDACTED])", self.algorithm())
    }
}

/// How an assertion is signed.
pub(super) enum Signing<'a> {
    /// HS256 keyed by the client secret (`client_secret_jwt`).
    Secret,
    /// With `privateKey`, its `kid` if configured (`private_key_jwt`).
    Key(&'a PrivateKey, Option<&'a str>),
}

/// The form fields of a freshly signed assertion for `credentials` at
/// `audience` (the token endpoint URL), starting with `&`:
/// `client_id`, `client_assertion_type` and `client_assertion`.
pub(super) fn body_fields(
    credentials: &Credentials,
    audience: &str,
    signing: &Signing<'_>,
) -> Result<String, &'static str> {
    let jws = sign(credentials, audience, signing, SystemTime::now())?;
    Ok(format!(
        "&client_id={}&client_assertion_type={}&client_assertion={}",
        form_urlencode(credentials.id()),
        form_urlencode(ASSERTION_TYPE),
        jws
    ))
}

fn sign(
    credentials: &Credentials,
    audience: &str,
    signing: &Signing<'_>,
    now: SystemTime,
) -> Result<String, &'static str> {
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let mut jti = [0u8; 16];
    SystemRandom::new()
        .fill(&mut jti)
        .map_err(|_| "the system random source failed")?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (alg, kid) = match signing {
        Signing::Secret => ("HS256", None),
        Signing::Key(key, kid) => (key.algorithm(), *kid),
    };
    let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    let claims = serde_json::json!({
        "iss": credentials.id(),
        "sub": credentials.id(),
        "aud": audience,
        "jti": b64.encode(jti),
        "iat": iat,
        "exp": iat + LIFETIME.as_secs(),
    });
    let mut jws = b64.encode(header.to_string());
    jws.push('.');
    b64.encode_string(claims.to_string(), &mut jws);
    let signature = match signing {
        Signing::Secret => {
            let key = hmac::Key::new(
                hmac::HMAC_SHA256,
                credentials.secret().expose_secret().as_bytes(),
            );
            hmac::sign(&key, jws.as_bytes()).as_ref().to_vec()
        }
        Signing::Key(key, _) => key
            .sign(jws.as_bytes())
            .map_err(|()| "signing the client assertion failed")?,
    };
    jws.push('.');
    b64.encode_string(signature, &mut jws);
    Ok(jws)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testing/idp/keys/");

    fn key_text(name: &str) -> SecretString {
        SecretString::from(std::fs::read_to_string(format!("{KEYS}{name}")).expect("test key"))
    }

    fn decode(part: &str) -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn reads_every_supported_key_form() {
        for (file, alg) in [
            ("rsa-2048.pkcs8.pem", "RS256"),
            ("rsa-2048.pkcs1.pem", "RS256"),
            ("ec-p256.sec1.pem", "ES256"),
            ("ec-p256.pkcs8.pem", "ES256"),
            ("ed25519.pem", "EdDSA"),
        ] {
            let key = PrivateKey::from_pem(&key_text(file)).expect(file);
            assert_eq!(key.algorithm(), alg, "{file}");
            assert_eq!(format!("{key:?}"), format!("PrivateKey({alg}, [REDACTED])"));
        }
    }

    #[test]
    fn other_keys_are_errors_on_private_key_without_key_text() {
        for (file, reason) in [
            ("rsa-1024.pem", "unsupported key"),
            ("ec-p384.sec1.pem", "unsupported key"),
        ] {
            let text = key_text(file);
            let error = PrivateKey::from_pem(&text).expect_err(file);
            assert_eq!(error.field(), Some("privateKey"));
            assert!(error.to_string().contains(reason), "{file}: {error}");
            let body = text.expose_secret().lines().nth(1).expect("a line");
            assert!(!error.to_string().contains(body));
        }
        for text in [
            "/etc/key.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let error = PrivateKey::from_pem(&SecretString::from(text)).expect_err(text);
            assert_eq!(error.field(), Some("privateKey"), "{text}");
        }
    }

    #[test]
    fn assertions_carry_the_rfc_7523_claims_and_a_fresh_jti() {
        let credentials = Credentials::new("my-client", SecretString::from("shh"));
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let key = PrivateKey::from_pem(&key_text("ec-p256.sec1.pem")).expect("key");
        let one = sign(
            &credentials,
            "https://idp/token",
            &Signing::Key(&key, Some("k1")),
            now,
        )
        .expect("signed");
        let two = sign(&credentials, "https://idp/token", &Signing::Secret, now).expect("signed");
        let parts: Vec<&str> = one.split('.').collect();
        assert_eq!(
            decode(parts[0]),
            serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
        );
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "my-client");
        assert_eq!(claims["sub"], "my-client");
        assert_eq!(claims["aud"], "https://idp/token");
        assert_eq!(claims["iat"], 1_800_000_000u64);
        assert_eq!(claims["exp"], 1_800_000_060u64);
        let other: Vec<&str> = two.split('.').collect();
        assert_eq!(
            decode(other[0]),
            serde_json::json!({"alg": "HS256", "typ": "JWT"})
        );
        assert_ne!(decode(other[1])["jti"], claims["jti"]);
        // HS256 is verifiable with the secret.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"shh");
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(other[2])
            .expect("b64");
        hmac::verify(
            &key,
            format!("{}.{}", other[0], other[1]).as_bytes(),
            &signature,
        )
        .expect("valid HS256");
        assert!(!two.contains("shh"));
    }
}
