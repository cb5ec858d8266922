//! Where tokens are cached: the memory store ([`memory`]), and the keys
//! ([`key`]) and sealing ([`seal`]) every store shares.

pub mod key;
pub mod memory;
pub mod seal;
