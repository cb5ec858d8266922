//! The token endpoint client (`ccgate::token`) against the real test IdP
//! ([`idp`]) and, for faults a real server cannot produce on demand, the
//! fake token server ([`faults`]).

mod assertions;
mod faults;
mod idp;

use std::time::Duration;

use base64::Engine as _;
use ccgate::credentials::Credentials;
use ccgate::token::{Endpoint, EndpointSettings, FetchError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::support::assert_no_leak;

const AUDIENCE: &str = "https://api.example.com";

fn credentials(id: &str, secret: &str) -> Credentials {
    Credentials::new(id, SecretString::from(secret))
}

/// Settings for `url` with test-friendly bounds: 2 s per attempt, 3 retries.
fn settings(url: &str) -> EndpointSettings {
    EndpointSettings {
        timeout: Duration::from_secs(2),
        max_retries: 3,
        ..EndpointSettings::new(url, AUDIENCE)
    }
}

fn endpoint(settings: EndpointSettings) -> Endpoint {
    Endpoint::new(settings).expect("valid endpoint settings")
}

/// The payload of a JWT access token.
fn jwt_payload(token: &SecretString) -> Value {
    let parts: Vec<&str> = token.expose_secret().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64url payload");
    serde_json::from_slice(&payload).expect("JSON payload")
}

/// Checks that `error` shows none of `secrets` and returns it.
fn checked(error: FetchError, secrets: &[&str]) -> FetchError {
    assert_no_leak(&error, secrets);
    error
}
