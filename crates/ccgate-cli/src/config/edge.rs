//! An entry point's edge options (SPEC §10), Traefik's names:
//! `http.encodedCharacters.allowEncoded*`, `http.sanitizePath` and
//! `forwardedHeaders.{trustedIPs, insecure}`.

use serde::Deserialize;

use super::error::{ConfigError, Origin};
use crate::edge::forwarded::Network;
use crate::edge::path::EncodedCharacters;
use crate::edge::{EdgeRules, PathRules, Trust};

/// `entryPoints.NAME.http`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawHttp {
    encoded_characters: RawEncodedCharacters,
    sanitize_path: Option<bool>,
}

/// `entryPoints.NAME.http.encodedCharacters`: every one refused unless
/// allowed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[allow(clippy::struct_excessive_bools)] // Traefik's seven switches
struct RawEncodedCharacters {
    allow_encoded_slash: bool,
    allow_encoded_back_slash: bool,
    allow_encoded_null_character: bool,
    allow_encoded_semicolon: bool,
    allow_encoded_percent: bool,
    allow_encoded_question_mark: bool,
    allow_encoded_hash: bool,
}

/// `entryPoints.NAME.forwardedHeaders`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawForwardedHeaders {
    #[serde(rename = "trustedIPs")]
    trusted_ips: Vec<String>,
    insecure: bool,
}

/// The edge rules of the entry point at `path` (e.g. `entryPoints.web`).
///
/// # Errors
///
/// A `trustedIPs` entry that is neither an IP address nor a CIDR block,
/// named by its index.
pub(super) fn rules(
    http: RawHttp,
    forwarded: RawForwardedHeaders,
    origin: &Origin,
    path: &str,
) -> Result<EdgeRules, ConfigError> {
    let encoded = http.encoded_characters;
    let networks = forwarded
        .trusted_ips
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            Network::parse(&text).map_err(|reason| {
                origin.error(&format!("{path}.forwardedHeaders.trustedIPs[{i}]"), reason)
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(EdgeRules {
        path: PathRules {
            allow: EncodedCharacters {
                slash: encoded.allow_encoded_slash,
                back_slash: encoded.allow_encoded_back_slash,
                null_character: encoded.allow_encoded_null_character,
                semicolon: encoded.allow_encoded_semicolon,
                percent: encoded.allow_encoded_percent,
                question_mark: encoded.allow_encoded_question_mark,
                hash: encoded.allow_encoded_hash,
            },
            sanitize: http.sanitize_path.unwrap_or(true),
        },
        trust: Trust {
            insecure: forwarded.insecure,
            networks,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ccgate::options::fields;
    use serde_json::json;

    use super::*;

    fn read(http: serde_json::Value, forwarded: serde_json::Value) -> Result<EdgeRules, String> {
        let origin = Origin::file(Path::new("c.yaml"));
        let http: RawHttp = fields::from_value(http).map_err(|e| e.to_string())?;
        let forwarded: RawForwardedHeaders =
            fields::from_value(forwarded).map_err(|e| e.to_string())?;
        rules(http, forwarded, &origin, "entryPoints.web").map_err(|e| e.to_string())
    }

    #[test]
    fn each_allowance_names_its_own_character() {
        let names = [
            ("allowEncodedSlash", "%2F"),
            ("allowEncodedBackSlash", "%5C"),
            ("allowEncodedNullCharacter", "%00"),
            ("allowEncodedSemicolon", "%3B"),
            ("allowEncodedPercent", "%25"),
            ("allowEncodedQuestionMark", "%3F"),
            ("allowEncodedHash", "%23"),
        ];
        for (field, escape) in names {
            let rules = read(json!({"encodedCharacters": {field: true}}), json!({})).unwrap();
            assert_eq!(rules.path.allow.names(), [escape], "{field}");
            assert!(rules.path.sanitize);
        }
        let defaults = read(json!({}), json!({})).unwrap();
        assert_eq!(defaults, EdgeRules::default());
        let unsanitised = read(json!({"sanitizePath": false}), json!({})).unwrap();
        assert!(!unsanitised.path.sanitize);
    }

    #[test]
    fn forwarded_headers_trust_networks_or_everyone() {
        let rules = read(
            json!({}),
            json!({"trustedIPs": ["10.0.0.0/8", "::1"], "insecure": false}),
        )
        .unwrap();
        assert!(rules.trust.trusts("10.1.2.3".parse().unwrap()));
        assert!(!rules.trust.trusts("192.0.2.1".parse().unwrap()));
        let insecure = read(json!({}), json!({"insecure": true})).unwrap();
        assert!(insecure.trust.trusts("192.0.2.1".parse().unwrap()));
        assert_eq!(
            read(json!({}), json!({"trustedIPs": ["10.0.0.0/8", "nope"]})).unwrap_err(),
            "c.yaml: entryPoints.web.forwardedHeaders.trustedIPs[1]: \"nope\" is not an IP address or CIDR block"
        );
        let misspelt = read(
            json!({"encodedCharacters": {"allowEncodedSlashes": true}}),
            json!({}),
        );
        assert!(misspelt.unwrap_err().contains("unknown field"));
    }
}
