//! The successful answer of a token endpoint (RFC 6749 §5.1) and its
//! validation.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

/// Longest `expires_in` taken as given: ten years. A larger value is
/// treated as absent (the cache then uses the JWT `exp`, else its default).
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// An access token from the token endpoint.
///
/// `Debug` hides the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token: non-empty, visible ASCII only (so it always fits
    /// in `Authorization: Bearer …`).
    pub access_token: SecretString,
    /// The lifetime the server announced in `expires_in`, if any.
    pub expires_in: Option<Duration>,
    /// The granted scope, when the server named it (RFC 6749 §3.3).
    pub scope: Option<String>,
}

impl TokenResponse {
    /// A token response, e.g. for tests of code that consumes tokens.
    #[must_use]
    pub fn new(access_token: SecretString, expires_in: Option<Duration>) -> Self {
        Self {
            access_token,
            expires_in,
            scope: None,
        }
    }

    /// Validates the body of a 2xx answer (SPEC §2.2).
    ///
    /// Accepted: a JSON object with a non-empty string `access_token` of
    /// visible ASCII characters; `token_type`, when present and not null,
    /// a string equal to `Bearer` in any case; `expires_in`, when present
    /// and not null, a positive number of seconds or a string holding one
    /// (some servers send `"3600"`). A zero or negative `expires_in` says
    /// the token is already expired and is refused; one above
    /// [`MAX_EXPIRES_IN`] is treated as absent. `scope` is kept when it is
    /// a string and ignored otherwise.
    ///
    /// The error is a fixed text that never quotes the body.
    pub(super) fn from_json(body: &[u8]) -> Result<Self, &'static str> {
        let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
        let object = value.as_object().ok_or("the body is not a JSON object")?;
        let access_token = match object.get("access_token") {
            None | Some(Value::Null) => return Err("access_token is missing"),
            Some(Value::String(token)) => token,
            Some(_) => return Err("access_token is not a string"),
        };
        if access_token.is_empty() {
            return Err("access_token is empty");
        }
        if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("access_token holds characters not allowed in an HTTP header");
        }
        match object.get("token_type") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
            Some(_) => return Err("token_type is not Bearer"),
        }
        let expires_in = match object.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(value) => expires_in(value)?,
        };
        let scope = object
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Self {
            access_token: SecretString::from(access_token.as_str()),
            expires_in,
            scope,
        })
    }
}

fn expires_in(value: &Value) -> Result<Option<Duration>, &'static str> {
    let seconds = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|seconds| seconds.is_finite())
    .ok_or("expires_in is not a number")?;
    if seconds <= 0.0 {
        return Err("expires_in is not positive: the token is already expired");
    }
    if seconds > MAX_EXPIRES_IN.as_secs_f64() {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(seconds)))
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(body: &str) -> Result<TokenResponse, &'static str> {
        TokenResponse::from_json(body.as_bytes())
    }

    #[test]
    fn accepts_a_standard_answer() {
        let token = parse(
            r#"{"access_token":"eyJ.a.b","expires_in":300,"scope":"read write","token_type":"Bearer"}"#,
        )
        .expect("valid");
        assert_eq!(token.access_token.expose_secret(), "eyJ.a.b");
        assert_eq!(token.expires_in, Some(Duration::from_secs(300)));
        assert_eq!(token.scope.as_deref(), Some("read write"));
    }

    #[test]
    fn token_type_is_optional_and_case_insensitive() {
        for body in [
            r#"{"access_token":"t"}"#,
            r#"{"access_token":"t","token_type":null}"#,
            r#"{"access_token":"t","token_type":"bearer"}"#,
            r#"{"access_token":"t","token_type":"BEARER"}"#,
        ] {
            assert!(parse(body).is_ok(), "{body}");
        }
        for body in [
            r#"{"access_token":"t","token_type":"mac"}"#,
            r#"{"access_token":"t","token_type":"Bearer "}"#,
            r#"{"access_token":"t","token_type":1}"#,
        ] {
            assert_eq!(
                parse(body).err(),
                Some("token_type is not Bearer"),
                "{body}"
            );
        }
    }

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        let lifetime = |value: &str| {
            parse(&format!(r#"{{"access_token":"t","expires_in":{value}}}"#))
                .map(|token| token.expires_in)
        };
        assert_eq!(lifetime("3600"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(lifetime(r#""3600""#), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(lifetime(r#"" 60 ""#), Ok(Some(Duration::from_secs(60))));
        assert_eq!(lifetime("1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(lifetime("null"), Ok(None));
        assert_eq!(lifetime("1e300"), Ok(None));
        assert_eq!(lifetime("315360001"), Ok(None));
        assert_eq!(lifetime("18446744073709551615"), Ok(None));
        for expired in ["0", "-5", r#""-1""#, "0.0"] {
            assert_eq!(
                lifetime(expired),
                Err("expires_in is not positive: the token is already expired"),
                "{expired}"
            );
        }
        for bad in [
            r#""soon""#,
            "true",
            "[]",
            "{}",
            r#""NaN""#,
            r#""inf""#,
            r#""""#,
        ] {
            assert_eq!(lifetime(bad), Err("expires_in is not a number"), "{bad}");
        }
    }

    #[test]
    fn access_token_must_be_a_usable_string() {
        let cases = [
            ("", "the body is not JSON"),
            ("<html>", "the body is not JSON"),
            (r#"["access_token"]"#, "the body is not a JSON object"),
            ("{}", "access_token is missing"),
            (r#"{"access_token":null}"#, "access_token is missing"),
            (r#"{"access_token":42}"#, "access_token is not a string"),
            (r#"{"access_token":""}"#, "access_token is empty"),
            (
                r#"{"access_token":"a b"}"#,
                "access_token holds characters not allowed in an HTTP header",
            ),
            (
                r#"{"access_token":"a\r\nX-Injected: 1"}"#,
                "access_token holds characters not allowed in an HTTP header",
            ),
            (
                r#"{"access_token":"tökén"}"#,
                "access_token holds characters not allowed in an HTTP header",
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(parse(body).err(), Some(reason), "{body}");
        }
    }

    #[test]
    fn errors_never_quote_the_body() {
        let body = r#"{"access_token":"the-secret-token","token_type":"the-secret-type"}"#;
        let reason = parse(body).expect_err("bad token_type");
        assert!(!reason.contains("secret"), "{reason}");
    }

    #[test]
    fn debug_hides_the_token() {
        let token =
            parse(r#"{"access_token":"eyJhbGciOi.secret.sig","expires_in":60}"#).expect("valid");
        let debug = format!("{token:?}");
        assert!(!debug.contains("eyJhbGciOi"), "{debug}");
        assert!(
            debug.contains("REDACTED") && debug.contains("60s"),
            "{debug}"
        );
    }
}
