//! The sim's client side: the scenario's arrival schedule, the in-flight cap
//! and the per-sample statistics. Intended, sent and dropped requests count
//! in the sample of their arrival; completions, statuses and latencies in the
//! sample of their completion, as the live engine counts them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::iter::Peekable;

use crate::load::{sample_of, IntervalStats, Schedule};

pub(super) struct Arrivals {
    schedule: Peekable<Schedule>,
    /// Experiment seconds after which nothing is sent.
    duration: f64,
    timeout: f64,
    max_in_flight: usize,
    /// Client-side completions (ns of cluster time) for the in-flight cap.
    outstanding: BinaryHeap<Reverse<u64>>,
    interval: f64,
    /// Per sample, made on first use.
    buckets: Vec<Option<IntervalStats>>,
}

/// What the cluster did with one request: its status and completion instant.
pub(super) type Served = (u16, f64);

impl Arrivals {
    pub(super) fn new(
        schedule: Schedule,
        duration: f64,
        interval: f64,
        timeout: f64,
        max_in_flight: usize,
    ) -> Self {
        let n = (duration / interval).ceil() as usize;
        Self {
            schedule: schedule.peekable(),
            duration,
            timeout,
            max_in_flight,
            outstanding: BinaryHeap::new(),
            interval,
            buckets: (0..n).map(|_| None).collect(),
        }
    }

    /// The sample holding experiment time `t`; past the last sample, the
    /// last (it holds what completes after the run's end, as the live
    /// engine's last sample does).
    fn bucket(&mut self, t: f64) -> Option<&mut IntervalStats> {
        let last = self.buckets.len().checked_sub(1)?;
        let k = usize::try_from(sample_of(t, self.interval)).map_or(last, |k| k.min(last));
        self.buckets
            .get_mut(k)
            .map(|b| b.get_or_insert_with(IntervalStats::new))
    }

    /// Sends every request due at or before cluster time `now`; `t0` is
    /// the cluster time of experiment t = 0 and `serve` routes one request
    /// arriving at a cluster instant.
    pub(super) fn send_until(&mut self, t0: f64, now: f64, mut serve: impl FnMut(f64) -> Served) {
        while let Some(&x) = self.schedule.peek() {
            if t0 + x > now + 1e-12 || x > self.duration {
                break;
            }
            self.schedule.next();
            let at = t0 + x;
            let at_ns = (at * 1e9).round() as u64;
            while self.outstanding.peek().is_some_and(|r| r.0 <= at_ns) {
                self.outstanding.pop();
            }
            let full = self.outstanding.len() >= self.max_in_flight;
            let Some(b) = self.bucket(x) else { continue };
            b.intended += 1;
            if full {
                b.dropped += 1;
                continue;
            }
            b.sent += 1;
            let (status, end) = serve(at);
            let timed_out = end - at > self.timeout;
            let (done, latency) = if timed_out {
                (at + self.timeout, self.timeout)
            } else {
                (end, end - at)
            };
            self.outstanding.push(Reverse((done * 1e9).round() as u64));
            if let Some(c) = self.bucket(done - t0) {
                c.completed += 1;
                if timed_out {
                    c.status.timeout += 1;
                } else if status == 200 {
                    c.status.s2xx += 1;
                } else {
                    c.status.s5xx += 1;
                }
                let us = ((latency * 1e6).round() as u64).max(1);
                c.response_time.saturating_record(us);
                c.service_time.saturating_record(us);
            }
        }
    }

    /// Sample k's statistics (the sim sends exactly on time: no lateness).
    pub(super) fn take(&mut self, k: usize) -> IntervalStats {
        self.buckets
            .get_mut(k)
            .and_then(Option::take)
            .unwrap_or_default()
    }
}
