//! Why a request was not let through, and the response that says so.
//!
//! | situation | status |
//! |---|---|
//! | application level, no usable Basic credentials | 401 + `WWW-Authenticate: Basic realm="ccgate"` |
//! | the token endpoint rejects the credentials (4xx other than 429) | 401 at application level, 502 at gateway level |
//! | claims false, or claims set and the token not a JWT | 403 |
//! | token endpoint unreachable, 5xx/429 after retries, malformed answer | 502 |
//! | the last attempt timed out (the wait for a free request slot included) | 504 |
//! | application level: the client id started too many token requests for credentials not cached (SPEC §2.8) | 429 + `Retry-After` |
//! | the token endpoint failed repeatedly: cool-down, no token request (SPEC §2.8) | 503 + `Retry-After` |
//!
//! Bodies are one short line of text and never hold a secret, a token,
//! the authorization server's raw answer or transport details (addresses,
//! TLS or DNS errors: those are logged); its OAuth `error` code may be
//! named. `Retry-After` is in whole seconds, rounded up (at least 1).
//!
//! # Example
//!
//! ```
//! use ccgate::credentials::BasicError;
//! use ccgate::denial::Denial;
//!
//! let response = Denial::credentials(BasicError::Missing).response();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Basic realm="ccgate""#);
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::credentials::BasicError;
use crate::token::{CredentialsLevel, FetchError};

/// The value of `WWW-Authenticate` on every 401.
pub const WWW_AUTHENTICATE: &str = r#"Basic realm="ccgate""#;

/// A request the middleware answers itself.
#[derive(Debug, Clone)]
pub struct Denial {
    status: StatusCode,
    message: String,
    /// `Retry-After` in seconds, for a 429 or 503 refusal.
    retry_after: Option<u64>,
}

impl Denial {
    /// The caller sent no usable Basic credentials.
    #[must_use]
    pub fn credentials(error: BasicError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: format!("{error}"),
            retry_after: None,
        }
    }

    /// The token request failed, or was not sent (a refusal, with its
    /// `Retry-After`); `level` says whose credentials it carried.
    #[must_use]
    pub fn token(error: &FetchError, level: CredentialsLevel) -> Self {
        let message = match error {
            // Its detail is a transport error: for the log, not the caller.
            FetchError::Unreachable { .. } => "the token endpoint is unreachable".to_owned(),
            other => other.to_string(),
        };
        Self {
            status: error.http_status(level),
            message,
            retry_after: error.retry_after().map(whole_seconds),
        }
    }

    /// The token's claims do not allow the request.
    #[must_use]
    pub fn claims() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: "the access token's claims do not allow this request".to_owned(),
            retry_after: None,
        }
    }

    /// The status of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `Retry-After` of the response in seconds, for a 429 or 503
    /// refusal (SPEC §2.8).
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The short message of the response body.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response: the status, `text/plain` with the message, on a 401
    /// `WWW-Authenticate: Basic realm="ccgate"`, and on a refusal (429,
    /// 503) `Retry-After`.
    #[must_use]
    pub fn response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(format!("{}\n", self.message))));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl Denial {
    /// The response for a request with `request_headers`: a trailers-only
    /// gRPC answer ([`crate::grpc`]) for a gRPC call, else
    /// [`Denial::response`].
    #[must_use]
    pub fn response_to(&self, request_headers: &http::HeaderMap) -> Response<Full<Bytes>> {
        if crate::grpc::is_grpc(request_headers) {
            crate::grpc::trailers_only(self.status, &self.message)
        } else {
            self.response()
        }
    }
}

/// `wait` in whole seconds, rounded up, at least 1: a `Retry-After: 0`
/// would invite the caller straight back.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grpc_call_is_denied_with_a_grpc_status() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        let response = Denial::claims().response_to(&headers);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["grpc-status"], "7");
        let response = Denial::credentials(BasicError::Missing).response_to(&headers);
        assert_eq!(response.headers()["grpc-status"], "16");
        let plain = Denial::claims().response_to(&http::HeaderMap::new());
        assert_eq!(plain.status(), 403);
    }

    #[test]
    fn refusals_carry_retry_after_in_whole_seconds() {
        let cases = [
            (
                FetchError::Throttled {
                    retry_after: Duration::from_millis(200),
                },
                429,
                1,
            ),
            (
                FetchError::CoolingDown {
                    retry_after: Duration::from_millis(4_001),
                },
                503,
                5,
            ),
            (
                FetchError::CoolingDown {
                    retry_after: Duration::ZERO,
                },
                503,
                1,
            ),
        ];
        for (error, status, seconds) in cases {
            for level in [CredentialsLevel::Application, CredentialsLevel::Gateway] {
                let response = Denial::token(&error, level).response();
                assert_eq!(response.status(), status, "{error}");
                assert_eq!(response.headers()[header::RETRY_AFTER], seconds.to_string());
                assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
            }
        }
    }

    #[test]
    fn other_denials_have_no_retry_after_and_no_transport_detail() {
        let unreachable = FetchError::Unreachable {
            detail: "tcp connect error: 10.1.2.3:443: Connection refused".into(),
        };
        let denial = Denial::token(&unreachable, CredentialsLevel::Application);
        assert_eq!(denial.status(), 502);
        assert_eq!(denial.message(), "the token endpoint is unreachable");
        let busy = FetchError::Unavailable {
            status: 503,
            retry_after: Some(Duration::from_secs(30)),
        };
        let response = Denial::token(&busy, CredentialsLevel::Gateway).response();
        assert_eq!(response.status(), 502);
        assert!(
            !response.headers().contains_key(header::RETRY_AFTER),
            "the server's Retry-After is not passed on with a 502"
        );
    }
}
