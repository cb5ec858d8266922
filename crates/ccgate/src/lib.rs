//! ccgate: an OAuth 2.0 client-credentials gateway, as a library.
//!
//! This crate holds the `oAuthClientCredentials` middleware, usable without
//! a gateway process around it: the expression language ([`expr`]), the
//! claims checks built on it ([`claims`]), client credentials
//! ([`credentials`]) and the token endpoint client ([`token`]).

pub mod claims;
pub mod credentials;
pub mod decision;
pub mod expr;
pub mod store;
pub mod token;
