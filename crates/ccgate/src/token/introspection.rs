//! The answer of an introspection endpoint (RFC 7662 §2.2) and its
//! validation.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// What the authorization server says an access token stands for.
///
/// `Debug` shows whether it is active, never the claims (they may name
/// users).
#[derive(Clone)]
pub(crate) struct Introspection {
    /// `active`: the token is valid now.
    pub(crate) active: bool,
    /// The whole response object: the claims set of the token.
    pub(crate) claims: Arc<Value>,
}

impl Introspection {
    /// Validates the body of a 2xx answer: a JSON object whose `active` is
    /// a boolean (RFC 7662 §2.2 makes it required); an `exp`, when
    /// present, is a number. Anything else is refused with a fixed text
    /// that never quotes the body.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, &'static str> {
        let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
        let object = value.as_object().ok_or("the body is not a JSON object")?;
        let active = match object.get("active") {
            Some(Value::Bool(active)) => *active,
            None => return Err("active is missing from the introspection response"),
            Some(_) => return Err("active is not a boolean"),
        };
        match object.get("exp") {
            None | Some(Value::Null | Value::Number(_)) => {}
            Some(_) => return Err("exp of the introspection response is not a number"),
        }
        Ok(Self {
            active,
            claims: Arc::new(value),
        })
    }

    /// How long the token has left by its `exp`: `None` without one,
    /// zero when it has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let exp = self.claims.get("exp")?.as_f64()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Some(Duration::from_secs_f64((exp - now).clamp(0.0, 1e9)))
    }
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_is_required_and_a_boolean() {
        let active = Introspection::from_json(br#"{"active":true,"grp":"a","exp":1}"#).unwrap();
        assert!(active.active);
        assert_eq!(active.claims["grp"], "a");
        assert_eq!(active.remaining(), Some(Duration::ZERO), "exp passed");
        assert!(
            !Introspection::from_json(br#"{"active":false}"#)
                .unwrap()
                .active
        );
        for bad in [
            &br#"{"grp":"a"}"#[..],
            br#"{"active":"true"}"#,
            br#"{"active":1}"#,
            br#"{"active":true,"exp":"soon"}"#,
            br#"[true]"#,
            b"not json",
        ] {
            assert!(Introspection::from_json(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remaining_follows_exp() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body = format!(r#"{{"active":true,"exp":{}}}"#, now + 100);
        let left = Introspection::from_json(body.as_bytes())
            .unwrap()
            .remaining()
            .unwrap();
        assert!((98..=100).contains(&left.as_secs()), "{left:?}");
        let none = Introspection::from_json(br#"{"active":true}"#).unwrap();
        assert_eq!(none.remaining(), None);
        assert!(!format!("{none:?}").contains("claims"));
    }
}
