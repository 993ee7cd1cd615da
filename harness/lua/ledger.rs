//! What the load engine saw, sample by sample, kept compactly for a
//! policy's latency and error-rate questions over a window: per sample its
//! completed and failed requests and its response times in log buckets
//! (5 % wide, so a percentile is within 5 % of the engine's own).

use std::collections::VecDeque;

use crate::load::IntervalStats;

/// Buckets grow by this factor from 1 µs.
const GROWTH: f64 = 1.05;
/// How much history it keeps, in seconds: the longest window a policy may ask for.
pub(crate) const KEEP_S: f64 = 600.0;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Cluster seconds at the sample's end.
    t: f64,
    completed: u64,
    failed: u64,
    /// (bucket, count), buckets ascending.
    buckets: Vec<(u16, u64)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    entries: VecDeque<Entry>,
}

fn bucket(us: u64) -> u16 {
    ((us.max(1) as f64).ln() / GROWTH.ln())
        .floor()
        .min(f64::from(u16::MAX)) as u16
}

/// A bucket's upper edge in milliseconds.
fn upper_ms(b: u16) -> f64 {
    GROWTH.powi(i32::from(b) + 1) / 1000.0
}

impl Ledger {
    /// One finished sample ending at cluster time `t`.
    pub(crate) fn push(&mut self, t: f64, s: &IntervalStats) {
        let mut buckets: Vec<(u16, u64)> = Vec::new();
        for v in s.response_time.iter_recorded() {
            let b = bucket(v.value_iterated_to());
            let n = v.count_at_value();
            match buckets.last_mut() {
                Some((lb, c)) if *lb == b => *c += n,
                _ => buckets.push((b, n)),
            }
        }
        let failed = s.status.errors();
        self.entries.push_back(Entry {
            t,
            completed: s.completed,
            failed,
            buckets,
        });
        while self.entries.front().is_some_and(|e| e.t < t - KEEP_S) {
            self.entries.pop_front();
        }
    }

    /// Samples that ended in (now - window, now].
    fn within(&self, now: f64, window: f64) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .rev()
            .skip_while(move |e| e.t > now + 1e-9)
            .take_while(move |e| e.t > now - window + 1e-9)
    }

    /// Completed requests and failed ones in the window.
    pub(crate) fn counts(&self, now: f64, window: f64) -> (u64, u64) {
        self.within(now, window)
            .fold((0, 0), |(c, f), e| (c + e.completed, f + e.failed))
    }

    /// Requests completed per second over the window, or `None` when no
    /// sample ended in it (the load engine has not reported yet).
    pub(crate) fn rate(&self, now: f64, window: f64) -> Option<f64> {
        let mut any = false;
        let done: u64 = self
            .within(now, window)
            .inspect(|_| any = true)
            .map(|e| e.completed)
            .sum();
        (any && window > 0.0).then(|| done as f64 / window)
    }

    /// The `p`-th percentile of response time in ms over the window, or
    /// `None` when nothing completed in it.
    pub(crate) fn percentile_ms(&self, now: f64, window: f64, p: f64) -> Option<f64> {
        let mut merged: std::collections::BTreeMap<u16, u64> = Default::default();
        for e in self.within(now, window) {
            for &(b, n) in &e.buckets {
                *merged.entry(b).or_default() += n;
            }
        }
        let total: u64 = merged.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in merged {
            seen += n;
            if seen >= rank {
                return Some(upper_ms(b));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors_over_a_window() {
        let mut l = Ledger::default();
        for k in 1..=20u64 {
            let mut s = IntervalStats::new();
            for i in 1..=100u64 {
                // 1..100 ms, ten times slower in the last five samples.
                let ms = if k > 15 { i * 10 } else { i };
                s.response_time.saturating_record(ms * 1000);
            }
            s.completed = 100;
            s.status.s2xx = 95;
            s.status.s5xx = 5;
            l.push(k as f64, &s);
        }
        let p99 = l.percentile_ms(20.0, 5.0, 99.0).unwrap();
        assert!((p99 / 990.0 - 1.0).abs() < 0.06, "{p99}");
        let p50 = l.percentile_ms(15.0, 10.0, 50.0).unwrap();
        assert!((p50 / 50.0 - 1.0).abs() < 0.06, "{p50}");
        assert_eq!(l.counts(20.0, 5.0), (500, 25));
        assert_eq!(l.rate(20.0, 5.0), Some(100.0));
        assert_eq!(l.rate(40.0, 5.0), None);
        assert_eq!(l.percentile_ms(40.0, 5.0, 50.0), None);
    }
}
