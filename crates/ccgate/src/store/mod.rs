//! Where tokens are cached: the memory store ([`memory`]), the Redis
//! store shared by replicas ([`redis`]), and the keys ([`key`]) and
//! sealing ([`seal`]) every store shares.

pub mod key;
pub mod memory;
pub mod redis;
pub mod seal;
