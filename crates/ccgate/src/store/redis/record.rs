//! The value stored under an entry's key: the token and its wall-clock
//! times, as a versioned JSON record, sealed with `store.secret` when one
//! is set.
//!
//! Plaintext (no `store.secret`):
//!
//! ```json
//! {"v":1,"token":"eyJhbGciOi…","expires_at_ms":1767225600000,"refresh_at_ms":1767225300000}
//! ```
//!
//! With `introspection`, the record also holds the introspection
//! response of an opaque token (`"introspection":{"active":true,…}`), so
//! a replica that reads it does not introspect again. A replica of an
//! older version ignores the member and decides on no claims (a `claims`
//! rule then fails closed).
//!
//! Sealed: that same JSON sealed by [`Sealer`] with the store key as
//! associated data — `0x01 ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16
//! bytes)`, binary. A sealed value copied under another key, sealed with
//! another secret, altered, or of another version does not open and is a
//! miss, as is a plaintext record of an unknown version or shape.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::entry::WallTimes;
use crate::store::seal::Sealer;

/// The record's format version.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Record<'a> {
    v: u8,
    #[serde(borrow)]
    token: Cow<'a, str>,
    expires_at_ms: u64,
    refresh_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    introspection: Option<Cow<'a, Value>>,
}

/// What a stored value holds.
#[derive(Debug, PartialEq)]
pub(super) struct Stored {
    pub(super) token: String,
    pub(super) times: WallTimes,
    pub(super) introspection: Option<Value>,
}

/// The stored value for `token` with `times` under `store_key`.
pub(super) fn encode(
    sealer: Option<&Sealer>,
    store_key: &str,
    token: &str,
    times: WallTimes,
    introspection: Option<&Value>,
) -> Vec<u8> {
    let record = Record {
        v: VERSION,
        token: Cow::Borrowed(token),
        expires_at_ms: times.expires_at_ms,
        refresh_at_ms: times.refresh_at_ms,
        introspection: introspection.map(Cow::Borrowed),
    };
    let json = serde_json::to_vec(&record).expect("a record serialises");
    match sealer {
        Some(sealer) => sealer.seal(store_key.as_bytes(), &json),
        None => json,
    }
}

/// The token and times of a stored value, or `None` if it is not a
/// record this store wrote under `store_key` (see the module docs).
pub(super) fn decode(sealer: Option<&Sealer>, store_key: &str, value: &[u8]) -> Option<Stored> {
    let opened;
    let json = match sealer {
        Some(sealer) => {
            opened = sealer.open(store_key.as_bytes(), value)?;
            &opened[..]
        }
        None => value,
    };
    let record: Record<'_> = serde_json::from_slice(json).ok()?;
    if record.v != VERSION || record.token.is_empty() {
        return None;
    }
    if record
        .introspection
        .as_deref()
        .is_some_and(|claims| !claims.is_object())
    {
        return None;
    }
    Some(Stored {
        token: record.token.into_owned(),
        times: WallTimes {
            expires_at_ms: record.expires_at_ms,
            refresh_at_ms: record.refresh_at_ms,
        },
        introspection: record.introspection.map(Cow::into_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: WallTimes = WallTimes {
        expires_at_ms: 1_767_225_600_000,
        refresh_at_ms: 1_767_225_300_000,
    };

    fn stored(token: &str, introspection: Option<Value>) -> Stored {
        Stored {
            token: token.to_owned(),
            times: TIMES,
            introspection,
        }
    }

    #[test]
    fn plaintext_is_the_documented_json() {
        let value = encode(None, "p:k", "tok", TIMES, None);
        assert_eq!(
            std::str::from_utf8(&value).unwrap(),
            r#"{"v":1,"token":"tok","expires_at_ms":1767225600000,"refresh_at_ms":1767225300000}"#
        );
        assert_eq!(decode(None, "p:k", &value), Some(stored("tok", None)));
    }

    #[test]
    fn sealed_values_hide_the_token_and_are_bound_to_their_key() {
        let sealer = Sealer::new(b"0123456789abcdef").unwrap();
        let claims = serde_json::json!({"active": true, "grp": "introspected-group"});
        let value = encode(Some(&sealer), "p:alice", "the-token", TIMES, Some(&claims));
        assert!(!value.windows(9).any(|w| w == b"the-token"));
        assert!(!value.windows(18).any(|w| w == b"introspected-group"));
        assert_eq!(
            decode(Some(&sealer), "p:alice", &value),
            Some(stored("the-token", Some(claims)))
        );
        assert_eq!(decode(Some(&sealer), "p:mallory", &value), None);
        let plain = encode(None, "p:alice", "the-token", TIMES, None);
        assert_eq!(
            decode(Some(&sealer), "p:alice", &plain),
            None,
            "a sealing store ignores plaintext"
        );
        assert_eq!(decode(None, "p:alice", &value), None);
    }

    #[test]
    fn other_versions_and_shapes_are_misses() {
        for value in [
            &br#"{"v":2,"token":"t","expires_at_ms":1,"refresh_at_ms":1}"#[..],
            br#"{"v":1,"token":"","expires_at_ms":1,"refresh_at_ms":1}"#,
            br#"{"v":1,"token":"t"}"#,
            br#"{"v":1,"token":"t","expires_at_ms":1,"refresh_at_ms":1,"introspection":[1]}"#,
            b"plain token",
            b"",
        ] {
            assert_eq!(decode(None, "k", value), None);
        }
    }
}
