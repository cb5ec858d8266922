//! Client credentials: the gateway's own, or a caller's from its
//! `Authorization: Basic` header (RFC 7617).
//!
//! At application level each caller sends
//! `Authorization: Basic base64(client_id ":" client_secret)`. The scheme
//! name is matched case-insensitively, the decoded text is split on its
//! first `:` (a secret may hold more), and id and secret are taken
//! verbatim, as Traefik tells callers to send them. Every malformed form
//! is a [`BasicError`], which the middleware answers with 401 and
//! `WWW-Authenticate: Basic realm="ccgate"`.
//!
//! # Example
//!
//! ```
//! use ccgate::credentials::Credentials;
//! use secrecy::ExposeSecret;
//!
//! // base64("my-app:s3cr:et")
//! let credentials = Credentials::from_basic_authorization(b"Basic bXktYXBwOnMzY3I6ZXQ=")?;
//! assert_eq!(credentials.id(), "my-app");
//! assert_eq!(credentials.secret().expose_secret(), "s3cr:et");
//! assert!(!format!("{credentials:?}").contains("s3cr"));
//! # Ok::<(), ccgate::credentials::BasicError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::SecretString;

/// A client id and its secret.
///
/// `Debug` shows the id and hides the secret.
#[derive(Clone)]
pub struct Credentials {
    id: String,
    secret: SecretString,
}

impl Credentials {
    /// Credentials from an id and a secret.
    #[must_use]
    pub fn new(id: impl Into<String>, secret: SecretString) -> Self {
        Self {
            id: id.into(),
            secret,
        }
    }

    /// The client id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client secret.
    #[must_use]
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// Parses the value of an `Authorization` header holding Basic
    /// credentials (RFC 7617 §2).
    ///
    /// # Errors
    ///
    /// A [`BasicError`] when the scheme is not `Basic`, the base64 does not
    /// decode to UTF-8 text, the text has no `:`, or the id is empty.
    pub fn from_basic_authorization(value: &[u8]) -> Result<Self, BasicError> {
        let value = std::str::from_utf8(value).map_err(|_| BasicError::NotBasic)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(BasicError::NotBasic)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(BasicError::NotBasic);
        }
        let decoded = BASE64
            .decode(token.trim_start())
            .map_err(|_| BasicError::Undecodable)?;
        let text = String::from_utf8(decoded).map_err(|_| BasicError::Undecodable)?;
        let (id, secret) = text.split_once(':').ok_or(BasicError::NoColon)?;
        if id.is_empty() {
            return Err(BasicError::EmptyId);
        }
        Ok(Self::new(id, SecretString::from(secret)))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Standard base64; padding may be present or not, since clients differ.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an `Authorization` header holds no usable Basic credentials.
///
/// Every variant is the caller's fault and is answered with 401 and
/// `WWW-Authenticate: Basic realm="ccgate"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicError {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    Missing,
    /// A scheme other than `Basic`, or no credentials after it.
    #[error("the Authorization header does not use the Basic scheme")]
    NotBasic,
    /// The credentials are not base64 of UTF-8 text.
    #[error("the Basic credentials are not valid base64 of UTF-8 text")]
    Undecodable,
    /// The decoded text has no `:` between id and secret.
    #[error("the Basic credentials have no `:` between client id and secret")]
    NoColon,
    /// The client id is empty.
    #[error("the Basic credentials have an empty client id")]
    EmptyId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn basic(text: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
        .into_bytes()
    }

    fn parse(value: &[u8]) -> Result<(String, String), BasicError> {
        Credentials::from_basic_authorization(value)
            .map(|c| (c.id().to_owned(), c.secret().expose_secret().to_owned()))
    }

    #[test]
    fn splits_on_the_first_colon_and_keeps_the_rest_verbatim() {
        assert_eq!(
            parse(&basic("id:sec:ret")),
            Ok(("id".into(), "sec:ret".into()))
        );
        assert_eq!(parse(&basic("id:")), Ok(("id".into(), String::new())));
        let reserved = "s:e/c+r&e=t%?@x";
        assert_eq!(
            parse(&basic(&format!("app:{reserved}"))),
            Ok(("app".into(), reserved.into()))
        );
        assert_eq!(
            parse(&basic("ïd: späce ")),
            Ok(("ïd".into(), " späce ".into()))
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_padding_optional() {
        assert_eq!(
            parse(b"bAsIc aWQ6c2VjcmV0"),
            Ok(("id".into(), "secret".into()))
        );
        assert_eq!(
            parse(b"BASIC  aWQ6c2VjcmV0  "),
            Ok(("id".into(), "secret".into()))
        );
        assert_eq!(parse(b"Basic aWQ6cw"), Ok(("id".into(), "s".into())));
        assert_eq!(parse(b"Basic aWQ6cw=="), Ok(("id".into(), "s".into())));
    }

    #[test]
    fn every_malformed_form_is_an_error() {
        let cases: &[(&[u8], BasicError)] = &[
            (b"", BasicError::NotBasic),
            (b"Basic", BasicError::NotBasic),
            (b"Bearer aWQ6c2VjcmV0", BasicError::NotBasic),
            (b"Basicc aWQ6c2VjcmV0", BasicError::NotBasic),
            (b"aWQ6c2VjcmV0", BasicError::NotBasic),
            (b"Basic \xff\xfe", BasicError::NotBasic),
            (b"Basic !!!!", BasicError::Undecodable),
            (b"Basic aWQ6c2Vj cmV0", BasicError::Undecodable),
            (b"Basic ", BasicError::NotBasic),
            (&basic("no-colon"), BasicError::NoColon),
            (&basic(":secret"), BasicError::EmptyId),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse(value),
                Err(*expected),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        // base64 of bytes that are not UTF-8
        let not_utf8 = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x'])
        );
        assert_eq!(parse(not_utf8.as_bytes()), Err(BasicError::Undecodable));
    }

    #[test]
    fn debug_hides_the_secret() {
        let credentials = Credentials::new("app", SecretString::from("hunter2"));
        let debug = format!("{credentials:?}");
        assert!(
            debug.contains("app") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
