//! Errors of the token endpoint client: [`BuildError`] when settings are
//! unusable, [`FetchError`] when no token could be obtained.
//!
//! # Security
//!
//! No error holds a client secret, an access token, key material or the
//! body of the authorization server's answer. The only text taken from an
//! answer is the OAuth `error` code (RFC 6749 §5.2), and only when it is a
//! short token of `[A-Za-z0-9_.-]`; anything else is dropped.

use std::time::Duration;

use http::StatusCode;

/// Why [`Endpoint::new`](super::Endpoint::new) refused its settings.
///
/// Each message starts with the option it is about, in the names of the
/// configuration file (`url`, `clientConfig.tls.key`, …), and never holds a
/// secret or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting has a value that cannot be used. Class: configuration.
    #[error("{field}: {reason}")]
    Invalid {
        /// The option, e.g. `clientConfig.tls.ca`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built from valid settings. Class:
    /// internal.
    #[error("cannot build the HTTP client of the token endpoint: {detail}")]
    Client {
        /// The HTTP client library's reason.
        detail: String,
    },
}

impl BuildError {
    pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The option the error is about, if it is about one.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Client { .. } => None,
        }
    }
}

impl From<crate::pem::PemError> for BuildError {
    fn from(error: crate::pem::PemError) -> Self {
        Self::Invalid {
            field: error.field,
            reason: error.reason,
        }
    }
}

/// Whose credentials a token request carried, which decides how a
/// rejection is answered (SPEC §2.1, §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialsLevel {
    /// The caller sent them in its `Authorization: Basic` header: a
    /// rejection is the caller's fault (401).
    Application,
    /// They come from the middleware's configuration: a rejection is the
    /// gateway's problem, not the caller's (502).
    Gateway,
}

/// Why no token was obtained from the token endpoint.
///
/// Retries (SPEC §2.2) have already happened when a `FetchError` is
/// returned; it describes the final state. [`FetchError::http_status`] is
/// the status the middleware answers with (SPEC §2.6) and
/// [`FetchError::outcome`] the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The token endpoint answered a 4xx other than 429: it refused the
    /// client credentials or the request. Never retried (except once with
    /// the other client authentication method under `auto`). Class: the
    /// caller at application level, the configuration at gateway level.
    #[error("the token endpoint rejected the request: HTTP {status}{}", code_suffix(.oauth_error.as_deref()))]
    Rejected {
        /// The HTTP status, 400–499 but not 429.
        status: u16,
        /// The OAuth `error` code of the answer (e.g. `invalid_client`),
        /// when it is a short token of `[A-Za-z0-9_.-]`.
        oauth_error: Option<String>,
    },
    /// No HTTP answer: connection refused, DNS or TLS failure, connection
    /// reset or closed before the answer was complete, on the last attempt.
    /// Class: authorization server (or the network to it).
    #[error("the token endpoint is unreachable: {detail}")]
    Unreachable {
        /// The transport's reason, e.g. `tcp connect error: Connection
        /// refused (os error 111)` or a TLS certificate error. Never holds
        /// the URL's query, credentials or any answer body.
        detail: String,
    },
    /// The last attempt got HTTP 429 or a 5xx. Class: authorization server.
    #[error("the token endpoint is unavailable: HTTP {status}")]
    Unavailable {
        /// The HTTP status of the last answer.
        status: u16,
        /// The `Retry-After` (delta-seconds, RFC 9110 §10.2.3) of the last
        /// answer when it was a 429 or a 503, the statuses it is defined
        /// for; it lengthens the middleware's cool-down (SPEC §2.8).
        retry_after: Option<Duration>,
    },
    /// The answer is not a token response: a 2xx whose body is not JSON
    /// with a non-empty `access_token`, with a `token_type` other than
    /// `Bearer`, or with a bad `expires_in`; or a status that is neither
    /// success nor error, such as a redirect (3xx, never followed). Not
    /// retried. Class: authorization server (or a wrong `url`).
    #[error("the token endpoint's answer is not a token response (HTTP {status}): {reason}")]
    Malformed {
        /// The HTTP status of the answer.
        status: u16,
        /// What is wrong with it; a fixed text, never a part of the body.
        reason: &'static str,
    },
    /// The last attempt got no complete answer within the per-attempt
    /// timeout. Class: authorization server (or the network to it).
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// No token request was made: at application level, this client id
    /// started more token requests (for credentials not in the cache) than
    /// its budget allows (SPEC §2.8; `source::throttle`). The caller may
    /// try again after `retry_after`. Not remembered by the negative
    /// cache. Class: the caller (ccgate protects the authorization server).
    #[error("too many token requests for this client id; retry later")]
    Throttled {
        /// When the client id's budget allows the next token request.
        retry_after: Duration,
    },
    /// No token request was made: the token endpoint failed several times
    /// in a row and the middleware leaves it alone for a cool-down
    /// (SPEC §2.8; `source::breaker`). Cached tokens are still served.
    /// Class: authorization server (as seen recently; ccgate refuses for
    /// it).
    #[error("the token endpoint is failing; token requests are paused")]
    CoolingDown {
        /// When the middleware lets a token request through again (the end
        /// of the cool-down, or shortly when a probe is in flight).
        retry_after: Duration,
    },
    /// The token was obtained but its introspection (`introspection`,
    /// RFC 7662) failed: the introspection endpoint's error, classified as
    /// a token endpoint's at gateway level (a rejection is 502, a timeout
    /// 504). The token is not cached nor forwarded. Class: authorization
    /// server.
    #[error("introspection of the access token failed: {0}")]
    Introspection(Box<FetchError>),
    /// The introspection endpoint says the token is not active (`active:
    /// false`): it is never forwarded (403). Class: authorization server
    /// (its policy).
    #[error("the access token is not active (introspection)")]
    Inactive,
    /// The token failed `verify`: not a JWT, a signature that does not
    /// verify with the JWKS, a forbidden `alg`, or a wrong `iss` or `aud`
    /// (or the JWKS could not be fetched). Never forwarded nor cached.
    /// Class: authorization server (or an attacker between it and ccgate,
    /// or in the shared store).
    #[error("the access token failed verification: {reason}")]
    Unverified {
        /// What failed; a fixed text, never a part of the token.
        reason: &'static str,
    },
    /// The fetch ended without an answer of its own: it panicked, or its
    /// task was cancelled (aborted, or the runtime shut down). Callers that
    /// waited for it get this instead of the panic; the next request starts
    /// a fresh fetch. Class: internal.
    #[error("internal error: {reason}")]
    Internal {
        /// What happened to the fetch; a fixed text, never a panic's
        /// message (which could hold anything).
        reason: &'static str,
    },
}

impl FetchError {
    /// The status the middleware answers a request with when it could not
    /// get a token (SPEC §2.6, §2.8): a rejection is 401 at application
    /// level and 502 at gateway level, a timeout of the last attempt 504,
    /// a throttled client id 429, a cool-down 503, anything else (an
    /// internal error included) 502.
    #[must_use]
    pub fn http_status(&self, level: CredentialsLevel) -> StatusCode {
        match (self, level) {
            (Self::Introspection(error), _) => error.http_status(CredentialsLevel::Gateway),
            (Self::Inactive, _) => StatusCode::FORBIDDEN,
            (Self::Rejected { .. }, CredentialsLevel::Application) => StatusCode::UNAUTHORIZED,
            (Self::Timeout, _) => StatusCode::GATEWAY_TIMEOUT,
            (Self::Throttled { .. }, _) => StatusCode::TOO_MANY_REQUESTS,
            (Self::CoolingDown { .. }, _) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The outcome this error counts as in `ccgate_token_requests_total`,
    /// or `None` when no token request was made (a [`Refusal`], counted
    /// in `ccgate_token_requests_refused_total` instead). Exactly one of
    /// [`outcome`](Self::outcome) and [`refusal`](Self::refusal) is `Some`.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Self::Rejected { .. } => Some(Outcome::Rejected),
            Self::Unreachable { .. } => Some(Outcome::Unreachable),
            Self::Unavailable { .. } => Some(Outcome::Unavailable),
            Self::Malformed { .. } => Some(Outcome::Malformed),
            Self::Timeout => Some(Outcome::Timeout),
            Self::Internal { .. } => Some(Outcome::Internal),
            Self::Introspection(error) => error.outcome(),
            Self::Inactive => Some(Outcome::Rejected),
            Self::Unverified { .. } => Some(Outcome::Malformed),
            Self::Throttled { .. } | Self::CoolingDown { .. } => None,
        }
    }

    /// Why no token request was made, for the errors that stand for one
    /// ccgate refused to send; `None` for the outcome of a token request.
    #[must_use]
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Throttled { .. } => Some(Refusal::Throttled),
            Self::CoolingDown { .. } => Some(Refusal::CoolingDown),
            Self::Rejected { .. }
            | Self::Unreachable { .. }
            | Self::Unavailable { .. }
            | Self::Malformed { .. }
            | Self::Timeout
            | Self::Internal { .. }
            | Self::Introspection(_)
            | Self::Inactive
            | Self::Unverified { .. } => None,
        }
    }

    /// How long the caller should wait before trying again, sent as
    /// `Retry-After` with the 429 and 503 of a [`Refusal`]; `None` for
    /// every other error (the authorization server's own `Retry-After` is
    /// not passed on with a 502).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::CoolingDown { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// True when the token endpoint refused the credentials or the request
    /// ([`FetchError::Rejected`]); the answer will not change until the
    /// credentials or the configuration do.
    #[must_use]
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// True when the token endpoint (or the introspection endpoint) itself
    /// failed — no answer, a timeout, 429 or a 5xx ([`Unreachable`](Self::Unreachable),
    /// [`Timeout`](Self::Timeout), [`Unavailable`](Self::Unavailable)):
    /// what counts towards a middleware's cool-down (SPEC §2.8). A
    /// rejection or a malformed answer shows the endpoint is answering.
    #[must_use]
    pub fn is_endpoint_failure(&self) -> bool {
        match self {
            Self::Introspection(error) => error.is_endpoint_failure(),
            _ => matches!(
                self,
                Self::Unreachable { .. } | Self::Timeout | Self::Unavailable { .. }
            ),
        }
    }
}

/// A token request ccgate did not send, to protect the authorization
/// server (SPEC §2.8): the `reason` label of
/// `ccgate_token_requests_refused_total`. Every refusing [`FetchError`]
/// maps to one ([`FetchError::refusal`], an exhaustive match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// [`FetchError::Throttled`].
    Throttled,
    /// [`FetchError::CoolingDown`]. Keep it last: [`Refusal::ALL`] is sized
    /// by it.
    CoolingDown,
}

impl Refusal {
    /// Every refusal, in declaration order (`ALL[r as usize] == r`).
    pub const ALL: [Self; Self::CoolingDown as usize + 1] = [Self::Throttled, Self::CoolingDown];

    /// The metric label: `throttled` or `cooling_down`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::CoolingDown => "cooling_down",
        }
    }
}

/// The outcome of one token request: the `outcome` label of
/// `ccgate_token_requests_total`. Every [`FetchError`] maps to one
/// ([`FetchError::outcome`], an exhaustive match), so a new error cannot
/// go uncounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A token was obtained.
    Success,
    /// [`FetchError::Rejected`].
    Rejected,
    /// [`FetchError::Unreachable`].
    Unreachable,
    /// [`FetchError::Unavailable`].
    Unavailable,
    /// [`FetchError::Malformed`].
    Malformed,
    /// [`FetchError::Timeout`].
    Timeout,
    /// [`FetchError::Internal`]. Keep it last: [`Outcome::ALL`] is sized by it.
    Internal,
}

impl Outcome {
    /// Every outcome, in declaration order (`ALL[o as usize] == o`).
    pub const ALL: [Self; Self::Internal as usize + 1] = [
        Self::Success,
        Self::Rejected,
        Self::Unreachable,
        Self::Unavailable,
        Self::Malformed,
        Self::Timeout,
        Self::Internal,
    ];

    /// The metric label: `success`, `rejected`, `unreachable`,
    /// `unavailable`, `malformed`, `timeout` or `internal`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Rejected => "rejected",
            Self::Unreachable => "unreachable",
            Self::Unavailable => "unavailable",
            Self::Malformed => "malformed",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|code| format!(" ({code})")).unwrap_or_default()
}

/// Longest OAuth `error` code kept in a [`FetchError::Rejected`].
const MAX_CODE_LEN: usize = 64;

/// The `error` member of an OAuth error answer (RFC 6749 §5.2) when it is a
/// short token of `[A-Za-z0-9_.-]`, else `None`.
pub(super) fn oauth_error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    let acceptable = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    acceptable.then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<FetchError> {
        vec![
            FetchError::Rejected {
                status: 401,
                oauth_error: Some("invalid_client".into()),
            },
            FetchError::Unreachable {
                detail: "tcp connect error".into(),
            },
            FetchError::Unavailable {
                status: 503,
                retry_after: Some(Duration::from_secs(7)),
            },
            FetchError::Malformed {
                status: 200,
                reason: "the body is not JSON",
            },
            FetchError::Timeout,
            FetchError::Internal {
                reason: "the token fetch panicked",
            },
            FetchError::Throttled {
                retry_after: Duration::from_millis(200),
            },
            FetchError::CoolingDown {
                retry_after: Duration::from_secs(5),
            },
        ]
    }

    #[test]
    fn statuses_follow_the_spec() {
        use CredentialsLevel::{Application, Gateway};
        let expected = [
            (401, 502),
            (502, 502),
            (502, 502),
            (502, 502),
            (504, 504),
            (502, 502),
            (429, 429),
            (503, 503),
        ];
        for (error, (application, gateway)) in all().iter().zip(expected) {
            assert_eq!(
                error.http_status(Application).as_u16(),
                application,
                "{error}"
            );
            assert_eq!(error.http_status(Gateway).as_u16(), gateway, "{error}");
        }
    }

    #[test]
    fn outcomes_are_distinct_labels() {
        let labels: Vec<_> = all()
            .iter()
            .map(|e| match (e.outcome(), e.refusal()) {
                (Some(outcome), None) => outcome.label(),
                (None, Some(refusal)) => refusal.label(),
                other => panic!("{e}: exactly one of outcome and refusal: {other:?}"),
            })
            .collect();
        assert_eq!(
            labels,
            [
                "rejected",
                "unreachable",
                "unavailable",
                "malformed",
                "timeout",
                "internal",
                "throttled",
                "cooling_down",
            ]
        );
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i, "ALL is in declaration order");
        }
        for (i, refusal) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*refusal as usize, i, "ALL is in declaration order");
        }
        assert!(all()[0].is_rejection());
        assert!(all()[1..].iter().all(|e| !e.is_rejection()));
        let failures: Vec<bool> = all().iter().map(FetchError::is_endpoint_failure).collect();
        assert_eq!(
            failures,
            [false, true, true, false, true, false, false, false]
        );
    }

    #[test]
    fn only_refusals_carry_a_retry_after_for_the_caller() {
        let retry_after: Vec<_> = all().iter().map(FetchError::retry_after).collect();
        let mut expected = vec![None; 6];
        expected.push(Some(Duration::from_millis(200)));
        expected.push(Some(Duration::from_secs(5)));
        assert_eq!(
            retry_after, expected,
            "the server's own Retry-After stays inside"
        );
        for refusal in &all()[6..] {
            assert!(refusal.to_string().len() < 80, "short: {refusal}");
        }
    }

    #[test]
    fn introspection_and_verification_errors_follow_the_spec() {
        use CredentialsLevel::{Application, Gateway};
        let rejected = FetchError::Introspection(Box::new(all()[0].clone()));
        for level in [Application, Gateway] {
            assert_eq!(
                rejected.http_status(level).as_u16(),
                502,
                "never the caller's 401"
            );
            assert_eq!(FetchError::Inactive.http_status(level).as_u16(), 403);
            let unverified = FetchError::Unverified {
                reason: "bad signature",
            };
            assert_eq!(unverified.http_status(level).as_u16(), 502);
        }
        let timeout = FetchError::Introspection(Box::new(FetchError::Timeout));
        assert_eq!(timeout.http_status(Application).as_u16(), 504);
        assert!(
            timeout.is_endpoint_failure(),
            "counts towards the cool-down"
        );
        assert!(!rejected.is_endpoint_failure());
        assert_eq!(timeout.outcome(), Some(Outcome::Timeout));
        assert_eq!(FetchError::Inactive.outcome(), Some(Outcome::Rejected));
        assert!(
            rejected
                .to_string()
                .starts_with("introspection of the access token failed")
        );
    }

    #[test]
    fn display_names_the_oauth_code() {
        assert_eq!(
            all()[0].to_string(),
            "the token endpoint rejected the request: HTTP 401 (invalid_client)"
        );
        let bare = FetchError::Rejected {
            status: 403,
            oauth_error: None,
        };
        assert_eq!(
            bare.to_string(),
            "the token endpoint rejected the request: HTTP 403"
        );
    }

    #[test]
    fn only_short_plain_oauth_codes_are_kept() {
        let code = |body: &str| oauth_error_code(body.as_bytes());
        assert_eq!(
            code(r#"{"error":"invalid_client","error_description":"x"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(
            code(r#"{"error":"urn.x-y_z"}"#).as_deref(),
            Some("urn.x-y_z")
        );
        for rejected in [
            r#"{"error":"has space"}"#,
            r#"{"error":"<script>"}"#,
            r#"{"error":"secret\nline"}"#,
            r#"{"error":""}"#,
            r#"{"error":42}"#,
            r#"{"error_description":"no code"}"#,
            r#"["error"]"#,
            "not json",
            "",
        ] {
            assert_eq!(code(rejected), None, "{rejected}");
        }
        assert_eq!(code(&format!(r#"{{"error":"{}"}}"#, "a".repeat(65))), None);
        assert!(code(&format!(r#"{{"error":"{}"}}"#, "a".repeat(64))).is_some());
    }
}
