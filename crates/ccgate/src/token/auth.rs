//! Client authentication at the token endpoint (RFC 6749 §2.3.1): the
//! `authMethod` option, the encodings of both methods, and what `auto`
//! remembers.

use std::collections::HashSet;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;

use crate::credentials::Credentials;

/// How the client authenticates to the token endpoint: the ccgate
/// extension option `authMethod`.
///
/// Serialized as `auto` or one of the names of RFC 7591 §2
/// `token_endpoint_auth_method`: `client_secret_basic`,
/// `client_secret_post`, `client_secret_jwt`, `private_key_jwt`,
/// `tls_client_auth` (RFC 8705 §2.1.1).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic first; on 400 or 401, once more with the credentials in
    /// the body. The method that worked is remembered per client id (see
    /// [`Endpoint`](super::Endpoint)).
    #[default]
    Auto,
    /// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with HS256 keyed by the client secret
    /// (RFC 7523 §2.2), with `client_id`, in the form body.
    ClientSecretJwt,
    /// A JWT assertion signed with the `privateKey` (RS256, ES256 or EdDSA;
    /// RFC 7523 §2.2), with `client_id`, in the form body.
    PrivateKeyJwt,
    /// The client certificate of `clientConfig.tls` authenticates (RFC 8705
    /// §2); `client_id` is in the form body.
    TlsClientAuth,
}

impl AuthMethod {
    /// The option's value as written in the configuration.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
        }
    }

    /// Whether the method signs with, or sends, a client secret.
    #[must_use]
    pub fn uses_secret(self) -> bool {
        !matches!(self, Self::PrivateKeyJwt | Self::TlsClientAuth)
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one request carries the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// In an `Authorization: Basic` header.
    Header,
    /// As `client_id` and `client_secret` form fields.
    Body,
    /// As a JWT assertion (with `client_id`) in the body, HS256 signed
    /// with the secret.
    SecretJwt,
    /// As a JWT assertion (with `client_id`) in the body, signed with the
    /// private key.
    KeyJwt,
    /// Only `client_id` in the body: the TLS client certificate
    /// authenticates.
    TlsClient,
}

impl Placement {
    /// The other placement of `auto`: Basic ↔ body.
    pub(super) fn other(self) -> Self {
        match self {
            Self::Header => Self::Body,
            Self::Body => Self::Header,
            other => other,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Header => "client_secret_basic",
            Self::Body => "client_secret_post",
            Self::SecretJwt => "client_secret_jwt",
            Self::KeyJwt => "private_key_jwt",
            Self::TlsClient => "tls_client_auth",
        }
    }
}

/// The `Authorization` header value of `client_secret_basic`: id and secret
/// are each `application/x-www-form-urlencoded` before they are joined with
/// `:` and base64-encoded (RFC 6749 §2.3.1). Marked sensitive, so HTTP
/// libraries keep it out of their logs.
pub(super) fn basic_authorization(credentials: &Credentials) -> HeaderValue {
    let mut pair = form_urlencode(credentials.id());
    pair.push(':');
    pair.push_str(&form_urlencode(credentials.secret().expose_secret()));
    let mut value = String::from("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut value);
    let mut value = HeaderValue::try_from(value)
        .expect("`Basic ` and base64 output are valid header characters");
    value.set_sensitive(true);
    value
}

/// The form fields of `client_secret_post`, starting with `&`.
pub(super) fn body_credentials(credentials: &Credentials) -> String {
    format!(
        "&client_id={}&client_secret={}",
        form_urlencode(credentials.id()),
        form_urlencode(credentials.secret().expose_secret())
    )
}

/// `application/x-www-form-urlencoded` serialization of one name or value
/// (WHATWG URL §5.2; RFC 6749 Appendix B): ASCII letters, digits and
/// `*-._` stay, a space becomes `+`, every other byte of the UTF-8
/// encoding becomes `%XX`.
pub(super) fn form_urlencode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
    out
}

/// Most client ids for which an [`Endpoint`](super::Endpoint) remembers
/// that `auto` needs body credentials; when full, an arbitrary one is
/// forgotten.
pub const MAX_REMEMBERED_CLIENTS: usize = 10_000;

/// What `auto` learned: the client ids of one endpoint that need their
/// credentials in the body.
///
/// Only a success teaches it something, so callers with wrong credentials
/// cannot fill it. It holds at most [`MAX_REMEMBERED_CLIENTS`] ids; when
/// full, an arbitrary id is forgotten to make room, which costs that client
/// one extra request (Basic, then body) on its next token request. A client
/// for which Basic works is never stored, since Basic is tried first anyway.
#[derive(Default)]
pub(super) struct Memory {
    body_clients: RwLock<HashSet<Box<str>>>,
}

impl Memory {
    /// Where to put the credentials of `client_id` first.
    pub(super) fn first_placement(&self, client_id: &str) -> Placement {
        let body_clients = self
            .body_clients
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if body_clients.contains(client_id) {
            Placement::Body
        } else {
            Placement::Header
        }
    }

    /// Records that `placement` worked for `client_id`.
    pub(super) fn learned(&self, client_id: &str, placement: Placement) {
        if self.first_placement(client_id) == placement {
            return;
        }
        let mut body_clients = self
            .body_clients
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match placement {
            Placement::Header => {
                body_clients.remove(client_id);
            }
            Placement::Body => {
                if body_clients.len() >= MAX_REMEMBERED_CLIENTS
                    && let Some(evicted) = body_clients.iter().next().cloned()
                {
                    body_clients.remove(&evicted);
                }
                body_clients.insert(client_id.into());
            }
            // Only `auto` learns, and it uses Basic or the body.
            Placement::SecretJwt | Placement::KeyJwt | Placement::TlsClient => {}
        }
    }

    fn len(&self) -> usize {
        self.body_clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memory")
            .field("body_clients", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn credentials(id: &str, secret: &str) -> Credentials {
        Credentials::new(id, SecretString::from(secret))
    }

    fn decoded_basic(value: &HeaderValue) -> String {
        let text = value.to_str().expect("ascii");
        let token = text.strip_prefix("Basic ").expect("Basic scheme");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn form_urlencoding_matches_rfc_6749_appendix_b() {
        assert_eq!(form_urlencode("basic-client"), "basic-client");
        assert_eq!(
            form_urlencode("s:e/c+r&e=t%?@x"),
            "s%3Ae%2Fc%2Br%26e%3Dt%25%3F%40x"
        );
        assert_eq!(form_urlencode("a b*~"), "a+b*%7E");
        assert_eq!(form_urlencode("ü"), "%C3%BC");
        assert_eq!(form_urlencode(""), "");
    }

    #[test]
    fn basic_header_urlencodes_id_and_secret() {
        let value = basic_authorization(&credentials("reserved-client", "s:e/c+r&e=t%?@x"));
        assert!(value.is_sensitive());
        assert_eq!(
            decoded_basic(&value),
            "reserved-client:s%3Ae%2Fc%2Br%26e%3Dt%25%3F%40x"
        );
        let value = basic_authorization(&credentials("my app", "pa:ss"));
        assert_eq!(decoded_basic(&value), "my+app:pa%3Ass");
    }

    #[test]
    fn body_credentials_are_form_fields() {
        assert_eq!(
            body_credentials(&credentials("post-client", "a&b=c")),
            "&client_id=post-client&client_secret=a%26b%3Dc"
        );
    }

    #[test]
    fn auth_method_names_round_trip_through_serde() {
        for (method, name) in [
            (AuthMethod::Auto, "auto"),
            (AuthMethod::ClientSecretBasic, "client_secret_basic"),
            (AuthMethod::ClientSecretPost, "client_secret_post"),
            (AuthMethod::ClientSecretJwt, "client_secret_jwt"),
            (AuthMethod::PrivateKeyJwt, "private_key_jwt"),
            (AuthMethod::TlsClientAuth, "tls_client_auth"),
        ] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&method).expect("serialize"), json);
            let parsed: AuthMethod = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(parsed, method);
            assert_eq!(method.to_string(), name);
        }
        assert!(serde_json::from_str::<AuthMethod>("\"basic\"").is_err());
        assert_eq!(AuthMethod::default(), AuthMethod::Auto);
    }

    #[test]
    fn memory_learns_and_unlearns_body_clients() {
        let memory = Memory::default();
        assert_eq!(memory.first_placement("a"), Placement::Header);
        memory.learned("a", Placement::Header);
        assert_eq!(memory.len(), 0, "Basic is the default and never stored");
        memory.learned("a", Placement::Body);
        assert_eq!(memory.first_placement("a"), Placement::Body);
        assert_eq!(memory.first_placement("b"), Placement::Header);
        memory.learned("a", Placement::Header);
        assert_eq!(memory.first_placement("a"), Placement::Header);
        assert_eq!(format!("{memory:?}"), "Memory { body_clients: 0 }");
    }

    #[test]
    fn memory_is_bounded() {
        let memory = Memory::default();
        for i in 0..MAX_REMEMBERED_CLIENTS + 10 {
            memory.learned(&format!("client-{i}"), Placement::Body);
        }
        assert_eq!(memory.len(), MAX_REMEMBERED_CLIENTS);
        let last = format!("client-{}", MAX_REMEMBERED_CLIENTS + 9);
        assert_eq!(memory.first_placement(&last), Placement::Body);
    }
}
