//! Where tokens are cached: keys ([`key`]) and sealing ([`seal`]) shared
//! by every store.

pub mod key;
pub mod seal;
