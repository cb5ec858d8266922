//! JSON Web Keys (RFC 7517) turned into aws-lc-rs public keys: RSA from
//! `n`/`e` (at least 2048 bits), EC P-256 from `x`/`y`, OKP Ed25519 from
//! `x`. Every other key is skipped.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The signature algorithms `verify` accepts (SPEC §2.7): never `none`,
/// never an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256, `r ‖ s`.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The algorithm of a JOSE `alg`, if it is one of the accepted.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// The public material of one key.
#[derive(Debug, Clone)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// `0x04 ‖ x ‖ y`.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// One usable signing key of a JWKS.
#[derive(Debug, Clone)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<String>,
    /// The key's own `alg`, when it names one: then only that one.
    alg: Option<String>,
    material: Material,
}

impl Jwk {
    /// The key described by `value`, or `None` if it is not a signing key
    /// of a supported type (`use` other than `sig`, an unknown `kty` or
    /// `crv`, an RSA key under 2048 bits, a malformed member).
    pub(crate) fn from_value(value: &Value) -> Option<Self> {
        let text = |name: &str| value.get(name).and_then(Value::as_str);
        let bytes = |name: &str| URL_SAFE_NO_PAD.decode(text(name)?).ok();
        if text("use").is_some_and(|usage| usage != "sig") {
            return None;
        }
        let material = match (text("kty")?, text("crv")) {
            ("RSA", _) => {
                let n = strip_leading_zeros(bytes("n")?);
                let e = strip_leading_zeros(bytes("e")?);
                if n.len() < 256 || e.is_empty() {
                    return None;
                }
                Material::Rsa { n, e }
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::P256(point)
            }
            ("OKP", Some("Ed25519")) => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return None;
                }
                Material::Ed25519(x)
            }
            _ => return None,
        };
        Some(Self {
            kid: text("kid").map(str::to_owned),
            alg: text("alg").map(str::to_owned),
            material,
        })
    }

    /// Whether this key can check a signature of `alg`.
    pub(crate) fn fits(&self, alg: Alg) -> bool {
        let kind = matches!(
            (&self.material, alg),
            (Material::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
                | (Material::P256(_), Alg::Es256)
                | (Material::Ed25519(_), Alg::EdDsa)
        );
        kind && self.alg.as_deref().is_none_or(|own| own == alg.name())
    }

    /// Whether `signature` over `message` verifies with this key under `alg`.
    pub(crate) fn verifies(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match (&self.material, alg) {
            (Material::Rsa { n, e }, Alg::Rs256 | Alg::Ps256) => {
                let params = if alg == Alg::Rs256 {
                    &RSA_PKCS1_2048_8192_SHA256
                } else {
                    &RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (Material::P256(point), Alg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Material::Ed25519(x), Alg::EdDsa) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_supported_signing_keys_are_taken() {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let ec = json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "kid": "a"});
        let key = Jwk::from_value(&ec).unwrap();
        assert_eq!(key.kid.as_deref(), Some("a"));
        assert!(key.fits(Alg::Es256) && !key.fits(Alg::Rs256));
        let mut enc = ec.clone();
        enc["use"] = json!("enc");
        assert!(Jwk::from_value(&enc).is_none());
        let mut pinned = ec;
        pinned["alg"] = json!("ES384");
        assert!(!Jwk::from_value(&pinned).unwrap().fits(Alg::Es256));
        let small_rsa = json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"});
        assert!(Jwk::from_value(&small_rsa).is_none(), "1024 bits");
        let rsa = json!({"kty": "RSA", "n": b64(&[0xff; 256]), "e": "AQAB"});
        let rsa = Jwk::from_value(&rsa).unwrap();
        assert!(rsa.fits(Alg::Rs256) && rsa.fits(Alg::Ps256) && !rsa.fits(Alg::EdDsa));
        for other in [
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])}),
            json!({"kty": "OKP", "crv": "X25519", "x": b64(&[1; 32])}),
            json!({"kty": "EC", "crv": "P-256", "x": "!!", "y": b64(&[2; 32])}),
        ] {
            assert!(Jwk::from_value(&other).is_none(), "{other}");
        }
        for name in ["none", "HS256", "RS384", "ES384", "", "rs256"] {
            assert_eq!(Alg::from_name(name), None, "{name}");
        }
    }
}
