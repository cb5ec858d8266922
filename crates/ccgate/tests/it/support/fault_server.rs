//! A FAKE token server, for faults a real authorization server cannot
//! produce on demand: an answer that never comes, a burst of 503s, a body
//! that is not a token response, a response cut off mid-way, a connection
//! reset, a redirect. Everything a real server can do is tested against
//! the real test IdP ([`super::idp`]) instead.
//!
//! It listens on `127.0.0.1:0`, reads one HTTP/1.1 request per connection,
//! counts and records it, and answers with the [`Reply`] a script picks for
//! that request's number, then closes the connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The access token of [`Reply::token`].
pub(crate) const FAKE_TOKEN: &str = "fake-access-token-7b2c";

/// A marker inside every body the fake server sends, to check that no
/// error repeats a body.
pub(crate) const BODY_MARKER: &str = "BODY-MARKER-51f0";

/// What the fake server does with one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A complete answer with this status, extra headers and body.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answer; keep the connection open.
    Stall,
    /// Send the status line, headers announcing 4096 bytes, and only the
    /// first few bytes of the body, then close.
    HalfWritten,
    /// Close the connection with a TCP reset (SO_LINGER 0), no answer.
    Reset,
}

impl Reply {
    /// 200 with a valid token response.
    pub(crate) fn token() -> Self {
        Self::json(
            200,
            &format!(
                r#"{{"access_token":"{FAKE_TOKEN}","token_type":"Bearer","expires_in":60,"note":"{BODY_MARKER}"}}"#
            ),
        )
    }

    /// A JSON body with `status`.
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self::Answer {
            status,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: body.to_owned(),
        }
    }

    /// An OAuth error answer (RFC 6749 §5.2) with `status` and `code`.
    pub(crate) fn error(status: u16, code: &str) -> Self {
        Self::json(
            status,
            &format!(r#"{{"error":"{code}","error_description":"{BODY_MARKER}"}}"#),
        )
    }

    /// Adds a header to an [`Reply::Answer`].
    pub(crate) fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Self::Answer { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The request line, e.g. `POST /token HTTP/1.1`.
    pub(crate) request_line: String,
    /// Header names (lower case) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text.
    pub(crate) body: String,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The form fields of the body, decoded.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name), form_decode(value))
            })
            .collect()
    }
}

/// A running fake token server; stops (with every open connection) on drop.
pub(crate) struct FaultServer {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FaultServer {
    /// Starts a server that answers request number `n` (from 0) with
    /// `script(n)`.
    pub(crate) async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake token server");
        let url = format!(
            "http://{}/token",
            listener.local_addr().expect("local address")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let task = tokio::spawn({
            let requests = Arc::clone(&requests);
            let count = Arc::clone(&count);
            async move {
                // Dropping the set (when the task is aborted) aborts every
                // connection, stalled ones included.
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let requests = Arc::clone(&requests);
                    let count = Arc::clone(&count);
                    let script = Arc::clone(&script);
                    connections.spawn(async move {
                        let mut stream = stream;
                        let Some(recorded) = read_request(&mut stream).await else {
                            return;
                        };
                        requests.lock().expect("requests").push(recorded);
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        answer(stream, script(n)).await;
                    });
                }
            }
        });
        Self {
            url,
            requests,
            count,
            task,
        }
    }

    /// Starts a server that always answers `reply`.
    pub(crate) async fn always(reply: Reply) -> Self {
        Self::start(move |_| reply.clone()).await
    }

    /// The token endpoint URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// How many complete requests arrived.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The requests received, in order.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: head up to the blank line, then `Content-Length`
/// bytes of body.
async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut data = Vec::new();
    let mut buf = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while data.len() < body_start + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[body_start..body_start + length]).into_owned();
    Some(Recorded {
        request_line,
        headers,
        body,
    })
}

async fn answer(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut text = format!(
                "HTTP/1.1 {status} Fake\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
            text.push_str("\r\n");
            text.push_str(&body);
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Stall => std::future::pending::<()>().await,
        Reply::HalfWritten => {
            let text = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"access_token\":\"{FAKE_TOKEN}"
            );
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Reset => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes one `application/x-www-form-urlencoded` name or value.
pub(crate) fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 form value")
}
