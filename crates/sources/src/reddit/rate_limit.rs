//! One request budget per OAuth client, shared by every concurrent search of the process.
//!
//! Reddit allows 100 requests a minute per client and reports the live budget in
//! `X-Ratelimit-Remaining` / `X-Ratelimit-Reset` (seconds until the window resets).
//! Until the first answer tells us, we assume a fresh window of 100. When the budget is
//! spent, requests fail at once with the time to wait instead of being sent (and banned).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

pub const REQUESTS_PER_WINDOW: u32 = 100;
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<Window>,
    per_window: u32,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u32,
    resets_at: Instant,
}

/// The budget is spent; this long until it resets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhausted(pub Duration);

impl Default for RateBudget {
    fn default() -> Self {
        Self::new(REQUESTS_PER_WINDOW)
    }
}

impl RateBudget {
    /// `per_window` calls a minute until Reddit's headers say otherwise.
    pub fn new(per_window: u32) -> Self {
        RateBudget {
            state: Mutex::new(Window {
                remaining: per_window,
                resets_at: Instant::now() + WINDOW,
            }),
            per_window,
        }
    }

    /// Takes one request from the budget, or says how long to wait.
    pub fn acquire(&self) -> Result<(), Exhausted> {
        self.acquire_at(Instant::now())
    }

    fn acquire_at(&self, now: Instant) -> Result<(), Exhausted> {
        let mut window = self.lock();
        if now >= window.resets_at {
            *window = Window {
                remaining: self.per_window,
                resets_at: now + WINDOW,
            };
        }
        if window.remaining == 0 {
            return Err(Exhausted(window.resets_at - now));
        }
        window.remaining -= 1;
        Ok(())
    }

    /// Adopts the budget Reddit reports in a response's headers, when it reports one,
    /// and returns it (calls left, time to the reset).
    pub fn observe(&self, headers: &HeaderMap) -> Option<(u32, Duration)> {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let (Some(remaining), Some(reset)) =
            (number("x-ratelimit-remaining"), number("x-ratelimit-reset"))
        else {
            return None;
        };
        let remaining = remaining.floor().min(f64::from(u32::MAX)) as u32;
        let reset = Duration::from_secs_f64(reset.min(3600.0));
        let mut window = self.lock();
        window.remaining = remaining;
        window.resets_at = Instant::now() + reset;
        metrics::gauge!("moodwire_reddit_ratelimit_remaining").set(window.remaining);
        Some((remaining, reset))
    }

    /// Reddit answered 429: nothing more until `wait` has passed.
    pub fn exhaust_for(&self, wait: Duration) {
        let mut window = self.lock();
        window.remaining = 0;
        window.resets_at = window.resets_at.max(Instant::now() + wait);
        metrics::gauge!("moodwire_reddit_ratelimit_remaining").set(0.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // The guarded data is two plain numbers, valid even if a holder panicked.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn a_fresh_budget_allows_a_window_of_requests_then_says_how_long_to_wait() {
        let budget = RateBudget::default();
        let now = Instant::now();
        for _ in 0..REQUESTS_PER_WINDOW {
            budget.acquire_at(now).unwrap();
        }
        let Exhausted(wait) = budget.acquire_at(now).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= WINDOW, "{wait:?}");
        budget.acquire_at(now + WINDOW).unwrap();
    }

    #[test]
    fn reddits_headers_replace_the_local_estimate() {
        let budget = RateBudget::default();
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("1.0"));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("42"));
        headers.insert("x-ratelimit-used", HeaderValue::from_static("99"));
        budget.observe(&headers);
        budget.acquire().unwrap();
        let Exhausted(wait) = budget.acquire().unwrap_err();
        assert!(wait > Duration::from_secs(40) && wait <= Duration::from_secs(42));
    }

    #[test]
    fn garbage_headers_are_ignored() {
        let budget = RateBudget::default();
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("-3"));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("soon"));
        budget.observe(&headers);
        budget.acquire().unwrap();
    }

    #[test]
    fn a_429_closes_the_budget_for_the_wait() {
        let budget = RateBudget::default();
        budget.exhaust_for(Duration::from_secs(30));
        let Exhausted(wait) = budget.acquire().unwrap_err();
        assert!(wait > Duration::from_secs(29));
    }
}
