//! ccgate: an OAuth 2.0 client-credentials gateway, as a library.
//!
//! This crate holds the pieces of the `oAuthClientCredentials` middleware
//! that do not need a gateway process around them. Today that is the
//! expression language ([`expr`]) and the claims checks built on it
//! ([`claims`]).

pub mod claims;
pub mod expr;
