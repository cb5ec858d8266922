//! `entryPoints.NAME.transport`, in Traefik's shapes: the responding
//! timeouts, the shutdown grace period, and ccgate's connection limit
//! (SPEC §10). Durations are written as Traefik writes them: a Go
//! duration (`"1s"`, `"500ms"`, `"1m30s"`) or a number of seconds.

use std::time::Duration;

use ccgate::options::fields;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, Origin};

/// Traefik's `readTimeout` default.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Traefik's `idleTimeout` default.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Traefik's `lifeCycle.graceTimeOut` default.
pub(crate) const DEFAULT_GRACE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `maxConnections` (a ccgate extension).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The longest accepted duration: longer ones are surely mistakes (0
/// turns a timeout off).
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most accepted `maxConnections`.
const MAX_CONNECTIONS: u64 = 1 << 24;

/// An entry point's transport settings. `None` timeouts are off (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transport {
    /// `respondingTimeouts.readTimeout`: the whole request, body included.
    pub(crate) read_timeout: Option<Duration>,
    /// `respondingTimeouts.writeTimeout`: writing the response.
    pub(crate) write_timeout: Option<Duration>,
    /// `respondingTimeouts.idleTimeout`: between requests of a connection.
    pub(crate) idle_timeout: Option<Duration>,
    /// `lifeCycle.graceTimeOut`: the drain on SIGTERM.
    pub(crate) grace_timeout: Duration,
    /// `maxConnections`: open connections at most.
    pub(crate) max_connections: usize,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            write_timeout: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            grace_timeout: DEFAULT_GRACE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `transport` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawTransport {
    #[serde(default, deserialize_with = "fields::section")]
    responding_timeouts: Option<RawRespondingTimeouts>,
    #[serde(default, deserialize_with = "fields::section")]
    life_cycle: Option<RawLifeCycle>,
    max_connections: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRespondingTimeouts {
    read_timeout: Option<Value>,
    write_timeout: Option<Value>,
    idle_timeout: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLifeCycle {
    grace_time_out: Option<Value>,
}

/// Reads `transport` of the entry point at `path` (`entryPoints.NAME`).
///
/// # Errors
///
/// A [`ConfigError`] naming the field, e.g.
/// `entryPoints.web.transport.respondingTimeouts.readTimeout`.
pub(super) fn read(
    raw: Option<RawTransport>,
    origin: &Origin,
    path: &str,
) -> Result<Transport, ConfigError> {
    let mut transport = Transport::default();
    let Some(raw) = raw else {
        return Ok(transport);
    };
    let field = |name: &str| format!("{path}.transport.{name}");
    let duration = |value: &Value, name: &str| {
        parse_duration(value).map_err(|reason| origin.error(&field(name), reason))
    };
    let non_zero = |d: Duration| (!d.is_zero()).then_some(d);
    if let Some(timeouts) = raw.responding_timeouts {
        if let Some(value) = &timeouts.read_timeout {
            transport.read_timeout = non_zero(duration(value, "respondingTimeouts.readTimeout")?);
        }
        if let Some(value) = &timeouts.write_timeout {
            transport.write_timeout = non_zero(duration(value, "respondingTimeouts.writeTimeout")?);
        }
        if let Some(value) = &timeouts.idle_timeout {
            transport.idle_timeout = non_zero(duration(value, "respondingTimeouts.idleTimeout")?);
        }
    }
    if let Some(value) = raw.life_cycle.and_then(|l| l.grace_time_out) {
        transport.grace_timeout = duration(&value, "lifeCycle.graceTimeOut")?;
    }
    if let Some(value) = raw.max_connections {
        let reason = format!("must be a whole number from 1 to {MAX_CONNECTIONS}, not {value}");
        transport.max_connections = value
            .as_u64()
            .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| origin.error(&field("maxConnections"), reason))?;
    }
    Ok(transport)
}

/// A duration as Traefik reads one: a number of seconds (`10`, `"10"`,
/// `1.5`) or a Go duration (`"1m30s"`, `"500ms"`, `"2h"`; units `ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h`).
///
/// # Errors
///
/// The reason, quoting the value (durations hold no secret).
pub(crate) fn parse_duration(value: &Value) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {value}: expected a number of seconds or a duration such as \
             \"500ms\", \"10s\", \"1m30s\" (units ns, us, ms, s, m, h)"
        )
    };
    let seconds = match value {
        Value::Number(n) => n.as_f64().ok_or_else(invalid)?,
        Value::String(text) => match text.trim().parse::<f64>() {
            Ok(seconds) if !text.trim().is_empty() => seconds,
            _ => go_duration(text.trim()).ok_or_else(invalid)?,
        },
        _ => return Err(invalid()),
    };
    if !seconds.is_finite() {
        return Err(invalid());
    }
    if seconds < 0.0 {
        return Err(format!("invalid duration {value}: must not be negative"));
    }
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "invalid duration {value}: at most {}h (0 turns the timeout off)",
            MAX_DURATION.as_secs() / 3600
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A Go duration (`time.ParseDuration`) in seconds; `None` if malformed.
fn go_duration(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_traefik_writes_them() {
        for (value, expected) in [
            (json!("1s"), Duration::from_secs(1)),
            (json!("500ms"), Duration::from_millis(500)),
            (json!("1m"), Duration::from_secs(60)),
            (json!("1m30s"), Duration::from_secs(90)),
            (json!("1.5h"), Duration::from_secs(5400)),
            (json!("250us"), Duration::from_micros(250)),
            (json!("0"), Duration::ZERO),
            (json!("0s"), Duration::ZERO),
            (json!("42"), Duration::from_secs(42)),
            (json!(42), Duration::from_secs(42)),
            (json!(0.25), Duration::from_millis(250)),
        ] {
            assert_eq!(parse_duration(&value), Ok(expected), "{value}");
        }
        for value in [
            json!("1x"),
            json!("s"),
            json!(""),
            json!("1 s"),
            json!(true),
            json!("ten"),
        ] {
            let error = parse_duration(&value).unwrap_err();
            assert!(error.contains("invalid duration"), "{value}: {error}");
        }
        assert!(
            parse_duration(&json!("-1s"))
                .unwrap_err()
                .contains("must not be negative")
        );
        assert!(parse_duration(&json!(-3)).unwrap_err().contains("negative"));
        assert!(
            parse_duration(&json!("100000h"))
                .unwrap_err()
                .contains("at most 720h")
        );
    }
}
