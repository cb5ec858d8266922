//! Why a request was not let through, and the response that says so.
//!
//! | situation | status |
//! |---|---|
//! | application level, no usable Basic credentials | 401 + `WWW-Authenticate: Basic realm="ccgate"` |
//! | the token endpoint rejects the credentials (4xx other than 429) | 401 at application level, 502 at gateway level |
//! | claims false, or claims set and the token not a JWT | 403 |
//! | token endpoint unreachable, 5xx/429 after retries, malformed answer | 502 |
//! | the last attempt timed out | 504 |
//!
//! Bodies are one short line of text and never hold a secret, a token or
//! the authorization server's raw answer; its OAuth `error` code may be
//! named.
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
}

impl Denial {
    /// The caller sent no usable Basic credentials.
    #[must_use]
    pub fn credentials(error: BasicError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: format!("{error}"),
        }
    }

    /// The token request failed; `level` says whose credentials it carried.
    #[must_use]
    pub fn token(error: &FetchError, level: CredentialsLevel) -> Self {
        Self {
            status: error.http_status(level),
            message: error.to_string(),
        }
    }

    /// The token's claims do not allow the request.
    #[must_use]
    pub fn claims() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: "the access token's claims do not allow this request".to_owned(),
        }
    }

    /// The status of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The short message of the response body.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response: the status, `text/plain` with the message, and on a
    /// 401 `WWW-Authenticate: Basic realm="ccgate"`.
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
        response
    }
}
