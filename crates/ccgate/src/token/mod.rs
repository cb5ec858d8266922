//! Access tokens from the authorization server: the client of its token
//! endpoint for the client credentials grant (RFC 6749 §4.4).
//!
//! An [`Endpoint`] is built once per configured `url` and TLS settings from
//! [`EndpointSettings`] (invalid settings are a [`BuildError`] naming the
//! option), and [`Endpoint::fetch`] exchanges [`Credentials`] for a
//! [`TokenResponse`], or a [`FetchError`] that says which status the
//! middleware answers (SPEC §2.6). Client authentication, retries, the
//! `auto` fallback and TLS trust are described on [`Endpoint`] and
//! [`TlsSettings`].
//!
//! # Security
//!
//! Secrets, tokens and key material stay in [`secrecy::SecretString`];
//! `Debug` of every type here redacts them, and no error or log line holds
//! them or the body of the authorization server's answer.
//! `insecure_skip_verify` logs a warning when an endpoint is built with it.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use ccgate::credentials::Credentials;
//! use ccgate::token::{AuthMethod, CredentialsLevel, Endpoint, EndpointSettings, FetchError};
//! use secrecy::SecretString;
//!
//! let endpoint = Endpoint::new(EndpointSettings {
//!     scopes: vec!["read".into(), "write".into()],
//!     auth_method: AuthMethod::ClientSecretBasic,
//!     timeout: Duration::from_secs(2),
//!     ..EndpointSettings::new("https://idp.example.com/oauth/token", "https://api.example.com")
//! })?;
//! assert_eq!(endpoint.audience(), "https://api.example.com");
//!
//! # async fn demo(endpoint: Endpoint) -> http::StatusCode {
//! let credentials = Credentials::new("my-app", SecretString::from("s3cret"));
//! match endpoint.fetch(&credentials).await {
//!     Ok(token) => {
//!         // token.access_token goes upstream as `Authorization: Bearer …`
//! #       let _ = token;
//!         http::StatusCode::OK
//!     }
//!     Err(error) => error.http_status(CredentialsLevel::Application),
//! }
//! # }
//! # Ok::<(), ccgate::token::BuildError>(())
//! ```
//!
//! [`Credentials`]: crate::credentials::Credentials

mod assertion;
mod auth;
mod endpoint;
mod error;
pub(crate) mod introspection;
mod response;
mod retry;
mod settings;
pub(crate) mod tls;

pub use assertion::LIFETIME as ASSERTION_LIFETIME;
pub use auth::{AuthMethod, MAX_REMEMBERED_CLIENTS};
pub(crate) use endpoint::http_client;
pub use endpoint::{Endpoint, MAX_IN_FLIGHT, MAX_INTROSPECTION_BODY};
pub use error::{BuildError, CredentialsLevel, FetchError, Outcome, Refusal};
pub use response::{MAX_EXPIRES_IN, TokenResponse};
pub use retry::{BACKOFF_BASE, BACKOFF_CAP};
pub(crate) use settings::parse_url;
pub use settings::{
    DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, EndpointSettings, RESERVED_PARAMETERS, check_parameter,
};
pub use tls::TlsSettings;
