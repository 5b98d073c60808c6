//! The retry policy: how many times, how long between tries, and what the server's `Retry-After`
//! means.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a request is retried after a transient failure (see [`crate::Error::is_retryable`]).
///
/// Retry `n` (counting from 0) waits `base_delay × backoff^n`, at most `max_delay`; with `jitter`
/// the wait is drawn uniformly from its upper half, so that clients failing together do not come
/// back together. A `Retry-After` from the server replaces the computed wait (still capped by
/// `max_delay`). The budget belongs to one call: every [`crate::Client`] call starts with a full one.
///
/// ```
/// # use std::time::Duration;
/// # use iptvportal_client::RetryPolicy;
/// let policy = RetryPolicy::default().max_retries(5).backoff(2.0).jitter(false);
/// assert_eq!(policy.delay(3), Duration::from_secs(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: try once). Default 3.
    pub max_retries: u32,
    /// The growth factor between retries. Default 1.5.
    pub backoff: f64,
    /// The wait before the first retry. Default 1 s.
    pub base_delay: Duration,
    /// The longest wait, for computed delays and `Retry-After` alike. Default 30 s.
    pub max_delay: Duration,
    /// Whether waits are randomized. Default on.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: RetryPolicy::DEFAULT_MAX_RETRIES,
            backoff: RetryPolicy::DEFAULT_BACKOFF,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Retries after the first attempt unless set (the seed's 3).
    pub const DEFAULT_MAX_RETRIES: u32 = 3;
    /// The growth factor unless set (the seed's 1.5).
    pub const DEFAULT_BACKOFF: f64 = 1.5;

    /// A policy that never retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy::default().max_retries(0)
    }

    /// Sets the number of retries after the first attempt.
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> RetryPolicy {
        self.max_retries = n;
        self
    }

    /// Sets the growth factor. Values below 1 are treated as 1 (constant delay).
    #[must_use]
    pub fn backoff(mut self, factor: f64) -> RetryPolicy {
        self.backoff = if factor.is_finite() { factor.max(1.0) } else { 1.0 };
        self
    }

    /// Sets the wait before the first retry.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> RetryPolicy {
        self.base_delay = delay;
        self
    }

    /// Sets the longest wait.
    #[must_use]
    pub fn max_delay(mut self, cap: Duration) -> RetryPolicy {
        self.max_delay = cap;
        self
    }

    /// Turns jitter on or off.
    #[must_use]
    pub fn jitter(mut self, on: bool) -> RetryPolicy {
        self.jitter = on;
        self
    }

    /// The nominal wait before retry `n` (from 0), without jitter: `base_delay × backoff^n`, capped.
    pub fn delay(&self, n: u32) -> Duration {
        let exponent = i32::try_from(n).unwrap_or(i32::MAX);
        let secs = self.base_delay.as_secs_f64() * self.backoff.max(1.0).powi(exponent);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX).min(self.max_delay)
    }

    /// The waits of every retry the policy allows, in order, jittered if the policy says so.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        let policy = *self;
        // One random seed per sequence; std's hasher keys are randomly seeded per `RandomState`,
        // which is all the randomness jitter needs (no `rand` dependency for it).
        let seed = RandomState::new();
        (0..policy.max_retries).map(move |n| {
            let nominal = policy.delay(n);
            if policy.jitter {
                let unit = (seed.hash_one(n) >> 11) as f64 / (1u64 << 53) as f64;
                nominal.mul_f64(0.5 + unit / 2.0)
            } else {
                nominal
            }
        })
    }

    /// The wait to use before the next retry, given the computed one and the server's `Retry-After`.
    pub(crate) fn adjust(&self, computed: Duration, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or(computed, |ra| ra.min(self.max_delay))
    }
}

/// Parses a `Retry-After` header: delta-seconds (`1`, `120`) or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, turned into the time left from `now`, zero if past).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses the IMF-fixdate form of an HTTP date, the only one RFC 9110 lets servers send.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let mut hms = time.split(':').map(str::parse::<u64>);
    let (Some(Ok(h)), Some(Ok(m)), Some(Ok(sec)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    // An HTTP-date's year has four digits: a larger one (from a broken or hostile server) would
    // overflow the day count or the time arithmetic below.
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // From 1970 on, the day count is never negative.
    let days = u64::try_from(iptvportal_catalog::time::days_from_civil(
        i64::try_from(year).ok()?,
        i64::try_from(month).ok()?,
        i64::try_from(day).ok()?,
    ))
    .ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_backoff_factor_up_to_the_cap() {
        let p = RetryPolicy::default().jitter(false).max_retries(10);
        let secs: Vec<f64> = p.delays().map(|d| d.as_secs_f64()).collect();
        assert_eq!(&secs[..4], &[1.0, 1.5, 2.25, 3.375]);
        assert_eq!(secs.len(), 10);
        assert_eq!(p.delay(9), Duration::from_secs(30), "1.5^9 = 38.4 s is capped");
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(RetryPolicy::none().delays().count(), 0);
    }

    #[test]
    fn jitter_stays_within_the_upper_half_of_the_nominal_delay() {
        let p = RetryPolicy::default().max_retries(8);
        for (n, d) in (0..).zip(p.delays()) {
            let nominal = p.delay(n);
            assert!(d >= nominal / 2 && d <= nominal, "retry {n}: {d:?} vs {nominal:?}");
        }
    }

    #[test]
    fn retry_after_replaces_the_delay_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.adjust(Duration::from_secs(3), None), Duration::from_secs(3));
        assert_eq!(
            p.adjust(Duration::from_secs(3), Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.adjust(Duration::from_secs(3), Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(1_767_225_600))
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            // Years no HTTP-date has, which would overflow the arithmetic: refused, no panic.
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 18446744073709551615 08:49:37 GMT",
            "Sun, 06 Nov 10000 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_below_one_is_constant() {
        let p = RetryPolicy::default().backoff(0.5).jitter(false);
        assert_eq!(p.delay(5), Duration::from_secs(1));
        assert_eq!(
            RetryPolicy::default().backoff(f64::NAN).jitter(false).delay(3),
            Duration::from_secs(1)
        );
    }
}
