//! Integration tests of the `ccgate` library.

mod claims_edge_cases;
mod claims_seed;
mod expr_errors;
mod expr_properties;
mod middleware;
#[cfg(feature = "redis")]
mod redis_store;
mod support;
mod token_endpoint;
