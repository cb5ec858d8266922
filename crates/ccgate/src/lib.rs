//! ccgate: an OAuth 2.0 client-credentials gateway, as a library.
//!
//! This crate is the `oAuthClientCredentials` middleware, usable without a
//! gateway process around it:
//!
//! - [`options`]: the configuration, with Traefik Hub's field names;
//! - [`Middleware`]: built from the options, it authorizes requests —
//!   credentials ([`credentials`]), a token from the endpoint ([`token`]),
//!   cached (sealing in [`store`]), and its claims ([`claims`],
//!   [`decision`]);
//! - [`layer`]: a `tower::Layer` for axum, hyper or tonic services;
//! - [`verify`]: checks of JWT access tokens against a JWKS (`verify`);
//! - [`metrics`]: Prometheus metrics on a registry you own;
//! - [`grpc`]: gRPC-shaped denials for gRPC callers;
//! - [`expr`]: the expression language shared by claims and router rules.
//!
//! See [`layer`] for a complete example.

pub mod claims;
pub mod credentials;
pub mod danger;
pub mod decision;
pub mod denial;
pub mod expr;
pub mod grpc;
pub mod layer;
pub mod metrics;
pub mod middleware;
pub mod options;
mod pem;
mod source;
pub mod store;
pub mod token;
pub mod verify;

pub use middleware::Middleware;
