//! Sealing stored values with AES-GCM, so that a store's reader learns
//! nothing about the tokens and cannot move an entry to another key.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖
//! tag (16 bytes)`. The nonce is fresh and random for every write; the
//! store key is the associated data, so an entry copied under another key
//! fails to open and counts as a miss.

use std::fmt;

use aws_lc_rs::aead::{
    AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// The format version byte leading every sealed value.
const VERSION: u8 = 1;

/// Seals and opens values with the `store.secret` key.
pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

/// `store.secret` does not have 16, 24 or 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 16, 24 or 32 bytes long (AES-128, -192 or -256), not {0}")]
pub struct KeyLengthError(pub usize);

impl Sealer {
    /// A sealer using `secret` as the AES-GCM key: 16 bytes for AES-128,
    /// 24 for AES-192, 32 for AES-256.
    ///
    /// # Errors
    ///
    /// [`KeyLengthError`] for any other length.
    pub fn new(secret: &[u8]) -> Result<Self, KeyLengthError> {
        let algorithm = match secret.len() {
            16 => &AES_128_GCM,
            24 => &AES_192_GCM,
            32 => &AES_256_GCM,
            n => return Err(KeyLengthError(n)),
        };
        let key = UnboundKey::new(algorithm, secret).map_err(|_| KeyLengthError(secret.len()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        })
    }

    /// Seals `plaintext` for storage under `store_key`.
    ///
    /// # Panics
    ///
    /// Only if the system's random source fails, which leaves no safe way
    /// to encrypt.
    #[must_use]
    pub fn seal(&self, store_key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut sealed =
            Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + self.key.algorithm().tag_len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key),
                &mut body,
            )
            .expect("AES-GCM seals any input under 64 GiB");
        sealed.extend_from_slice(&body);
        sealed
    }

    /// Opens a value sealed under `store_key`; `None` if it was sealed with
    /// another key or under another store key, or was altered.
    #[must_use]
    pub fn open(&self, store_key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(store_key), &mut body)
            .ok()?;
        Some(plaintext.to_vec())
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("algorithm", self.key.algorithm())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.payload.signature";

    #[test]
    fn round_trips_with_every_key_length() {
        for len in [16, 24, 32] {
            let sealer = Sealer::new(&vec![7u8; len]).unwrap();
            let sealed = sealer.seal(b"prefix:key", TOKEN);
            assert_eq!(
                sealer.open(b"prefix:key", &sealed).as_deref(),
                Some(TOKEN),
                "{len}"
            );
        }
    }

    #[test]
    fn other_lengths_are_refused() {
        for len in [0, 1, 15, 17, 23, 25, 31, 33, 64] {
            assert_eq!(
                Sealer::new(&vec![0u8; len]).unwrap_err(),
                KeyLengthError(len)
            );
        }
    }

    #[test]
    fn the_ciphertext_hides_the_token_and_nonces_differ() {
        let sealer = Sealer::new(b"0123456789abcdef").unwrap();
        let a = sealer.seal(b"k", TOKEN);
        let b = sealer.seal(b"k", TOKEN);
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.windows(8).any(|w| TOKEN.windows(8).any(|t| t == w)));
        assert_eq!(a.len(), 1 + 12 + TOKEN.len() + 16);
    }

    #[test]
    fn an_entry_copied_under_another_key_does_not_open() {
        let sealer = Sealer::new(b"0123456789abcdef").unwrap();
        let sealed = sealer.seal(b"prefix:alice", TOKEN);
        assert_eq!(sealer.open(b"prefix:mallory", &sealed), None);
    }

    #[test]
    fn another_secret_altered_bytes_or_garbage_do_not_open() {
        let sealer = Sealer::new(b"0123456789abcdef").unwrap();
        let other = Sealer::new(b"fedcba9876543210").unwrap();
        let sealed = sealer.seal(b"k", TOKEN);
        assert_eq!(other.open(b"k", &sealed), None);
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert_eq!(sealer.open(b"k", &altered), None, "byte {i}");
        }
        for garbage in [&b""[..], b"\x01", b"\x01short", &[2u8; 64], TOKEN] {
            assert_eq!(sealer.open(b"k", garbage), None);
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let debug = format!("{:?}", Sealer::new(b"0123456789abcdef").unwrap());
        assert!(
            !debug.contains("0123456789abcdef") && debug.contains("REDACTED"),
            "{debug}"
        );
    }
}
