//! Counters and latency histograms, per sample interval and cumulative.
//!
//! Attribution: every count goes to the sample of its own timestamp in
//! experiment time, not to whichever sample is open when the sampler reads:
//! `intended`, `sent` and `dropped` to the sample the request was due in,
//! `late` and `lateness` to the sample its task started in, and the outcome
//! (`completed`, `status`, the response, service and TTFB histograms) to the
//! sample it completed in. A sample is closed a short grace after its end
//! (see [`grace`]), once the accounting of what happened in it has landed;
//! anything recorded for it later still counts, in the first open sample.
//! So a slow request due in sample k shows up as completed in sample k+3,
//! and over the whole run everything adds up.
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
//! Design: the open samples behind one `std::sync::Mutex`, locked once per
//! request start, once per completion and once per scheduler batch (per
//! sample the batch touches), for a few hundred nanoseconds, as a single
//! current interval was before. Closing a sample takes its bucket out and
//! folds it into the totals outside that lock, and buckets for the next
//! samples are made there too, so memory is a fixed set of histograms per
//! open sample regardless of run length.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::buckets::{sample_of, Buckets};
use crate::clock::Clock;

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

/// The longest a sample stays open after its end, in real time: far more
/// than a completion takes to be recorded on a busy machine (the task that
/// read the response records it next), short enough that the timeline
/// never waits on a stuck request.
const MAX_GRACE: Duration = Duration::from_millis(50);
/// Buckets kept ready beyond the ones closed: the current sample's and the
/// next, so the request path does not allocate histograms.
const AHEAD: usize = 2;

/// How long after its end (real time) a sample of `real_interval` stays
/// open for counts still being recorded: half a sample, at most
/// [`MAX_GRACE`], so closing it never delays the next one.
pub(super) fn grace(real_interval: Duration) -> Duration {
    (real_interval / 2).min(MAX_GRACE)
}

/// Shared recorder: the open samples, and the totals of the closed ones.
#[derive(Debug)]
pub(super) struct Recorder {
    /// Experiment time of real instants.
    clock: Clock,
    /// Sample width in experiment seconds.
    interval: f64,
    open: Mutex<Buckets>,
    closed: Mutex<IntervalStats>,
}

/// A panic elsewhere must not stop measurement; the data is plain counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Merges `parts` into one interval; `in_flight` is the gauge's reading.
fn merged(parts: Vec<IntervalStats>, in_flight: u64) -> IntervalStats {
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_default();
    for p in parts {
        out.merge(&p);
    }
    out.in_flight = in_flight;
    out
}

impl Recorder {
    /// Samples of `interval` experiment seconds on `clock`.
    pub fn new(clock: Clock, interval: f64) -> Self {
        let mut open = Buckets::default();
        open.provision(
            AHEAD,
            &mut (0..AHEAD).map(|_| IntervalStats::new()).collect(),
        );
        Self {
            clock,
            interval,
            open: Mutex::new(open),
            closed: Mutex::new(IntervalStats::new()),
        }
    }

    /// The sample holding experiment time `t`.
    pub fn sample_of(&self, t: f64) -> u64 {
        sample_of(t, self.interval)
    }

    /// The sample holding real instant `at`.
    pub fn sample_at(&self, at: Instant) -> u64 {
        self.sample_of(self.clock.time_of(at))
    }

    /// Scheduler counts of requests due in sample `k`.
    pub fn record_dispatch(&self, k: u64, c: DispatchCounts) {
        let mut open = lock(&self.open);
        let b = open.at(k);
        b.intended += c.intended;
        b.sent += c.sent;
        b.dropped += c.dropped;
    }

    /// A request's task started at `started`, `lateness_us` after its
    /// intended instant.
    pub fn record_send(&self, started: Instant, lateness_us: u64) {
        let k = self.sample_at(started);
        let mut open = lock(&self.open);
        let b = open.at(k);
        if lateness_us > LATE_THRESHOLD_US {
            b.late += 1;
        }
        b.lateness.saturating_record(lateness_us);
    }

    /// A request finished at `done`.
    pub fn record_completion(&self, done: Instant, c: Completion) {
        let k = self.sample_at(done);
        let mut open = lock(&self.open);
        let b = open.at(k);
        b.completed += 1;
        let st = &mut b.status;
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
            b.response_time.saturating_record(c.response_us);
            b.service_time.saturating_record(c.service_us);
            if let Some(t) = c.ttfb_us {
                b.ttfb.saturating_record(t);
            }
        }
    }

    /// The real instant after which nothing more is expected in sample `k`:
    /// its end plus the grace.
    pub fn closes_at(&self, k: u64) -> Instant {
        let end = self.clock.instant((k + 1) as f64 * self.interval);
        end + grace(self.clock.real(Duration::from_secs_f64(self.interval)))
    }

    /// Closes sample `k` (and any earlier one still open) and folds it into
    /// the totals.
    pub fn close(&self, k: u64, in_flight: u64) -> IntervalStats {
        self.take(|b| b.close_through(k), in_flight)
    }

    /// Closes everything recorded so far, whatever its sample.
    pub fn close_all(&self, in_flight: u64) -> IntervalStats {
        self.take(Buckets::close_all, in_flight)
    }

    fn take(
        &self,
        how: impl FnOnce(&mut Buckets) -> Vec<IntervalStats>,
        in_flight: u64,
    ) -> IntervalStats {
        // Allocate and merge outside the request path's lock.
        let mut spare: Vec<_> = (0..AHEAD).map(|_| IntervalStats::new()).collect();
        // Lock order everywhere: closed, then open. Holding `closed` across
        // the move keeps `totals()` from seeing a sample in neither place.
        let mut closed = lock(&self.closed);
        let parts = {
            let mut open = lock(&self.open);
            let parts = how(&mut open);
            open.provision(AHEAD, &mut spare);
            parts
        };
        let out = merged(parts, in_flight);
        closed.merge(&out);
        out
    }

    /// Cumulative totals including the samples still open.
    pub fn totals(&self, in_flight: u64) -> IntervalStats {
        let closed = lock(&self.closed);
        let mut all = closed.clone();
        for b in lock(&self.open).open() {
            all.merge(b);
        }
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

    /// A recorder of 1-second samples at speed 2 (sample k is real
    /// [k/2, (k+1)/2) s after t0), and the real instant of experiment time t.
    fn recorder() -> (Recorder, impl Fn(f64) -> Instant) {
        let clock = Clock::new(Instant::now(), 2.0);
        (Recorder::new(clock, 1.0), move |t| clock.instant(t))
    }

    #[test]
    fn counts_land_in_the_sample_of_their_timestamp() {
        let (r, at) = recorder();
        r.record_dispatch(
            0,
            DispatchCounts {
                intended: 3,
                sent: 2,
                dropped: 1,
            },
        );
        // One on time, one 1.5 ms late; exactly 1 ms is not late yet.
        r.record_send(at(0.2), 0);
        r.record_send(at(0.3), 1_500);
        r.record_send(at(0.9), LATE_THRESHOLD_US);
        r.record_completion(at(0.5), done(Outcome::Status(200), 1_000, 500));
        // Recorded before the first sample is read, but it completed in the
        // second: it is the second's.
        r.record_completion(at(1.5), done(Outcome::Status(503), 2_000, 1_500));
        let a = r.close(0, 0);
        assert_eq!((a.intended, a.sent, a.dropped, a.late), (3, 2, 1, 1));
        assert_eq!(a.lateness.len(), 3);
        assert!(a.lateness.max() >= 1_499 && a.lateness.max() <= 1_501);
        assert_eq!(a.completed, 1);
        assert_eq!((a.status.s2xx, a.status.s5xx), (1, 0));
        assert_eq!(a.response_time.len(), 1);
        assert_eq!(a.ttfb.max(), 250);

        // Sample 0 is closed: a completion of it recorded after the close
        // counts in the first open one, once.
        r.record_completion(at(0.99), done(Outcome::Timeout, 9_000, 9_000));
        r.record_completion(at(1.2), done(Outcome::ConnectError, 1, 1));
        r.record_completion(at(2.5), done(Outcome::Status(99), 1, 1));
        let t = r.totals(7);
        assert_eq!(t.completed, 5);
        assert_eq!(t.in_flight, 7);
        assert_eq!(t.status.total(), 5);
        assert_eq!(t.status.errors(), 4);
        // Only the two full responses plus the odd-status one are in the histograms.
        assert_eq!(t.response_time.len(), 3);
        assert_eq!(t.ttfb.len(), 3);
        assert_eq!((t.late, t.lateness.len()), (1, 3));

        let b = r.close(1, 4);
        assert_eq!((b.completed, b.status.s5xx, b.status.timeout), (3, 1, 1));
        assert_eq!(
            (b.intended, b.late, b.lateness.len(), b.in_flight),
            (0, 0, 0, 4)
        );
        // The rest: sample 2's completion.
        let rest = r.close_all(0);
        assert_eq!((rest.completed, rest.status.other), (1, 1));
        let t2 = r.totals(0);
        assert_eq!((t2.completed, t2.intended), (5, 3));
        assert_eq!(r.close(3, 0).completed, 0);
    }

    #[test]
    fn a_sample_closes_a_bounded_grace_after_its_end() {
        let (r, at) = recorder();
        // Half a real sample (0.25 s at speed 2) is more than the cap.
        assert_eq!(r.closes_at(0), at(1.0) + MAX_GRACE);
        assert_eq!(r.closes_at(4), at(5.0) + MAX_GRACE);
        let fast = Duration::from_millis(16);
        assert_eq!(grace(fast), Duration::from_millis(8));
    }
}
