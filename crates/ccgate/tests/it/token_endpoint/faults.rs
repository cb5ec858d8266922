//! Against the fake token server, for faults the real IdP cannot produce
//! on demand (see `support::fault_server`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use ccgate::token::{AuthMethod, CredentialsLevel, EndpointSettings, FetchError, Outcome};
use secrecy::ExposeSecret;

use super::{checked, credentials, endpoint, settings};
use crate::support::fault_server::{BODY_MARKER, FAKE_TOKEN, FaultServer, Reply};

const SECRET: &str = "fault-secret-91c4";

/// What no error may show: the secret, the fake token, any body.
const NEEDLES: &[&str] = &[SECRET, FAKE_TOKEN, BODY_MARKER];

/// Fetches with `settings` and returns the checked error.
async fn fetch_error(settings: EndpointSettings) -> FetchError {
    let error = endpoint(settings)
        .fetch(&credentials("fault-client", SECRET))
        .await
        .expect_err("the fetch must fail");
    checked(error, NEEDLES)
}

fn basic(server: &FaultServer) -> EndpointSettings {
    EndpointSettings {
        auth_method: AuthMethod::ClientSecretBasic,
        ..settings(server.url())
    }
}

#[tokio::test]
async fn the_request_has_the_documented_shape() {
    let server = FaultServer::always(Reply::token()).await;
    let endpoint = endpoint(EndpointSettings {
        scopes: vec!["read".into(), "write:all".into()],
        ..basic(&server)
    });
    let token = endpoint
        .fetch(&credentials("my app", "s:e/c+r&e=t%?@x"))
        .await
        .expect("token");
    assert_eq!(token.access_token.expose_secret(), FAKE_TOKEN);
    assert_eq!(token.expires_in, Some(Duration::from_secs(60)));

    let request = &server.requests()[0];
    assert_eq!(request.request_line, "POST /token HTTP/1.1");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    let authorization = request.header("authorization").expect("Basic header");
    let encoded = authorization.strip_prefix("Basic ").expect("Basic scheme");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(decoded, b"my+app:s%3Ae%2Fc%2Br%26e%3Dt%25%3F%40x");
    let form = request.form();
    let expected = [
        ("grant_type", "client_credentials"),
        ("audience", super::AUDIENCE),
        ("scope", "read write:all"),
    ];
    assert_eq!(
        form,
        expected.map(|(n, v)| (n.to_owned(), v.to_owned())).to_vec()
    );

    let post = super::endpoint(EndpointSettings {
        auth_method: AuthMethod::ClientSecretPost,
        ..settings(server.url())
    });
    post.fetch(&credentials("my app", "a&b"))
        .await
        .expect("token");
    let request = &server.requests()[1];
    assert_eq!(request.header("authorization"), None);
    let form = request.form();
    assert!(
        form.contains(&("client_id".into(), "my app".into())),
        "{form:?}"
    );
    assert!(
        form.contains(&("client_secret".into(), "a&b".into())),
        "{form:?}"
    );
}

#[tokio::test]
async fn a_stalled_answer_times_out_on_every_attempt() {
    let server = FaultServer::always(Reply::Stall).await;
    let started = Instant::now();
    let error = fetch_error(EndpointSettings {
        timeout: Duration::from_millis(300),
        max_retries: 1,
        ..settings(server.url())
    })
    .await;
    assert_eq!(error, FetchError::Timeout);
    assert_eq!(error.outcome().map(Outcome::label), Some("timeout"));
    assert_eq!(server.count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn a_short_503_burst_is_ridden_out() {
    let server = FaultServer::start(|n| {
        if n < 2 {
            Reply::error(503, "temporarily_unavailable")
        } else {
            Reply::token()
        }
    })
    .await;
    let token = endpoint(settings(server.url()))
        .fetch(&credentials("fault-client", SECRET))
        .await
        .expect("token after two 503s");
    assert_eq!(token.access_token.expose_secret(), FAKE_TOKEN);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_long_503_burst_is_unavailable() {
    let server = FaultServer::always(Reply::Answer {
        status: 503,
        headers: vec![("Content-Type", "text/html".into())],
        body: format!("<html>{BODY_MARKER}</html>"),
    })
    .await;
    let error = fetch_error(EndpointSettings {
        max_retries: 2,
        ..settings(server.url())
    })
    .await;
    assert_eq!(
        error,
        FetchError::Unavailable {
            status: 503,
            retry_after: None
        }
    );
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn the_last_answers_retry_after_is_kept_only_for_429_and_503() {
    // Fake server: a real IdP cannot be made to send Retry-After: 7 and
    // then a 500 with one.
    for (status, kept) in [(503, Some(7)), (429, Some(7)), (500, None), (502, None)] {
        let server = FaultServer::always(
            Reply::error(status, "temporarily_unavailable").with_header("Retry-After", "7"),
        )
        .await;
        let started = Instant::now();
        let error = fetch_error(EndpointSettings {
            max_retries: 0,
            ..settings(server.url())
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no retry waited"
        );
        assert_eq!(
            error,
            FetchError::Unavailable {
                status,
                retry_after: kept.map(Duration::from_secs)
            },
            "HTTP {status}"
        );
    }
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let server = FaultServer::start(|n| {
        if n == 0 {
            Reply::error(429, "slow_down").with_header("Retry-After", "0")
        } else {
            Reply::token()
        }
    })
    .await;
    endpoint(settings(server.url()))
        .fetch(&credentials("fault-client", SECRET))
        .await
        .expect("token after a 429");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_400_is_final() {
    let server = FaultServer::always(Reply::error(400, "invalid_request")).await;
    let error = fetch_error(basic(&server)).await;
    assert_eq!(
        error,
        FetchError::Rejected {
            status: 400,
            oauth_error: Some("invalid_request".into())
        }
    );
    assert_eq!(server.count(), 1);

    // `auto` tries the body once, and reports its answer.
    let server = FaultServer::start(|n| {
        if n == 0 {
            Reply::error(400, "invalid_request")
        } else {
            Reply::error(401, "invalid_client")
        }
    })
    .await;
    let error = fetch_error(settings(server.url())).await;
    assert_eq!(
        error,
        FetchError::Rejected {
            status: 401,
            oauth_error: Some("invalid_client".into())
        }
    );
    assert_eq!(server.count(), 2);
}

/// What `auto` learned is not a verdict: when the remembered method is
/// refused, the other one is tried, and the memory follows what works.
#[tokio::test]
async fn auto_relearns_when_the_remembered_method_is_refused() {
    let server = FaultServer::start(|n| match n {
        0 | 2 => Reply::error(401, "invalid_client"),
        _ => Reply::token(),
    })
    .await;
    let endpoint = endpoint(settings(server.url()));
    let credentials = credentials("fault-client", SECRET);
    for _ in 0..3 {
        endpoint.fetch(&credentials).await.expect("token");
    }
    let uses_basic: Vec<bool> = server
        .requests()
        .iter()
        .map(|request| request.header("authorization").is_some())
        .collect();
    // Basic refused, body works; body (remembered) refused, Basic works;
    // Basic again (the body is forgotten).
    assert_eq!(uses_basic, [true, false, false, true, true]);
}

#[tokio::test]
async fn odd_oauth_error_codes_are_dropped() {
    let server = FaultServer::always(Reply::json(
        403,
        &format!(r#"{{"error":"<b>{BODY_MARKER}</b>"}}"#),
    ))
    .await;
    let error = fetch_error(basic(&server)).await;
    assert_eq!(
        error,
        FetchError::Rejected {
            status: 403,
            oauth_error: None
        }
    );
}

#[tokio::test]
async fn bad_success_bodies_are_malformed_and_not_retried() {
    let cases = [
        (
            Reply::Answer {
                status: 200,
                headers: vec![],
                body: format!("garbage {BODY_MARKER}"),
            },
            "the body is not JSON",
        ),
        (
            Reply::json(200, &format!(r#"{{"token":"{BODY_MARKER}"}}"#)),
            "access_token is missing",
        ),
        (
            Reply::json(
                200,
                &format!(r#"{{"access_token":"{FAKE_TOKEN}","token_type":"mac"}}"#),
            ),
            "token_type is not Bearer",
        ),
        (
            Reply::json(
                200,
                &format!(r#"{{"access_token":"{}"}}"#, "x".repeat(300 * 1024)),
            ),
            "the body is larger than 256 KiB",
        ),
    ];
    for (reply, reason) in cases {
        let server = FaultServer::always(reply).await;
        let error = fetch_error(settings(server.url())).await;
        assert_eq!(
            error,
            FetchError::Malformed {
                status: 200,
                reason
            }
        );
        assert_eq!(
            error.http_status(CredentialsLevel::Application).as_u16(),
            502
        );
        assert_eq!(server.count(), 1, "{reason}");
    }
}

/// A response cut off mid-body is a transport failure: retried, then
/// `Unreachable`.
#[tokio::test]
async fn a_half_written_answer_is_retried_then_unreachable() {
    let server = FaultServer::always(Reply::HalfWritten).await;
    let error = fetch_error(EndpointSettings {
        max_retries: 2,
        ..settings(server.url())
    })
    .await;
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let server = FaultServer::start(|n| if n == 0 { Reply::Reset } else { Reply::token() }).await;
    endpoint(settings(server.url()))
        .fetch(&credentials("fault-client", SECRET))
        .await
        .expect("token after a reset");
    assert_eq!(server.count(), 2);

    let server = FaultServer::always(Reply::Reset).await;
    let error = fetch_error(EndpointSettings {
        max_retries: 1,
        ..settings(server.url())
    })
    .await;
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
    assert_eq!(server.count(), 2);
}

/// A redirect is not followed (it would move the client secret to another
/// URL) and not retried: it is a wrong `url`, `Malformed` with its status.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = FaultServer::start(|n| {
        if n == 0 {
            Reply::Answer {
                status: 302,
                headers: vec![("Location", "/elsewhere".into())],
                body: String::new(),
            }
        } else {
            Reply::token()
        }
    })
    .await;
    let error = fetch_error(settings(server.url())).await;
    assert!(
        matches!(error, FetchError::Malformed { status: 302, .. }),
        "{error:?}"
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let endpoint = endpoint(EndpointSettings {
        max_retries: 1,
        ..settings(&format!("http://127.0.0.1:{port}/token"))
    });
    let error = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect_err("nothing listens");
    let FetchError::Unreachable { detail } = &error else {
        panic!("expected Unreachable, got {error:?}");
    };
    assert!(detail.starts_with("connect error"), "{detail}");
    assert!(
        !detail.contains(&port.to_string()),
        "no URL in the detail: {detail}"
    );
}

/// Every log line, down to `TRACE` and including the HTTP client's, is
/// free of the secret, the token and the bodies.
#[tokio::test]
async fn logs_hold_no_secret_token_or_body() {
    let logs = crate::support::LogCapture::start();
    let server = FaultServer::start(|n| match n {
        0 => Reply::error(401, "invalid_client"),
        1 => Reply::token(),
        2 => Reply::error(503, "temporarily_unavailable"),
        _ => Reply::json(200, &format!(r#"{{"token":"{BODY_MARKER}"}}"#)),
    })
    .await;
    let endpoint = endpoint(settings(server.url()));
    let credentials = credentials("fault-client", SECRET);
    endpoint
        .fetch(&credentials)
        .await
        .expect("token after the fallback");
    let error = endpoint.fetch(&credentials).await.expect_err("malformed");
    assert!(matches!(error, FetchError::Malformed { .. }), "{error:?}");

    let text = logs.text();
    assert!(
        text.contains("introspection request failed") && text.contains("request=\"token\""),
        "{text}"
    );
    assert!(
        text.contains("fault-client"),
        "the client id is logged: {text}"
    );
    for needle in NEEDLES {
        assert!(!text.contains(needle), "{needle} in the logs:\n{text}");
    }
}

#[tokio::test]
async fn insecure_skip_verify_warns_once_per_endpoint() {
    let logs = crate::support::LogCapture::start();
    let settings = EndpointSettings {
        tls: ccgate::token::TlsSettings {
            insecure_skip_verify: true,
            ..Default::default()
        },
        ..settings("https://127.0.0.1:9/token")
    };
    let endpoint = endpoint(settings);
    let _both = [endpoint.clone(), endpoint];
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("insecureSkipVerify"), "{text}");
}
