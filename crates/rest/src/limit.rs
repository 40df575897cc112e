//! A request budget per vendor account: GCRA (governor) at the account's rate, which 429s and the
//! vendor's rate-limit headers can hold back.
//!
//! Why burst 1: HubSpot counts a rolling 10-second window *and* a per-second policy. A GCRA with a
//! burst of B lets B + rate × window through in one window, so any burst above one cell risks a
//! 429 at the window's edge. Pacing at one cell per `interval / max`, plus a 2 % margin, never
//! exceeds either policy and still uses 98 % of the quota. The margin is for what happens between
//! taking a turn and the request's arrival (a busy runtime, a new connection, the network): it
//! absorbs 20 ms of such delay per second. With 1 % a request delayed by more than 10 ms let the
//! next one arrive within the same second as ten others, and a loaded machine saw SECONDLY 429s.
//! A short window needs more than a share: 2 % of HubSpot's one-second search window is 20 ms,
//! which a busy CI machine exceeded (a search delayed by 25 ms let the fifth of a second's four
//! in). So every window also keeps at least [`MIN_SLACK`] free.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use wa2crm_core::StateStore;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

type Limiter = RateLimiter<
    NotKeyed,
    InMemoryState,
    DefaultClock,
    NoOpMiddleware<<DefaultClock as Clock>::Instant>,
>;

/// `max` requests per `interval`, as a GCRA quota paced one cell at a time.
pub fn quota(max: u32, interval: Duration) -> Quota {
    let max = max.max(1);
    let period = paced(interval) / max;
    Quota::with_period(period.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN)
}

/// How much slower than the vendor's rate requests are paced (see the module's comment).
const MARGIN: f64 = 1.02;
/// The least time per window left for delays between a turn and the request's arrival.
const MIN_SLACK: Duration = Duration::from_millis(100);

/// The time `max` requests of one window are spread over: the window and its slack.
fn paced(interval: Duration) -> Duration {
    interval.mul_f64(MARGIN).max(interval + MIN_SLACK)
}

/// What a vendor's answer said about the window it counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowHeaders {
    pub max: Option<u32>,
    pub interval: Option<Duration>,
    pub remaining: Option<u32>,
}

pub struct RequestBudget {
    clock: DefaultClock,
    limiter: RwLock<Arc<Limiter>>,
    /// The rate in force, (max, interval): the configured one, or a lower one the vendor announced.
    rate: Mutex<(u32, Duration)>,
    configured: (u32, Duration),
    /// Nobody sends before this (a 429, or the vendor saying the window is used up).
    hold_until: Mutex<Option<Instant>>,
    /// The state store and scope whose turns every instance takes.
    shared: Option<(Arc<dyn StateStore>, String)>,
    /// Whether the shared pace failed last time (logged once per outage).
    shared_down: AtomicBool,
    /// Callers inside [`RequestBudget::acquire`] right now.
    waiting: Arc<AtomicUsize>,
}

/// Counts a caller out of `acquire` however it leaves (a cancelled future included).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The state key of the shared pace.
pub const TURN_KEY: &str = "request_turn";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain data replaced whole; a panic elsewhere cannot tear them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RequestBudget {
    pub fn new(max: u32, interval: Duration) -> Self {
        let clock = DefaultClock::default();
        let limiter = Arc::new(RateLimiter::direct_with_clock(
            quota(max, interval),
            clock.clone(),
        ));
        RequestBudget {
            clock,
            limiter: RwLock::new(limiter),
            rate: Mutex::new((max, interval)),
            configured: (max, interval),
            hold_until: Mutex::new(None),
            shared: None,
            shared_down: AtomicBool::new(false),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Paces every process that uses `state` with this `scope` as one.
    pub fn shared(mut self, state: Arc<dyn StateStore>, scope: &str) -> Self {
        self.shared = Some((state, scope.to_owned()));
        self
    }

    /// The time between two requests at the rate in force.
    fn spacing(&self) -> Duration {
        let (max, interval) = self.rate();
        paced(interval) / max.max(1)
    }

    /// Whether requests are waiting for their turn (or held back): the account is rate-bound.
    pub fn saturated(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0 || self.held_until().is_some()
    }

    /// Waits until one request may go.
    pub async fn acquire(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Waiting(self.waiting.clone());
        loop {
            let hold = *lock(&self.hold_until);
            if let Some(until) = hold
                && until > Instant::now()
            {
                tokio::time::sleep_until(until).await;
                continue;
            }
            if let Some((state, scope)) = &self.shared {
                match state.take_turn(scope, TURN_KEY, self.spacing()).await {
                    Ok(wait) => {
                        if self.shared_down.swap(false, Ordering::Relaxed) {
                            tracing::info!(connector = %scope, "The shared request pace is back.");
                        }
                        tokio::time::sleep(wait).await;
                        return;
                    }
                    Err(e) => {
                        if !self.shared_down.swap(true, Ordering::Relaxed) {
                            tracing::warn!(connector = %scope, error = %e,
                                "The shared request pace is unreachable; pacing this process alone.");
                        }
                    }
                }
            }
            let limiter = self
                .limiter
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await
                }
            }
        }
    }

    /// Holds every request back for `wait` (or longer, if a hold is already in force).
    pub fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        {
            let mut h = lock(&self.hold_until);
            if h.is_none_or(|t| t < until) {
                *h = Some(until);
            }
        }
        if let Some((state, scope)) = self.shared.clone() {
            // The other instances must wait too; a failure here only costs them a 429 of their own.
            let until_ms = wa2crm_core::state::now_ms() + wait.as_millis() as i64;
            tokio::spawn(async move {
                let _ = state.hold_turns(&scope, TURN_KEY, until_ms).await;
            });
        }
    }

    /// Until when requests are held back, if they are.
    pub fn held_until(&self) -> Option<Instant> {
        (*lock(&self.hold_until)).filter(|t| *t > Instant::now())
    }

    /// The rate in force: (max, interval).
    pub fn rate(&self) -> (u32, Duration) {
        *lock(&self.rate)
    }

    /// Corrects the budget by what the vendor's headers say: a lower limit than configured is
    /// adopted (never a higher one: the admin may be leaving room for other integrations), and
    /// a window reported used up (by other instances or integrations) holds requests back for a
    /// tenth of it, re-checked on the next answer.
    pub fn observe(&self, h: WindowHeaders) {
        if let (Some(max), Some(interval)) = (h.max, h.interval)
            && max > 0
            && !interval.is_zero()
        {
            let (cmax, cinterval) = self.configured;
            // Compare rates, not numbers: 190 per 10 s vs 100 per 10 s.
            let announced = f64::from(max) / interval.as_secs_f64();
            let configured = f64::from(cmax) / cinterval.as_secs_f64();
            let wanted = if announced < configured {
                (max, interval)
            } else {
                self.configured
            };
            let mut rate = lock(&self.rate);
            if *rate != wanted {
                tracing::info!(
                    max = wanted.0,
                    interval_ms = wanted.1.as_millis() as u64,
                    "Request budget follows the vendor's announced limit."
                );
                *rate = wanted;
                let limiter =
                    RateLimiter::direct_with_clock(quota(wanted.0, wanted.1), self.clock.clone());
                *self.limiter.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(limiter);
            }
        }
        if h.remaining == Some(0) {
            let (_, interval) = self.rate();
            self.hold(interval / 10);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    /// A one-second window of four (HubSpot's search) keeps 100 ms free, so a request arriving
    /// 99 ms late still never makes a fifth within any second; a ten-second window keeps its 2 %.
    #[test]
    fn short_windows_keep_room_for_late_requests() {
        let search = paced(Duration::from_secs(1)) / 4;
        assert_eq!(search, Duration::from_millis(275));
        // Four on time after one 99 ms late: the fifth is still more than a second after it.
        let late_first = Duration::from_millis(99);
        assert!(search * 4 > Duration::from_secs(1) + late_first);
        assert_eq!(
            paced(Duration::from_secs(10)) / 100,
            Duration::from_millis(102),
            "long windows keep their 2 % margin"
        );
    }

    /// Replays a client that sends whenever the limiter allows, on a fake clock, and checks the
    /// vendor's rolling window and per-second policies are never exceeded.
    #[test]
    fn paced_quota_never_exceeds_the_rolling_window_and_uses_nearly_all_of_it() {
        let clock = FakeRelativeClock::default();
        let limiter =
            RateLimiter::direct_with_clock(quota(100, Duration::from_secs(10)), clock.clone());
        let mut sent_ms: Vec<u64> = Vec::new();
        for ms in 0..60_000u64 {
            while limiter.check().is_ok() {
                sent_ms.push(ms);
            }
            clock.advance(Duration::from_millis(1));
        }
        for (i, &t) in sent_ms.iter().enumerate() {
            let in_window = sent_ms[i..].iter().take_while(|&&u| u < t + 10_000).count();
            assert!(
                in_window <= 100,
                "{in_window} requests in the 10 s from {t} ms"
            );
            let in_second = sent_ms[i..].iter().take_while(|&&u| u < t + 1_000).count();
            assert!(
                in_second <= 10,
                "{in_second} requests in the second from {t} ms"
            );
        }
        // 60 s at 10/s is 600; the 2 % margin costs about 12.
        assert!(sent_ms.len() >= 585, "only {} sent in 60 s", sent_ms.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_everyone_and_a_lower_announced_limit_is_adopted() {
        let budget = RequestBudget::new(100, Duration::from_secs(10));
        budget.acquire().await;
        budget.hold(Duration::from_secs(10));
        let start = Instant::now();
        budget.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(10));

        budget.observe(WindowHeaders {
            max: Some(50),
            interval: Some(Duration::from_secs(10)),
            remaining: Some(20),
        });
        assert_eq!(budget.rate(), (50, Duration::from_secs(10)));
        // A higher limit than configured is not taken: the admin chose the lower one.
        budget.observe(WindowHeaders {
            max: Some(190),
            interval: Some(Duration::from_secs(10)),
            remaining: Some(20),
        });
        assert_eq!(budget.rate(), (100, Duration::from_secs(10)));
        assert_eq!(budget.held_until(), None);
        budget.observe(WindowHeaders {
            remaining: Some(0),
            ..WindowHeaders::default()
        });
        assert!(budget.held_until().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_sharing_a_store_pace_as_one() {
        let state: Arc<dyn StateStore> = Arc::new(wa2crm_core::MemoryStateStore::default());
        // Two instances of the same connector.
        let a =
            Arc::new(RequestBudget::new(100, Duration::from_secs(10)).shared(state.clone(), "hs"));
        let b =
            Arc::new(RequestBudget::new(100, Duration::from_secs(10)).shared(state.clone(), "hs"));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let budget = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    budget.acquire().await;
                    Instant::now() - start
                })
            })
            .collect();
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(100),
                "two requests {:?} apart: {at:?}",
                pair[1] - pair[0]
            );
        }
        // A 429 seen by one instance holds the other.
        a.hold(Duration::from_secs(3));
        tokio::task::yield_now().await;
        let before = Instant::now();
        b.acquire().await;
        assert!(
            Instant::now() - before >= Duration::from_secs(2),
            "{:?}",
            Instant::now() - before
        );
    }
}
