//! Counters and latency histograms, per sample interval and cumulative.
//!
//! Attribution: counts about *scheduling* (`intended`, `sent`, `dropped`,
//! `late`) go to the interval in which the scheduler processed the request,
//! which is the interval it was due in (give or take the ~1 ms dispatch batch
//! and any scheduler lateness, itself counted in `late`). Counts about
//! *outcomes* (`completed`, `status`, both histograms) go to the interval in
//! which the request completed. So a slow request due in interval k may show
//! up as completed in interval k+3; over the whole run everything adds up.
//!
//! Latencies are in REAL microseconds (the caller rescales by the speed):
//! - `response_time` = completion - min(intended instant, actual dispatch).
//!   For a late request that is completion - intended (t0 + t/speed), which
//!   includes the sender's lateness, so it is free of coordinated omission.
//!   Requests dispatched early (by at most the 1 ms batch window) count from
//!   the actual dispatch, so response time is always >= service time.
//! - `service_time` = completion - actual dispatch (the moment the request's
//!   task started running, just before it is handed to the HTTP client). It
//!   still includes waiting for a pooled connection, which hyper_util's
//!   legacy client does not expose separately.
//!
//! Both histograms hold only requests that got a complete HTTP response (any
//! status). Timeouts and errors are counted in `status` only; `completed`
//! counts every finished request whatever its outcome.
//!
//! Design: one `IntervalStats` behind a `std::sync::Mutex`, locked once per
//! completion and once per scheduler batch, for a few hundred nanoseconds.
//! `take` swaps it for a fresh one and folds it into the totals, so memory is
//! two histogram pairs regardless of run length.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;

/// Histogram range: 1 µs .. 60 s at 3 significant digits.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 60_000_000;
const HIST_SIGFIG: u8 = 3;

// One outcome model for the engine and the run record.
pub use crate::recorder::StatusCounts;

/// Statistics of one sample interval (or cumulative totals).
#[derive(Debug, Clone)]
pub struct IntervalStats {
    /// Requests whose intended instant was processed (= sent + dropped).
    pub intended: u64,
    /// Requests handed to the HTTP client.
    pub sent: u64,
    /// Requests finished, whatever the outcome (= status.total()).
    pub completed: u64,
    /// Requests not sent because `max_in_flight` were outstanding.
    pub dropped: u64,
    /// Requests dispatched more than 1 ms (real) after their intended instant.
    pub late: u64,
    pub status: StatusCounts,
    /// Completion - min(intended instant, actual dispatch), real µs.
    pub response_time: Histogram<u64>,
    /// Completion - actual dispatch, real µs.
    pub service_time: Histogram<u64>,
    /// Requests outstanding when the stats were taken (a gauge, not summed).
    pub in_flight: u64,
}

fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (covered by tests), so this
    // cannot fail at run time.
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

impl Default for IntervalStats {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalStats {
    pub fn new() -> Self {
        Self {
            intended: 0,
            sent: 0,
            completed: 0,
            dropped: 0,
            late: 0,
            status: StatusCounts::default(),
            response_time: new_histogram(),
            service_time: new_histogram(),
            in_flight: 0,
        }
    }

    /// Adds `other`'s counts and histograms; `in_flight` takes `other`'s
    /// value since it is a gauge.
    pub fn merge(&mut self, other: &IntervalStats) {
        self.intended += other.intended;
        self.sent += other.sent;
        self.completed += other.completed;
        self.dropped += other.dropped;
        self.late += other.late;
        self.status.add(&other.status);
        // Same bounds on both sides, so `add` cannot go out of range; ignore
        // the impossible error rather than panic.
        let _ = self.response_time.add(&other.response_time);
        let _ = self.service_time.add(&other.service_time);
        self.in_flight = other.in_flight;
    }
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Complete response with this status code.
    Status(u16),
    Timeout,
    ConnectError,
    Other,
}

/// Scheduler-side counts, accumulated per dispatch batch and flushed once.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DispatchCounts {
    pub intended: u64,
    pub sent: u64,
    pub dropped: u64,
    pub late: u64,
}

impl DispatchCounts {
    pub fn is_empty(&self) -> bool {
        self.intended == 0
    }
}

/// Shared recorder: the current interval plus cumulative totals of all
/// intervals already taken.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    current: Mutex<IntervalStats>,
    taken: Mutex<IntervalStats>,
}

/// A panic elsewhere must not stop measurement; the data is plain counters.
fn lock(m: &Mutex<IntervalStats>) -> MutexGuard<'_, IntervalStats> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record_dispatch(&self, c: DispatchCounts) {
        let mut cur = lock(&self.current);
        cur.intended += c.intended;
        cur.sent += c.sent;
        cur.dropped += c.dropped;
        cur.late += c.late;
    }

    pub fn record_completion(&self, outcome: Outcome, response_us: u64, service_us: u64) {
        let mut cur = lock(&self.current);
        cur.completed += 1;
        let st = &mut cur.status;
        match outcome {
            Outcome::Status(code) => match code {
                200..=299 => st.s2xx += 1,
                300..=399 => st.s3xx += 1,
                400..=499 => st.s4xx += 1,
                500..=599 => st.s5xx += 1,
                _ => st.other += 1,
            },
            Outcome::Timeout => st.timeout += 1,
            Outcome::ConnectError => st.connect_error += 1,
            Outcome::Other => st.other += 1,
        }
        if matches!(outcome, Outcome::Status(_)) {
            // Saturating: anything beyond 60 s lands in the top bucket.
            cur.response_time.saturating_record(response_us);
            cur.service_time.saturating_record(service_us);
        }
    }

    /// Swaps out the current interval and folds it into the totals.
    pub fn take(&self, in_flight: u64) -> IntervalStats {
        // Allocate outside the locks to keep critical sections short.
        let fresh = IntervalStats::new();
        // Lock order everywhere: taken, then current. Holding `taken` across
        // the swap keeps `totals()` from seeing an interval in neither place.
        let mut taken = lock(&self.taken);
        let mut out = std::mem::replace(&mut *lock(&self.current), fresh);
        out.in_flight = in_flight;
        taken.merge(&out);
        out
    }

    /// Cumulative totals including the not-yet-taken current interval.
    pub fn totals(&self, in_flight: u64) -> IntervalStats {
        let taken = lock(&self.taken);
        let mut all = taken.clone();
        all.merge(&lock(&self.current));
        all.in_flight = in_flight;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bounds_are_valid() {
        let mut h = new_histogram();
        h.saturating_record(0);
        h.saturating_record(120_000_000);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= 59_000_000);
    }

    #[test]
    fn take_swaps_and_totals_accumulate() {
        let r = Recorder::new();
        r.record_dispatch(DispatchCounts {
            intended: 3,
            sent: 2,
            dropped: 1,
            late: 1,
        });
        r.record_completion(Outcome::Status(200), 1_000, 500);
        r.record_completion(Outcome::Status(503), 2_000, 1_500);
        let a = r.take(0);
        assert_eq!((a.intended, a.sent, a.dropped, a.late), (3, 2, 1, 1));
        assert_eq!(a.completed, 2);
        assert_eq!((a.status.s2xx, a.status.s5xx), (1, 1));
        assert_eq!(a.response_time.len(), 2);

        r.record_completion(Outcome::Timeout, 9_000, 9_000);
        r.record_completion(Outcome::ConnectError, 1, 1);
        r.record_completion(Outcome::Status(99), 1, 1);
        let t = r.totals(7);
        assert_eq!(t.completed, 5);
        assert_eq!(t.in_flight, 7);
        assert_eq!(t.status.total(), 5);
        assert_eq!(t.status.errors(), 4);
        // Only the two full responses plus the odd-status one are in the histograms.
        assert_eq!(t.response_time.len(), 3);

        let b = r.take(0);
        assert_eq!(b.completed, 3);
        assert_eq!(b.intended, 0);
        let t2 = r.totals(0);
        assert_eq!(t2.completed, 5);
        assert_eq!(t2.intended, 3);
        assert_eq!(r.take(0).completed, 0);
    }
}
