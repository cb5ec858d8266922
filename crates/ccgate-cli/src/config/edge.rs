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
