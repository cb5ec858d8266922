//! The access log: one record per request, in Traefik's field names,
//! written by a thread of its own so that requests never wait on the disk.
//!
//! JSON (default): one object per line with `ClientAddr`, `ClientHost`,
//! `ClientUsername`, `DownstreamStatus`, `Duration` (ns), `OriginStatus`
//! (0 when no upstream answered), `OriginDuration` (ns), `Overhead` (ns),
//! `RequestHost`, `RequestMethod`, `RequestPath`, `RequestProtocol`,
//! `RequestScheme`, `RouterName`, `ServiceName`, `StartUTC`,
//! `entryPointName`. `common`: Traefik's extended Common Log Format, with
//! every field a caller or a token controls escaped as nginx does
//! ([`escape`]), so that no value can forge a line or a field.
//!
//! The queue to the writer thread holds at most [`QUEUE_RECORDS`] records:
//! when the output stalls (a full pipe, a FIFO nobody reads, a slow disk)
//! the records that do not fit are dropped and counted in
//! `ccgate_access_log_dropped_total`; requests never wait for the log and
//! memory stays bounded.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use serde_json::json;

use crate::config::LogFormat;

/// One request, as logged.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) start: SystemTime,
    pub(crate) client: SocketAddr,
    pub(crate) username: Option<&'a str>,
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) protocol: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) entry_point: &'a str,
    pub(crate) router: Option<&'a str>,
    pub(crate) service: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) origin_status: u16,
    pub(crate) duration: Duration,
    pub(crate) origin_duration: Duration,
}

/// Records the queue to the writer thread holds at most (SPEC §10).
pub(crate) const QUEUE_RECORDS: usize = 16_384;

/// Sends records to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    format: LogFormat,
    lines: mpsc::SyncSender<String>,
    dropped: Counter,
}

impl AccessLog {
    /// Opens `file_path` (appending) or standard output, and starts the
    /// writer thread; records that find the queue full count into
    /// `dropped`.
    ///
    /// # Errors
    ///
    /// The file cannot be opened.
    pub(crate) fn open(
        format: LogFormat,
        file_path: Option<&Path>,
        dropped: Counter,
    ) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = match file_path {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let (lines, receiver) = mpsc::sync_channel::<String>(QUEUE_RECORDS);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                while let Ok(line) = receiver.recv() {
                    let mut ok = out.write_all(line.as_bytes()).is_ok();
                    // Write what else is queued before flushing once.
                    while let Ok(line) = receiver.try_recv() {
                        ok &= out.write_all(line.as_bytes()).is_ok();
                    }
                    if !(ok && out.flush().is_ok()) {
                        eprintln!("ccgate: cannot write the access log");
                    }
                }
            })?;
        Ok(Self {
            format,
            lines,
            dropped,
        })
    }

    /// Queues `record`, or drops and counts it when the queue is full.
    pub(crate) fn log(&self, record: &Record<'_>) {
        let line = match self.format {
            LogFormat::Json => json_line(record),
            LogFormat::Common => common_line(record),
        };
        if let Err(mpsc::TrySendError::Full(_)) = self.lines.try_send(line) {
            self.dropped.inc();
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn json_line(r: &Record<'_>) -> String {
    let mut line = json!({
        "ClientAddr": r.client.to_string(),
        "ClientHost": r.client.ip().to_string(),
        "ClientUsername": r.username.unwrap_or("-"),
        "DownstreamStatus": r.status,
        "Duration": nanos(r.duration),
        "OriginStatus": r.origin_status,
        "OriginDuration": nanos(r.origin_duration),
        "Overhead": nanos(r.duration.saturating_sub(r.origin_duration)),
        "RequestHost": r.host,
        "RequestMethod": r.method,
        "RequestPath": r.path,
        "RequestProtocol": r.protocol,
        "RequestScheme": r.scheme,
        "RouterName": r.router.unwrap_or(""),
        "ServiceName": r.service.unwrap_or(""),
        "StartUTC": rfc3339(r.start),
        "entryPointName": r.entry_point,
    })
    .to_string();
    line.push('\n');
    line
}

fn common_line(r: &Record<'_>) -> String {
    let mut line = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = writeln!(
        line,
        "{} - {} [{}] \"{} {} {}\" {} - \"-\" \"-\" 1 \"{}\" \"{}\" {}ms",
        r.client.ip(),
        escape(r.username.unwrap_or("-"), true),
        rfc3339(r.start),
        escape(r.method, true),
        escape(r.path, true),
        r.protocol,
        r.status,
        escape(r.router.unwrap_or("-"), false),
        escape(r.service.unwrap_or("-"), false),
        r.duration.as_millis(),
    );
    line
}

/// `text` as the `common` format writes a field: as nginx escapes its
/// log variables, `"`, `\`, control characters (CR, LF, …), DEL and
/// every byte outside ASCII become `\xHH`; with `space`, spaces too (in
/// fields that are not quoted, or whose spaces would shift the ones after
/// them). Borrowed when nothing needs escaping, as for most values.
pub(crate) fn escape(text: &str, space: bool) -> Cow<'_, str> {
    let needs =
        |b: u8| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) || (space && b == b' ');
    if !text.bytes().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for b in text.bytes() {
        if needs(b) {
            let _ = write!(escaped, "\\x{b:02x}");
        } else {
            escaped.push(char::from(b));
        }
    }
    Cow::Owned(escaped)
}

/// `2026-11-30T02:59:01.123456789Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_796_004_741, 5);
        assert_eq!(rfc3339(t), "2026-11-30T02:12:21.000000005Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }

    #[test]
    fn json_records_use_traefik_names() {
        let record = Record {
            duration: Duration::from_micros(1500),
            origin_duration: Duration::from_micros(1000),
            ..record_by("john", "/v1")
        };
        let value: serde_json::Value = serde_json::from_str(&json_line(&record)).unwrap();
        assert_eq!(value["ClientUsername"], "john");
        assert_eq!(value["Duration"], 1_500_000);
        assert_eq!(value["Overhead"], 500_000);
        assert_eq!(value["RouterName"], "api");
        assert_eq!(value["entryPointName"], "web");
        assert!(common_line(&record).starts_with(
            "127.0.0.1 - john [1970-01-01T00:00:00.000000000Z] \"GET /v1 HTTP/1.1\" 200"
        ));
    }

    fn record_by(username: &'static str, path: &'static str) -> Record<'static> {
        Record {
            start: UNIX_EPOCH,
            client: "127.0.0.1:4000".parse().unwrap(),
            username: Some(username),
            method: "GET",
            host: "api.example.com",
            path,
            protocol: "HTTP/1.1",
            scheme: "http",
            entry_point: "web",
            router: Some("api"),
            service: Some("backend"),
            status: 200,
            origin_status: 200,
            duration: Duration::from_millis(1),
            origin_duration: Duration::from_millis(1),
        }
    }

    #[test]
    fn common_lines_escape_what_callers_and_tokens_control() {
        let forged = "john\r\n127.0.0.1 - admin [1970-01-01T00:00:00Z] \"GET /admin HTTP/1.1\" 200";
        let line = common_line(&record_by(forged, "/a\"b\\c"));
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with("ms\n"), "{line:?}");
        assert!(!line.contains('\r'), "{line:?}");
        assert!(
            line.starts_with(
                "127.0.0.1 - john\\x0d\\x0a127.0.0.1\\x20-\\x20admin\\x20[1970-01-01T00:00:00Z]\\x20\\x22GET\\x20/admin\\x20HTTP/1.1\\x22\\x20200 ["
            ),
            "{line:?}"
        );
        assert!(line.contains("\"GET /a\\x22b\\x5cc HTTP/1.1\""), "{line:?}");
        assert_eq!(escape("plain", true), Cow::Borrowed("plain"));
        assert_eq!(escape("J\u{fc}rgen", true), "J\\xc3\\xbcrgen");
        assert_eq!(escape("a b\t\u{7f}", false), "a b\\x09\\x7f");
    }

    #[test]
    fn json_lines_are_escaped_by_serde() {
        let line = json_line(&record_by("john\r\n{\"x\":1}", "/a\nb"));
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(
            line.contains(r#""ClientUsername":"john\r\n{\"x\":1}""#),
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ClientUsername"], "john\r\n{\"x\":1}");
        assert_eq!(value["RequestPath"], "/a\nb");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        // A writer that never gets a record out: the thread blocks on
        // its first write, the queue fills, the rest are dropped.
        let dropped = Counter::default();
        let (lines, receiver) = mpsc::sync_channel::<String>(QUEUE_RECORDS);
        let log = AccessLog {
            format: LogFormat::Json,
            lines,
            dropped: dropped.clone(),
        };
        for _ in 0..QUEUE_RECORDS + 10 {
            log.log(&record_by("john", "/"));
        }
        assert_eq!(dropped.get(), 10);
        drop(receiver);
    }
}
