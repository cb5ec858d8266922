//! When to try a token request again: exponential backoff with full
//! jitter, and the server's `Retry-After`.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Backoff before the first retry, doubled for each further one.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// Longest backoff before one retry, and longest `Retry-After` honoured.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The pause before retry number `retry` (0 for the first retry).
///
/// Full jitter: a uniformly random duration between zero and
/// `min(BACKOFF_CAP, BACKOFF_BASE * 2^retry)`, so that many gateways that
/// failed together do not retry together. When the answer carried a
/// `Retry-After` in seconds, that is used instead, capped at
/// [`BACKOFF_CAP`].
pub(super) fn delay(retry: u32, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(wait) => wait.min(BACKOFF_CAP),
        None => {
            let ceiling = ceiling(retry);
            let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(fastrand::u64(0..=nanos))
        }
    }
}

/// `min(BACKOFF_CAP, BACKOFF_BASE * 2^retry)`.
fn ceiling(retry: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1_u32 << retry.min(16))
        .min(BACKOFF_CAP)
}

/// The `Retry-After` header as delta-seconds (RFC 9110 §10.2.3). The
/// HTTP-date form and anything unparsable are ignored.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits for a u64 is "a very long time".
    let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let ceilings: Vec<u128> = (0..8).map(|r| ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(ceiling(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn jittered_delays_stay_within_bounds() {
        for retry in [0, 1, 2, 5, 40, u32::MAX] {
            for _ in 0..200 {
                let pause = delay(retry, None);
                assert!(pause <= ceiling(retry), "{pause:?} for retry {retry}");
            }
        }
        // Full jitter spreads: 200 draws are not all in the top half.
        assert!((0..200).any(|_| delay(3, None) < ceiling(3) / 2));
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        assert_eq!(delay(0, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(delay(0, Some(Duration::from_secs(3600))), BACKOFF_CAP);
    }

    #[test]
    fn retry_after_parses_delta_seconds_only() {
        let parse = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
            retry_after(&headers)
        };
        assert_eq!(parse("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("1.5"), None);
        assert_eq!(parse(""), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
