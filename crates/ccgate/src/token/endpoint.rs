//! The token endpoint client: one [`Endpoint`] per configured `url` and
//! TLS settings, holding one HTTP client.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Response, StatusCode, Url};

use super::assertion::{self, PrivateKey, Signing};
use super::auth::{self, AuthMethod, Memory, Placement};
use super::error::oauth_error_code;
use super::introspection::Introspection;
use super::settings::{EndpointSettings, is_loopback};
use super::tls;
use super::{BuildError, FetchError, Outcome, TokenResponse, retry};
use crate::credentials::Credentials;

/// Largest success body read; a larger one is [`FetchError::Malformed`].
const MAX_TOKEN_BODY: usize = 256 * 1024;

/// Largest introspection response read (RFC 7662 §2.2); a larger one is
/// [`FetchError::Malformed`].
pub const MAX_INTROSPECTION_BODY: usize = 64 * 1024;

/// Largest error body read for its OAuth `error` code.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Most token requests (HTTP attempts) one [`Endpoint`] — one middleware —
/// has in flight at once (SPEC §2.8). Further attempts wait for a free
/// slot, and the wait counts against the attempt's timeout
/// (`clientConfig.timeoutSeconds`): an attempt that gets no slot in time
/// ends as [`FetchError::Timeout`] without reaching the server.
pub const MAX_IN_FLIGHT: usize = 64;

/// A client of one token endpoint (RFC 6749 §4.4). Cheap to clone: clones
/// share the HTTP client, its connection pool and what `auto` learned.
///
/// Each [`fetch`](Endpoint::fetch) sends
/// `POST url` with `Content-Type: application/x-www-form-urlencoded`,
/// `Accept: application/json` and the body
/// `grant_type=client_credentials[&audience=…][&scope=…][&resource=…]…`
/// followed by the extra `parameters`, authenticated per [`AuthMethod`].
/// With `client_secret_jwt` and `private_key_jwt` a new client assertion
/// (RFC 7523 §2.2, see [`ASSERTION_LIFETIME`](super::ASSERTION_LIFETIME))
/// is signed for every attempt, retries included. Redirects are not followed. Proxies from the
/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment are used, except for
/// a loopback `url` (`localhost`, `127.0.0.0/8`, `::1`), which is always
/// reached directly.
///
/// # Retries
///
/// An attempt that fails to connect, is cut short, times out, or gets 429
/// or a 5xx is retried up to `max_retries` times, after a pause of full
/// jitter between zero and `min(2 s, 100 ms × 2^n)` for the n-th retry
/// ([`BACKOFF_BASE`](super::BACKOFF_BASE), [`BACKOFF_CAP`](super::BACKOFF_CAP));
/// a `Retry-After` in seconds replaces it, capped at 2 s. Other
/// 4xx answers, 3xx answers and bad success bodies are final. The worst
/// case of one fetch is therefore about `(max_retries + 1) × timeout` plus
/// the pauses, twice that with the `auto` fallback.
///
/// # `auto`
///
/// The first request of a client id uses HTTP Basic. If it is answered
/// 400 or 401, the credentials are sent once more in the body (with its own
/// retries). When the body works, the client id is remembered (bounded,
/// see [`MAX_REMEMBERED_CLIENTS`](super::MAX_REMEMBERED_CLIENTS)) and its
/// later fetches start with the body, falling back to Basic the same way if
/// that is refused. When both are refused, the error is the rejection of
/// the body attempt (Basic is the usual "wrong method" answer); when the
/// fallback fails otherwise (timeout, 5xx, …), that failure is returned.
///
/// # Concurrency
///
/// `fetch` takes `&self` and may run from many tasks at once; each call is
/// independent (coalescing concurrent requests for one key is the cache's
/// job). Racing fallbacks for one client id all learn the same method.
/// At most [`MAX_IN_FLIGHT`] attempts of one endpoint (and its clones) are
/// in flight at once; the others wait in FIFO order (a tokio
/// `Semaphore`), and each attempt's timeout covers its wait for a slot
/// and its exchange, so N callers racing past the bound wait at most
/// `timeout` per attempt, then get [`FetchError::Timeout`] (and the
/// retries that follow it).
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: Url,
    audience: String,
    scopes: Vec<String>,
    auth_method: AuthMethod,
    /// The key of `private_key_jwt`.
    private_key: Option<PrivateKey>,
    /// The `kid` of `private_key_jwt` assertions.
    private_key_id: Option<String>,
    timeout: Duration,
    max_retries: u32,
    /// `grant_type=…[&audience=…][&scope=…][&resource=…]…[&name=value]…`,
    /// encoded once.
    form: String,
    memory: Memory,
    /// [`MAX_IN_FLIGHT`] slots, one per attempt in flight.
    slots: tokio::sync::Semaphore,
}

impl Endpoint {
    /// Validates `settings` and builds the HTTP client.
    ///
    /// For an `https` URL this reads the system trust store (blocking file
    /// I/O, once), unless `insecure_skip_verify` is set, which logs a
    /// warning instead.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the option: `url` not an absolute `http` or
    /// `https` URL, or holding credentials or a fragment; an empty
    /// `audience` without `resource` or `scopes`; a scope that is empty or
    /// has characters outside RFC 6749 §3.3; a `resource` that is not an
    /// absolute URI or has a fragment; a reserved name in `parameters`;
    /// `private_key_jwt` without a usable `privateKey` (RSA ≥ 2048 bits,
    /// P-256 or Ed25519); `tls_client_auth` without
    /// `clientConfig.tls.cert` and `.key`; a zero `clientConfig.timeoutSeconds`; PEM text in
    /// `clientConfig.tls.ca`, `.cert` or `.key` that does not parse; a
    /// certificate without key or the reverse; a key that does not belong
    /// to the certificate. The error never holds key material.
    pub fn new(settings: EndpointSettings) -> Result<Self, BuildError> {
        let url = settings.validate()?;
        let client = http_client(&settings.tls, &url, settings.timeout)?;
        let private_key = match (settings.auth_method, &settings.private_key) {
            (AuthMethod::PrivateKeyJwt, Some(pem)) => Some(PrivateKey::from_pem(pem)?),
            _ => None,
        };
        let mut form = String::from("grant_type=client_credentials");
        let mut push = |name: &str, value: &str| {
            form.push('&');
            form.push_str(&auth::form_urlencode(name));
            form.push('=');
            form.push_str(&auth::form_urlencode(value));
        };
        if !settings.audience.is_empty() {
            push("audience", &settings.audience);
        }
        if !settings.scopes.is_empty() {
            push("scope", &settings.scopes.join(" "));
        }
        for resource in &settings.resource {
            push("resource", resource);
        }
        for (name, value) in &settings.parameters {
            push(name, value);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                url,
                audience: settings.audience,
                scopes: settings.scopes,
                auth_method: settings.auth_method,
                private_key,
                private_key_id: settings.private_key_id,
                timeout: settings.timeout,
                max_retries: settings.max_retries,
                form,
                memory: Memory::default(),
                slots: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            }),
        })
    }

    /// The token endpoint URL, normalized.
    #[must_use]
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// The `audience` sent (empty: none is sent).
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The scopes sent.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The configured client authentication method.
    #[must_use]
    pub fn auth_method(&self) -> AuthMethod {
        self.inner.auth_method
    }

    /// Requests an access token for `credentials` (RFC 6749 §4.4.2), with
    /// the retries and the `auto` fallback described on [`Endpoint`].
    ///
    /// # Errors
    ///
    /// A [`FetchError`] describing the last attempt: rejected (4xx other
    /// than 429), unreachable, unavailable (429/5xx), malformed answer, or
    /// timeout. It never holds the secret, the token or the answer's body.
    pub async fn fetch(&self, credentials: &Credentials) -> Result<TokenResponse, FetchError> {
        let call = Call {
            form: &self.inner.form,
            parse: TokenResponse::from_json,
            cap: MAX_TOKEN_BODY,
            too_large: "the body is larger than 256 KiB",
            kind: "token",
        };
        self.inner.call(credentials, &call).await
    }

    /// Asks this endpoint — an introspection endpoint (RFC 7662 §2.1) —
    /// what `access_token` stands for, authenticated with `credentials`
    /// per the configured method, with the same timeout, retries and
    /// request slots as a token request.
    ///
    /// # Errors
    ///
    /// A [`FetchError`] as for [`fetch`](Self::fetch); a body that is not
    /// an introspection response (or is larger than
    /// [`MAX_INTROSPECTION_BODY`]) is [`FetchError::Malformed`].
    pub(crate) async fn introspect(
        &self,
        credentials: &Credentials,
        access_token: &str,
    ) -> Result<Introspection, FetchError> {
        let form = format!(
            "token={}&token_type_hint=access_token",
            auth::form_urlencode(access_token)
        );
        let call = Call {
            form: &form,
            parse: Introspection::from_json,
            cap: MAX_INTROSPECTION_BODY,
            too_large: "the introspection response is larger than 64 KiB",
            kind: "introspection",
        };
        self.inner.call(credentials, &call).await
    }
}

/// One kind of request: its form (before client authentication) and how
/// its success body is read.
struct Call<'a, T> {
    form: &'a str,
    parse: fn(&[u8]) -> Result<T, &'static str>,
    /// Largest success body read, and the reason a larger one gets.
    cap: usize,
    too_large: &'static str,
    /// `token` or `introspection`, for the log.
    kind: &'static str,
}

impl Inner {
    async fn call<T>(
        &self,
        credentials: &Credentials,
        call: &Call<'_, T>,
    ) -> Result<T, FetchError> {
        match self.auth_method {
            AuthMethod::ClientSecretBasic => {
                self.exchange(credentials, Placement::Header, call).await
            }
            AuthMethod::ClientSecretPost => self.exchange(credentials, Placement::Body, call).await,
            AuthMethod::ClientSecretJwt => {
                self.exchange(credentials, Placement::SecretJwt, call).await
            }
            AuthMethod::PrivateKeyJwt => self.exchange(credentials, Placement::KeyJwt, call).await,
            AuthMethod::TlsClientAuth => {
                self.exchange(credentials, Placement::TlsClient, call).await
            }
            AuthMethod::Auto => self.fetch_auto(credentials, call).await,
        }
    }

    async fn fetch_auto<T>(
        &self,
        credentials: &Credentials,
        call: &Call<'_, T>,
    ) -> Result<T, FetchError> {
        let first = self.memory.first_placement(credentials.id());
        let first_error = match self.exchange(credentials, first, call).await {
            Ok(token) => {
                self.memory.learned(credentials.id(), first);
                return Ok(token);
            }
            Err(
                error @ FetchError::Rejected {
                    status: 400 | 401, ..
                },
            ) => error,
            Err(error) => return Err(error),
        };
        let second = first.other();
        tracing::debug!(
            client_id = credentials.id(),
            from = first.as_str(),
            to = second.as_str(),
            "token endpoint refused the client authentication method; trying the other one"
        );
        match self.exchange(credentials, second, call).await {
            Ok(token) => {
                self.memory.learned(credentials.id(), second);
                Ok(token)
            }
            Err(second_error @ FetchError::Rejected { .. }) => Err(match second {
                Placement::Header => first_error,
                _ => second_error,
            }),
            Err(other) => Err(other),
        }
    }

    /// One request with its retries.
    async fn exchange<T>(
        &self,
        credentials: &Credentials,
        placement: Placement,
        call: &Call<'_, T>,
    ) -> Result<T, FetchError> {
        let form = call.form;
        let (authorization, body) = match placement {
            Placement::Header => (
                Some(auth::basic_authorization(credentials)),
                form.to_owned(),
            ),
            Placement::Body => (None, form.to_owned() + &auth::body_credentials(credentials)),
            Placement::TlsClient => (
                None,
                format!(
                    "{form}&client_id={}",
                    auth::form_urlencode(credentials.id())
                ),
            ),
            // Signed per attempt, below.
            Placement::SecretJwt | Placement::KeyJwt => (None, String::new()),
        };
        let mut retry = 0;
        loop {
            let started = Instant::now();
            // An assertion is signed for each attempt: a retry must not
            // replay a `jti` the server may have recorded.
            let body = match placement {
                Placement::SecretJwt => self.assertion_body(form, credentials, &Signing::Secret)?,
                Placement::KeyJwt => {
                    let key = self.private_key.as_ref().ok_or(FetchError::Internal {
                        reason: "private_key_jwt without a private key",
                    })?;
                    let signing = Signing::Key(key, self.private_key_id.as_deref());
                    self.assertion_body(form, credentials, &signing)?
                }
                _ => body.clone(),
            };
            // The wait for a slot counts against the attempt's timeout.
            let outcome = tokio::time::timeout(self.timeout, async {
                let _slot = self.slots.acquire().await.map_err(|_closed| {
                    Failure::final_(FetchError::Internal {
                        reason: "the token endpoint's request slots are closed",
                    })
                })?;
                self.attempt(authorization.as_ref(), body, call).await
            })
            .await
            .unwrap_or_else(|_elapsed| Err(Failure::retryable(FetchError::Timeout, None)));
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let failure = match outcome {
                Ok(answer) => {
                    tracing::debug!(
                        client_id = credentials.id(),
                        request = call.kind,
                        method = placement.as_str(),
                        attempt = retry + 1,
                        elapsed_ms,
                        "the authorization server answered"
                    );
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            let retrying = failure.retryable && retry < self.max_retries;
            tracing::debug!(
                client_id = credentials.id(),
                request = call.kind,
                method = placement.as_str(),
                attempt = retry + 1,
                elapsed_ms,
                outcome = failure.error.outcome().map_or("refused", Outcome::label),
                error = %failure.error,
                retrying,
                "token or introspection request failed"
            );
            if !retrying {
                return Err(failure.error);
            }
            tokio::time::sleep(retry::delay(retry, failure.retry_after)).await;
            retry += 1;
        }
    }

    /// The form with a freshly signed client assertion.
    fn assertion_body(
        &self,
        form: &str,
        credentials: &Credentials,
        signing: &Signing<'_>,
    ) -> Result<String, FetchError> {
        let fields = assertion::body_fields(credentials, self.url.as_str(), signing)
            .map_err(|reason| FetchError::Internal { reason })?;
        Ok(form.to_owned() + &fields)
    }

    /// One HTTP exchange, without timeout.
    async fn attempt<T>(
        &self,
        authorization: Option<&HeaderValue>,
        body: String,
        call: &Call<'_, T>,
    ) -> Result<T, Failure> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|error| Failure::transport(&error))?;
        let status = response.status();
        if status.is_success() {
            let body = read_capped(&mut response, call.cap)
                .await
                .map_err(|error| Failure::transport(&error))?
                .ok_or_else(|| Failure::malformed(status, call.too_large))?;
            (call.parse)(&body).map_err(|reason| Failure::malformed(status, reason))
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = retry::retry_after(response.headers());
            // Retry-After is defined for 429 and 503 (RFC 9110 §10.2.3,
            // RFC 6585 §4): only theirs lengthens a cool-down.
            let cool_down_hint = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then_some(retry_after)
            .flatten();
            Err(Failure::retryable(
                FetchError::Unavailable {
                    status: status.as_u16(),
                    retry_after: cool_down_hint,
                },
                retry_after,
            ))
        } else if status.is_client_error() {
            // A broken error body still leaves a clear rejection.
            let body = read_capped(&mut response, MAX_ERROR_BODY)
                .await
                .ok()
                .flatten();
            Err(Failure::final_(FetchError::Rejected {
                status: status.as_u16(),
                oauth_error: body.as_deref().and_then(oauth_error_code),
            }))
        } else if status.is_redirection() {
            Err(Failure::malformed(
                status,
                "a redirect, which is not followed: check the url",
            ))
        } else {
            Err(Failure::malformed(status, "an unexpected HTTP status"))
        }
    }
}

/// The HTTP client of the authorization server at `url` (its token,
/// introspection or JWKS endpoint): TLS per `tls`, no redirects, proxies
/// from the environment except for a loopback `url`.
pub(crate) fn http_client(
    tls: &tls::TlsSettings,
    url: &Url,
    timeout: Duration,
) -> Result<reqwest::Client, BuildError> {
    let https = url.scheme() == "https";
    let tls = tls::client_config(tls, url.as_str(), https)?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .user_agent(concat!("ccgate/", env!("CARGO_PKG_VERSION")));
    if is_loopback(url) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| BuildError::Client {
        detail: transport_detail(&e),
    })
}

/// A failed attempt and whether to try again.
struct Failure {
    error: FetchError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn retryable(error: FetchError, retry_after: Option<Duration>) -> Self {
        Self {
            error,
            retryable: true,
            retry_after,
        }
    }

    fn final_(error: FetchError) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    fn malformed(status: StatusCode, reason: &'static str) -> Self {
        Self::final_(FetchError::Malformed {
            status: status.as_u16(),
            reason,
        })
    }

    /// No (complete) answer: connect, TLS, reset, or a cut-off body.
    fn transport(error: &reqwest::Error) -> Self {
        Self::retryable(
            FetchError::Unreachable {
                detail: transport_detail(error),
            },
            None,
        )
    }
}

/// The body, or `None` when it is longer than `cap` bytes.
async fn read_capped(
    response: &mut Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Longest [`FetchError::Unreachable`] detail.
const MAX_DETAIL: usize = 300;

/// The causes of a transport error, without the URL: e.g. `error sending
/// request: client error (Connect): tcp connect error: Connection refused`.
fn transport_detail(error: &reqwest::Error) -> String {
    let mut detail = if error.is_connect() {
        String::from("connect error")
    } else if error.is_body() || error.is_decode() {
        String::from("error reading the answer")
    } else if error.is_builder() {
        String::from("invalid client settings")
    } else {
        String::from("error sending the request")
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.ends_with(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    if detail.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    detail
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Endpoint")
            .field("url", &inner.url.as_str())
            .field("audience", &inner.audience)
            .field("scopes", &inner.scopes)
            .field("auth_method", &inner.auth_method)
            .field("private_key", &inner.private_key)
            .field("private_key_id", &inner.private_key_id)
            .field("timeout", &inner.timeout)
            .field("max_retries", &inner.max_retries)
            .field("remembered", &inner.memory)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TlsSettings;

    fn build(settings: EndpointSettings) -> Result<Endpoint, BuildError> {
        Endpoint::new(settings)
    }

    fn settings(url: &str) -> EndpointSettings {
        EndpointSettings::new(url, "https://api.example.com")
    }

    #[test]
    fn the_form_is_encoded_once() {
        let endpoint = build(EndpointSettings {
            scopes: vec!["read:all".into(), "write".into()],
            ..EndpointSettings::new("http://idp.test/token", "https://api.example.com/a b")
        })
        .expect("valid");
        assert_eq!(
            endpoint.inner.form,
            "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.com%2Fa+b\
             &scope=read%3Aall+write"
        );
        let plain = build(settings("http://idp.test/token")).expect("valid");
        assert!(!plain.inner.form.contains("scope"));
    }

    #[test]
    fn debug_shows_settings_but_no_key() {
        let endpoint = build(EndpointSettings {
            auth_method: AuthMethod::ClientSecretPost,
            ..settings("http://idp.test/token")
        })
        .expect("valid");
        let debug = format!("{endpoint:?}");
        for part in [
            "http://idp.test/token",
            "ClientSecretPost",
            "max_retries: 3",
        ] {
            assert!(debug.contains(part), "{debug}");
        }
        let tls = TlsSettings {
            key: Some("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n".into()),
            ..TlsSettings::default()
        };
        assert!(!format!("{tls:?}").contains("c2VjcmV0"));
    }
}
