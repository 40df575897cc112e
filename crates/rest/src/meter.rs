//! What a connector's calls add up to, for the console: calls sent in the last window of the
//! request budget, and the vendor's quota as its last answer told it. Each process counts its
//! own calls.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window counted when a connector has no request budget.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Sends remembered at most: beyond, the oldest are forgotten (the count says "at least").
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct Meter {
    sent: Mutex<VecDeque<Instant>>,
    quota: Mutex<Option<(u64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data replaced whole or pushed to; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Meter {
    /// One call went to the vendor.
    pub fn sent(&self, window: Option<Duration>) {
        let now = Instant::now();
        let mut sent = lock(&self.sent);
        sent.push_back(now);
        let window = window.unwrap_or(DEFAULT_WINDOW);
        while sent.len() > MAX_REMEMBERED
            || sent
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
        {
            sent.pop_front();
        }
    }

    /// The vendor's answer told its quota, (left, of).
    pub fn quota(&self, quota: (u64, u64)) {
        *lock(&self.quota) = Some(quota);
    }

    /// The figures, for a budget of `allowed` calls per `window` (or none).
    pub fn usage(&self, budget: Option<(u32, Duration)>) -> wa2crm_core::Usage {
        let window = budget.map_or(DEFAULT_WINDOW, |(_, w)| w);
        let now = Instant::now();
        let sent = lock(&self.sent)
            .iter()
            .filter(|t| now.duration_since(**t) <= window)
            .count() as u64;
        wa2crm_core::Usage {
            sent,
            allowed: budget.map(|(max, _)| max),
            window,
            quota: *lock(&self.quota),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_was_sent_and_keeps_the_last_quota() {
        let m = Meter::default();
        assert_eq!(m.usage(Some((100, Duration::from_secs(10)))).sent, 0);
        m.sent(Some(Duration::from_secs(10)));
        m.sent(Some(Duration::from_secs(10)));
        m.quota((900, 1000));
        m.quota((899, 1000));
        let u = m.usage(Some((100, Duration::from_secs(10))));
        assert_eq!(
            (u.sent, u.allowed, u.quota),
            (2, Some(100), Some((899, 1000)))
        );
        let none = Meter::default().usage(None);
        assert_eq!(
            (none.allowed, none.window, none.quota),
            (None, DEFAULT_WINDOW, None)
        );
    }
}
