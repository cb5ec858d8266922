//! The cool-down of a failing token endpoint (SPEC §2.8): a circuit
//! breaker per middleware.
//!
//! After [`FAILURES_TO_OPEN`] token requests in a row failed as the
//! endpoint's fault ([`FetchError::is_endpoint_failure`]: no answer, a
//! timeout, 429 or a 5xx, after retries), the breaker opens: for a
//! cool-down of the longer of [`MIN_COOL_DOWN`] and the last `Retry-After`
//! of a 429/503 in the streak, at most [`MAX_COOL_DOWN`], every token
//! request is refused at once with
//! [`FetchError::CoolingDown`](crate::token::FetchError::CoolingDown)
//! (503 with `Retry-After`): no request is sent, no retry is waited for.
//! Cached tokens are still served (a cache hit never reaches the breaker),
//! and a background refresh simply fails, keeping the current token.
//!
//! When the cool-down ends, ONE token request goes through as a probe
//! (others are refused with a `Retry-After` of [`PROBE_RETRY_AFTER`]
//! while it runs): an answer closes the breaker, a failure opens it for a
//! fresh cool-down. A probe that ends without telling (throttled before it
//! was sent, or its task cancelled) lets the next request probe instead.
//!
//! Any answer of the endpoint — a token, a rejection (4xx other than
//! 429), a malformed body — shows it is up: it ends a streak of failures.
//!
//! # Concurrency
//!
//! One small mutex per middleware, taken only on the way to a token
//! request (never on a cache hit), held for a few comparisons and never
//! across an await. Requests that were already in flight when the breaker
//! opened finish as they will; their failures do not extend the cool-down,
//! and a success among them closes the breaker.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::token::FetchError;

/// Consecutive failed token requests that open the breaker.
pub(crate) const FAILURES_TO_OPEN: u32 = 5;

/// Shortest cool-down.
pub(crate) const MIN_COOL_DOWN: Duration = Duration::from_secs(5);

/// Longest cool-down, whatever `Retry-After` the endpoint sent.
pub(crate) const MAX_COOL_DOWN: Duration = Duration::from_secs(60);

/// The `Retry-After` of a refusal while the probe is in flight.
pub(crate) const PROBE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The breaker of one middleware's token endpoint.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Failures in a row while closed.
    failures: u32,
    /// The last `Retry-After` of a 429/503 in the current streak.
    retry_after: Option<Duration>,
    /// Set while open: the end of the cool-down.
    open_until: Option<Instant>,
    /// After the cool-down: whether the probe is in flight.
    probing: bool,
}

/// Leave to send one token request; report how it ended with
/// [`Ticket::finish`]. Dropped unfinished, it tells nothing (a probe's
/// slot goes to the next request).
#[must_use]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    finished: bool,
}

impl Breaker {
    /// Leave to send a token request at `now`.
    ///
    /// # Errors
    ///
    /// During a cool-down (or while the probe runs), how long the caller
    /// should wait.
    pub(crate) fn admit(&self, now: Instant) -> Result<Ticket<'_>, Duration> {
        let mut state = self.lock();
        let probe = match state.open_until {
            None => false,
            Some(until) if now < until => return Err(until - now),
            Some(_) if state.probing => return Err(PROBE_RETRY_AFTER),
            Some(_) => {
                state.probing = true;
                true
            }
        };
        Ok(Ticket {
            breaker: self,
            probe,
            finished: false,
        })
    }

    /// Whether a cool-down or a probe is under way at `now` (for tests
    /// and logs).
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.lock().open_until.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn open(&mut self, now: Instant) -> Duration {
        let cool_down = self
            .retry_after
            .unwrap_or_default()
            .clamp(MIN_COOL_DOWN, MAX_COOL_DOWN);
        self.open_until = Some(now + cool_down);
        self.probing = false;
        self.failures = 0;
        cool_down
    }

    fn close(&mut self) {
        *self = Self::default();
    }
}

impl Ticket<'_> {
    /// Reports how the token request ended at `now`: `None` for an answer
    /// (a token, or an error that is not the endpoint's failure),
    /// `Some(error)` otherwise.
    pub(crate) fn finish(mut self, error: Option<&FetchError>, now: Instant) {
        self.finished = true;
        let mut state = self.breaker.lock();
        let Some(error) = error.filter(|e| e.is_endpoint_failure()) else {
            if state.open_until.is_some() {
                tracing::info!("the token endpoint answers again; token requests resume");
            }
            state.close();
            return;
        };
        if let FetchError::Unavailable {
            retry_after: Some(retry_after),
            ..
        } = error
        {
            state.retry_after = Some(*retry_after);
        }
        if self.probe {
            let cool_down = state.open(now);
            tracing::warn!(
                cool_down_ms = u64::try_from(cool_down.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "the probe token request failed; token requests stay paused"
            );
            return;
        }
        if state.open_until.is_some() {
            return; // sent before the breaker opened: the cool-down stands
        }
        state.failures += 1;
        if state.failures >= FAILURES_TO_OPEN {
            let cool_down = state.open(now);
            tracing::warn!(
                failures = FAILURES_TO_OPEN,
                cool_down_ms = u64::try_from(cool_down.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "the token endpoint failed repeatedly; token requests are paused"
            );
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            self.breaker.lock().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> FetchError {
        FetchError::Unreachable {
            detail: "connect error".into(),
        }
    }

    fn busy(seconds: u64) -> FetchError {
        FetchError::Unavailable {
            status: 503,
            retry_after: Some(Duration::from_secs(seconds)),
        }
    }

    fn fail(breaker: &Breaker, error: &FetchError, now: Instant) {
        breaker
            .admit(now)
            .expect("admitted")
            .finish(Some(error), now);
    }

    #[test]
    fn five_failures_in_a_row_open_it_for_the_minimum_cool_down() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            fail(&breaker, &down(), t0);
        }
        assert!(!breaker.is_open());
        fail(&breaker, &FetchError::Timeout, t0);
        assert!(breaker.is_open());
        let wait = breaker.admit(t0 + Duration::from_secs(1)).err();
        assert_eq!(wait, Some(Duration::from_secs(4)));
    }

    #[test]
    fn answers_end_a_streak() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        let rejected = FetchError::Rejected {
            status: 401,
            oauth_error: None,
        };
        for _ in 0..3 {
            for _ in 0..FAILURES_TO_OPEN - 1 {
                fail(&breaker, &down(), t0);
            }
            breaker.admit(t0).unwrap().finish(Some(&rejected), t0);
        }
        breaker.admit(t0).unwrap().finish(None, t0);
        assert!(!breaker.is_open(), "never five failures in a row");
    }

    #[test]
    fn retry_after_lengthens_the_cool_down_within_bounds() {
        for (seconds, expected) in [(0, 5), (7, 7), (3600, 60)] {
            let breaker = Breaker::default();
            let t0 = Instant::now();
            fail(&breaker, &busy(seconds), t0);
            for _ in 1..FAILURES_TO_OPEN {
                fail(&breaker, &down(), t0);
            }
            assert_eq!(
                breaker.admit(t0).err(),
                Some(Duration::from_secs(expected)),
                "Retry-After {seconds}"
            );
        }
    }

    #[test]
    fn one_probe_after_the_cool_down_closes_or_reopens_it() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN {
            fail(&breaker, &down(), t0);
        }
        let after = t0 + MIN_COOL_DOWN;
        let probe = breaker.admit(after).expect("the probe");
        assert_eq!(
            breaker.admit(after).err(),
            Some(PROBE_RETRY_AFTER),
            "one probe"
        );
        probe.finish(Some(&down()), after);
        assert_eq!(
            breaker.admit(after).err(),
            Some(MIN_COOL_DOWN),
            "a failed probe reopens it for a fresh cool-down"
        );
        let later = after + MIN_COOL_DOWN;
        breaker.admit(later).expect("probe").finish(None, later);
        assert!(!breaker.is_open());
        assert!(breaker.admit(later).is_ok());
        assert!(breaker.admit(later).is_ok(), "closed: no limit");
    }

    #[test]
    fn an_unfinished_probe_lets_the_next_request_probe() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN {
            fail(&breaker, &down(), t0);
        }
        let after = t0 + MIN_COOL_DOWN;
        drop(breaker.admit(after).expect("probe"));
        assert!(breaker.admit(after).is_ok(), "the slot was freed");
    }

    #[test]
    fn late_failures_do_not_extend_a_cool_down() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        let early: Vec<_> = (0..3).map(|_| breaker.admit(t0).unwrap()).collect();
        for _ in 0..FAILURES_TO_OPEN {
            fail(&breaker, &down(), t0);
        }
        let later = t0 + Duration::from_secs(4);
        for ticket in early {
            ticket.finish(Some(&down()), later);
        }
        assert_eq!(breaker.admit(later).err(), Some(Duration::from_secs(1)));
    }
}
