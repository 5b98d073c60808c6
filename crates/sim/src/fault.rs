//! Seeded fault injection and rate limiting.
//!
//! One RNG behind a mutex decides every fault, drawing the same three numbers for every select in
//! the same order, so a sequential run with the same seed meets the same faults at the same requests
//! and a failing test can be replayed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to do to one select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer normally.
    None,
    /// HTTP 500 with a JSON-RPC error.
    Fail,
    /// Never answer (until the client gives up or the server stops).
    Timeout,
    /// Cut the connection in the middle of the response body.
    Reset,
}

pub(crate) struct Injector {
    rng: Mutex<StdRng>,
    fail: f64,
    timeout: f64,
    reset: f64,
}

impl Injector {
    pub(crate) fn new(seed: u64, fail: f64, timeout: f64, reset: f64) -> Injector {
        // A different stream from the data generator's, so the two never correlate.
        Injector {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x0fa1_7fa1_7fa1_7fa1)),
            fail,
            timeout,
            reset,
        }
    }

    pub(crate) fn draw(&self) -> Fault {
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Always three draws, whatever the outcome, so one request's fault never shifts the next's.
        let (f, t, r): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        if f < self.fail {
            Fault::Fail
        } else if t < self.timeout {
            Fault::Timeout
        } else if r < self.reset {
            Fault::Reset
        } else {
            Fault::None
        }
    }
}

/// A token bucket holding at most one second's worth of requests.
pub(crate) struct RateLimiter {
    state: Mutex<(f64, Instant)>,
    per_second: f64,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> RateLimiter {
        let per_second = f64::from(per_second);
        RateLimiter { state: Mutex::new((per_second, Instant::now())), per_second }
    }

    /// Takes a token if there is one.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.per_second);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long an injected timeout hangs: longer than any sane client timeout.
pub(crate) const HANG: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let a = Injector::new(7, 0.3, 0.3, 0.3);
        let b = Injector::new(7, 0.3, 0.3, 0.3);
        let xs: Vec<_> = (0..100).map(|_| a.draw()).collect();
        let ys: Vec<_> = (0..100).map(|_| b.draw()).collect();
        assert_eq!(xs, ys);
        assert!(
            xs.contains(&Fault::Fail) && xs.contains(&Fault::Timeout) && xs.contains(&Fault::None)
        );
    }

    #[test]
    fn bucket_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(3);
        assert!((0..3).all(|_| limiter.try_acquire()));
        assert!(!limiter.try_acquire());
    }
}
