//! Where tokens are cached: the cached token itself ([`entry`]), the
//! memory store ([`memory`]), the Redis store shared by replicas
//! (`redis`, behind the cargo feature `redis`), and the keys ([`key`]) and
//! sealing ([`seal`]) every store shares.
//!
//! The stores sit below the token source ([`crate::source`]), which drives
//! them; they know entries, keys and the token endpoint's error type, and
//! nothing above.
//!
//! # Example
//!
//! ```
//! use ccgate::store::seal::Sealer;
//!
//! let sealer = Sealer::new(b"0123456789abcdef")?; // AES-128-GCM
//! let sealed = sealer.seal(b"ccgate:key", b"token");
//! assert_eq!(sealer.open(b"ccgate:key", &sealed).as_deref(), Some(&b"token"[..]));
//! assert_eq!(sealer.open(b"ccgate:other-key", &sealed), None);
//! # Ok::<(), ccgate::store::seal::KeyLengthError>(())
//! ```

pub(crate) mod entry;
pub(crate) mod key;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub mod seal;
