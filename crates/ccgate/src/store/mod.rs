//! Where tokens are cached: the memory store ([`memory`]), the Redis
//! store shared by replicas ([`redis`]), and the keys ([`key`]) and
//! sealing ([`seal`]) every store shares.
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

pub mod key;
pub mod memory;
pub mod redis;
pub mod seal;
