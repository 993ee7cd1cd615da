//! Counters and latency histograms, per sample interval and cumulative.
//!
//! Attribution: counts about *scheduling* (`intended`, `sent`, `dropped`)
//! go to the interval in which the scheduler processed the request, which is
//! the interval it was due in (give or take the ~1 ms dispatch batch and any
//! scheduler lateness). `late` and `lateness` go to the interval in which the
//! request's task actually started, so they show *when* the generator fell
//! behind. Counts about *outcomes* (`completed`, `status`, the response,
//! service and TTFB histograms) go to the interval in which the request
//! completed. So a slow request due in interval k may show up as completed in
//! interval k+3; over the whole run everything adds up.
//!
//! Latencies are in REAL microseconds (the caller rescales by the speed):
//! - `response_time` = completion - min(intended instant, actual dispatch).
//!   For a late request that is completion - intended (t0 + t/speed), which
//!   includes the sender's lateness, so it is free of coordinated omission.
//!   Requests dispatched early (by at most the 1 ms batch window) count from
//!   the actual dispatch, so response time is always >= service time.
//! - `service_time` = completion - the moment the request got a connection
//!   and was written (dialling a new connection included, a wait for a busy
//!   one at the `connections` cap not).
//! - `ttfb` = response headers received - that same moment: the service time
//!   without reading the body.
//! - `lateness` = actual dispatch - intended instant (0 when on time or up to
//!   the 1 ms batch window early), for every sent request. `response_time -
//!   service_time` is this lateness plus any wait for a connection at the
//!   `connections` cap, so with the default cap the two latency histograms
//!   only differ when the generator itself fell behind: an open-model engine
//!   never waits for the server before sending.
//!
//! The response, service and TTFB histograms hold only requests that got a
//! complete HTTP response (any status). Timeouts and errors are counted in
//! `status` only; `completed` counts every finished request whatever its
//! outcome.
//!
//! Design: one `IntervalStats` behind a `std::sync::Mutex`, locked once per
//! request start, once per completion and once per scheduler batch, for a few
//! hundred nanoseconds. `take` swaps it for a fresh one and folds it into the
//! totals, so memory is a fixed set of histograms regardless of run length.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;

/// Histogram range: 1 µs .. 60 s at 3 significant digits.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 60_000_000;
const HIST_SIGFIG: u8 = 3;

/// A send more than this many real microseconds after its intended instant
/// counts as `late`. The tokio timer ticks at 1 ms, so anything finer would
/// count timer granularity rather than a generator falling behind.
pub const LATE_THRESHOLD_US: u64 = 1_000;

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
    /// Requests sent more than 1 ms (real) after their intended instant,
    /// measured when the request's task started.
    pub late: u64,
    pub status: StatusCounts,
    /// Completion - min(intended instant, actual dispatch), real µs.
    pub response_time: Histogram<u64>,
    /// Completion - actual dispatch, real µs.
    pub service_time: Histogram<u64>,
    /// Response headers received - actual dispatch, real µs.
    pub ttfb: Histogram<u64>,
    /// Actual dispatch - intended instant (0 if not after it), real µs, one
    /// entry per sent request (so `lateness.len()` counts sends started).
    pub lateness: Histogram<u64>,
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
            ttfb: new_histogram(),
            lateness: new_histogram(),
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
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.lateness.add(&other.lateness);
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

/// Real microseconds from `from` to `to`, 0 if `to` is earlier.
pub(super) fn micros(from: tokio::time::Instant, to: tokio::time::Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
}

/// How one finished request went, in real microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Completion {
    pub outcome: Outcome,
    pub response_us: u64,
    pub service_us: u64,
    /// Time to the response headers; None when none arrived.
    pub ttfb_us: Option<u64>,
}

/// Scheduler-side counts, accumulated per dispatch batch and flushed once.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DispatchCounts {
    pub intended: u64,
    pub sent: u64,
    pub dropped: u64,
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
    }

    /// A request's task started `lateness_us` after its intended instant.
    pub fn record_send(&self, lateness_us: u64) {
        let mut cur = lock(&self.current);
        if lateness_us > LATE_THRESHOLD_US {
            cur.late += 1;
        }
        cur.lateness.saturating_record(lateness_us);
    }

    pub fn record_completion(&self, c: Completion) {
        let mut cur = lock(&self.current);
        cur.completed += 1;
        let st = &mut cur.status;
        match c.outcome {
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
        if matches!(c.outcome, Outcome::Status(_)) {
            // Saturating: anything beyond 60 s lands in the top bucket.
            cur.response_time.saturating_record(c.response_us);
            cur.service_time.saturating_record(c.service_us);
            if let Some(t) = c.ttfb_us {
                cur.ttfb.saturating_record(t);
            }
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

    fn done(outcome: Outcome, response_us: u64, service_us: u64) -> Completion {
        Completion {
            outcome,
            response_us,
            service_us,
            ttfb_us: matches!(outcome, Outcome::Status(_)).then_some(service_us / 2),
        }
    }

    #[test]
    fn take_swaps_and_totals_accumulate() {
        let r = Recorder::new();
        r.record_dispatch(DispatchCounts {
            intended: 3,
            sent: 2,
            dropped: 1,
        });
        // One on time, one 1.5 ms late; exactly 1 ms is not late yet.
        r.record_send(0);
        r.record_send(1_500);
        r.record_send(LATE_THRESHOLD_US);
        r.record_completion(done(Outcome::Status(200), 1_000, 500));
        r.record_completion(done(Outcome::Status(503), 2_000, 1_500));
        let a = r.take(0);
        assert_eq!((a.intended, a.sent, a.dropped, a.late), (3, 2, 1, 1));
        assert_eq!(a.lateness.len(), 3);
        assert!(a.lateness.max() >= 1_499 && a.lateness.max() <= 1_501);
        assert_eq!(a.completed, 2);
        assert_eq!((a.status.s2xx, a.status.s5xx), (1, 1));
        assert_eq!(a.response_time.len(), 2);
        assert_eq!(a.ttfb.len(), 2);
        assert_eq!(a.ttfb.max(), 750);

        r.record_completion(done(Outcome::Timeout, 9_000, 9_000));
        r.record_completion(done(Outcome::ConnectError, 1, 1));
        r.record_completion(done(Outcome::Status(99), 1, 1));
        let t = r.totals(7);
        assert_eq!(t.completed, 5);
        assert_eq!(t.in_flight, 7);
        assert_eq!(t.status.total(), 5);
        assert_eq!(t.status.errors(), 4);
        // Only the two full responses plus the odd-status one are in the histograms.
        assert_eq!(t.response_time.len(), 3);
        assert_eq!(t.ttfb.len(), 3);
        assert_eq!((t.late, t.lateness.len()), (1, 3));

        let b = r.take(0);
        assert_eq!(b.completed, 3);
        assert_eq!((b.intended, b.late, b.lateness.len()), (0, 0, 0));
        let t2 = r.totals(0);
        assert_eq!(t2.completed, 5);
        assert_eq!(t2.intended, 3);
        assert_eq!(r.take(0).completed, 0);
    }
}
