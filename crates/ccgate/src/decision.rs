//! What the middleware decides about a token: whether its claims allow the
//! request, which headers go upstream, and the access log's username.
//!
//! The decision depends only on the token and the middleware's options,
//! so it is computed once per token ([`Rules::decide`]) and kept with the
//! cached token; a cache hit evaluates no claims.
//!
//! The claims are the payload of a JWT access token (three base64url
//! segments, a JSON object in the middle). The signature is not checked:
//! the token came straight from the authorization server over the
//! configured TLS. A token that is not a JWT has no claims — a `claims`
//! rule then fails closed, and forwarded headers are empty — unless
//! `introspection` is set: then the introspection response is its claims
//! set ([`Rules::decide_claims`]).
//!
//! # Example
//!
//! ```
//! use ccgate::claims::{KeyPath, Rule};
//! use ccgate::decision::Rules;
//! use http::HeaderName;
//!
//! let rules = Rules::new(
//!     Some(Rule::parse("Equals(`grp`, `admin`)")?),
//!     vec![(HeaderName::from_static("x-group"), KeyPath::parse("grp").unwrap())],
//!     None,
//! );
//! // header.payload.signature, the payload being {"grp":"admin"}
//! let decision = rules.decide("e30.eyJncnAiOiJhZG1pbiJ9.c2ln");
//! assert!(decision.allowed);
//! assert_eq!(decision.headers[0].1, "admin");
//! assert!(!rules.decide("an-opaque-token").allowed, "claims fail closed");
//! # Ok::<(), ccgate::expr::ParseError>(())
//! ```

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::claims::{KeyPath, Rule, render_scalar};

/// The compiled `claims`, `forwardHeaders` and `usernameClaim` options.
#[derive(Debug, Default)]
pub struct Rules {
    claims: Option<Rule>,
    forward_headers: Vec<(HeaderName, KeyPath)>,
    username_claim: Option<KeyPath>,
}

/// The outcome for one token under one set of [`Rules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the claims allow the request (always true without `claims`).
    pub allowed: bool,
    /// Headers to set upstream, in `forwardHeaders` order; a name appears
    /// once per value (an array claim gives several).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The rendered `usernameClaim`, if set and present.
    pub username: Option<Arc<str>>,
}

impl Rules {
    /// Rules from compiled parts.
    #[must_use]
    pub fn new(
        claims: Option<Rule>,
        forward_headers: Vec<(HeaderName, KeyPath)>,
        username_claim: Option<KeyPath>,
    ) -> Self {
        Self {
            claims,
            forward_headers,
            username_claim,
        }
    }

    /// Decides for `access_token`, whose claims are its JWT payload.
    #[must_use]
    pub fn decide(&self, access_token: &str) -> Decision {
        self.decide_claims(jwt_payload(access_token).as_ref())
    }

    /// Decides for a token whose claims set is `claims` (a JWT payload,
    /// or the introspection response of an opaque token); `None`: a token
    /// without claims.
    #[must_use]
    pub fn decide_claims(&self, claims: Option<&Value>) -> Decision {
        let payload = claims.filter(|claims| claims.is_object());
        let allowed = match (&self.claims, payload) {
            (None, _) => true,
            (Some(rule), Some(claims)) => rule.eval(claims),
            (Some(_), None) => false,
        };
        let mut headers = Vec::with_capacity(self.forward_headers.len());
        for (name, path) in &self.forward_headers {
            let claim = payload.and_then(|claims| path.lookup(claims));
            push_values(&mut headers, name, claim);
        }
        let username = self
            .username_claim
            .as_ref()
            .and_then(|path| path.lookup(payload?))
            .and_then(render)
            .map(Arc::from);
        Decision {
            allowed,
            headers,
            username,
        }
    }
}

/// Appends the header values of `claim`: one per array element, an empty
/// value for a missing or null claim or one that cannot be a header value.
fn push_values(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    name: &HeaderName,
    claim: Option<&Value>,
) {
    match claim {
        Some(Value::Array(items)) if !items.is_empty() => {
            for item in items {
                headers.push((name.clone(), header_value(name, render(item))));
            }
        }
        Some(Value::Array(_)) | None => headers.push((name.clone(), HeaderValue::from_static(""))),
        Some(claim) => headers.push((name.clone(), header_value(name, render(claim)))),
    }
}

/// Scalars as [`render_scalar`] does, objects and arrays as compact JSON,
/// null as nothing.
fn render(claim: &Value) -> Option<String> {
    match claim {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(claim.to_string()),
        scalar => render_scalar(scalar).map(std::borrow::Cow::into_owned),
    }
}

/// The header value of `text`; empty (and logged, without the value) when
/// it holds CR, LF or another byte not allowed in a header.
fn header_value(name: &HeaderName, text: Option<String>) -> HeaderValue {
    let Some(text) = text else {
        return HeaderValue::from_static("");
    };
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| {
        tracing::warn!(header = %name, "claim value holds bytes not allowed in a header; forwarding an empty value");
        HeaderValue::from_static("")
    })
}

/// base64url, with or without padding (servers differ).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims of a JWT: its middle segment decoded, if it is a JSON object.
#[must_use]
pub fn jwt_payload(token: &str) -> Option<Value> {
    let mut segments = token.split('.');
    let (_header, payload, _signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let bytes = BASE64URL.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: &Value) -> String {
        let encode =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            encode(&json!({"alg": "ES256"})),
            encode(claims)
        )
    }

    fn rules(claims: Option<&str>, headers: &[(&str, &str)], username: Option<&str>) -> Rules {
        Rules::new(
            claims.map(|c| Rule::parse(c).unwrap()),
            headers
                .iter()
                .map(|(n, p)| {
                    (
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        KeyPath::parse(p).unwrap(),
                    )
                })
                .collect(),
            username.map(|p| KeyPath::parse(p).unwrap()),
        )
    }

    fn values(decision: &Decision) -> Vec<(String, String)> {
        decision
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn claims_decide_and_opaque_tokens_fail_closed() {
        let token = jwt(&json!({"grp": "admin"}));
        assert!(
            rules(Some("Equals(`grp`, `admin`)"), &[], None)
                .decide(&token)
                .allowed
        );
        assert!(
            !rules(Some("Equals(`grp`, `ops`)"), &[], None)
                .decide(&token)
                .allowed
        );
        assert!(
            !rules(Some("!Equals(`grp`, `ops`)"), &[], None)
                .decide("opaque-token")
                .allowed
        );
        assert!(
            rules(None, &[], None).decide("opaque-token").allowed,
            "no claims rule: allowed"
        );
    }

    #[test]
    fn headers_render_per_the_spec() {
        let token = jwt(&json!({
            "grp": "admin", "exp": 1_700_000_000, "ratio": 0.5, "ok": true,
            "areas": ["office", "home"], "obj": {"a": 1}, "nil": null, "empty": [],
            "bad": "a\r\nInjected: yes", "utf8": "Jöhn"
        }));
        let r = rules(
            None,
            &[
                ("Group", "grp"),
                ("Expires-At", "exp"),
                ("Ratio", "ratio"),
                ("Ok", "ok"),
                ("Areas", "areas"),
                ("Obj", "obj"),
                ("Nil", "nil"),
                ("Empty", "empty"),
                ("Missing", "nope"),
                ("Bad", "bad"),
                ("Utf8", "utf8"),
            ],
            None,
        );
        assert_eq!(
            values(&r.decide(&token)),
            [
                ("group", "admin"),
                ("expires-at", "1700000000"),
                ("ratio", "0.5"),
                ("ok", "true"),
                ("areas", "office"),
                ("areas", "home"),
                ("obj", "{\"a\":1}"),
                ("nil", ""),
                ("empty", ""),
                ("missing", ""),
                ("bad", ""),
                ("utf8", "Jöhn"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn opaque_tokens_forward_empty_headers() {
        let r = rules(None, &[("Group", "grp")], Some("sub"));
        let decision = r.decide("not-a-jwt");
        assert_eq!(values(&decision), [("group".to_owned(), String::new())]);
        assert_eq!(decision.username, None);
    }

    #[test]
    fn username_is_the_rendered_claim() {
        let token = jwt(&json!({"user": {"id": 42}, "name": "John Snow"}));
        assert_eq!(
            rules(None, &[], Some("user.id"))
                .decide(&token)
                .username
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            rules(None, &[], Some("name"))
                .decide(&token)
                .username
                .as_deref(),
            Some("John Snow")
        );
        assert_eq!(rules(None, &[], Some("none")).decide(&token).username, None);
    }

    #[test]
    fn only_three_segment_tokens_with_object_payloads_are_jwts() {
        let claims = json!({"a": 1});
        assert_eq!(jwt_payload(&jwt(&claims)), Some(claims.clone()));
        let padded = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(claims.to_string())
        );
        assert_eq!(jwt_payload(&padded), Some(claims));
        for not_jwt in [
            "",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            "a.WzFd.c", /* [1] */
            "a.bm90IGpzb24.c",
        ] {
            assert_eq!(jwt_payload(not_jwt), None, "{not_jwt}");
        }
    }
}
