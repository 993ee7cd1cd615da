//! Per-sample statistics keyed by sample number, closed in order: each
//! count goes to the sample of its own timestamp while that sample is open,
//! and to the first open one once it is closed (a late arrival is counted
//! late, never lost or counted twice).

use std::collections::VecDeque;

use super::stats::IntervalStats;

/// The 0-based sample holding experiment time `t` (seconds) with samples of
/// `interval` seconds: sample k covers (k·interval, (k+1)·interval], so the
/// sample ending at t = k·interval holds what happened exactly at t.
pub fn sample_of(t: f64, interval: f64) -> u64 {
    let k = ((t / interval) - 1e-9).ceil() - 1.0;
    if k > 0.0 {
        k as u64
    } else {
        0
    }
}

/// Open samples from `first` on; every earlier one is closed.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    first: u64,
    open: VecDeque<IntervalStats>,
}

impl Buckets {
    /// Where a count timestamped in sample `k` goes: `k`'s bucket, or the
    /// first open one when `k` is closed already.
    pub fn at(&mut self, k: u64) -> &mut IntervalStats {
        let i = usize::try_from(k.saturating_sub(self.first)).unwrap_or(usize::MAX);
        while self.open.len() <= i {
            self.open.push_back(IntervalStats::new());
        }
        &mut self.open[i]
    }

    /// Keeps at least `ahead` buckets open, taking fresh ones from `spare`
    /// (made by the caller outside any lock), and returns the rest.
    pub fn provision(&mut self, ahead: usize, spare: &mut Vec<IntervalStats>) {
        while self.open.len() < ahead {
            match spare.pop() {
                Some(b) => self.open.push_back(b),
                None => break,
            }
        }
    }

    /// Closes every sample up to and including `k`; their buckets, oldest
    /// first (more than one only when a close was skipped).
    pub fn close_through(&mut self, k: u64) -> Vec<IntervalStats> {
        let n = usize::try_from((k + 1).saturating_sub(self.first)).unwrap_or(usize::MAX);
        let out: Vec<_> = self.open.drain(..n.min(self.open.len())).collect();
        self.first = self.first.max(k + 1);
        out
    }

    /// Closes everything counted so far: every open bucket, oldest first.
    pub fn close_all(&mut self) -> Vec<IntervalStats> {
        self.first += self.open.len() as u64;
        self.open.drain(..).collect()
    }

    /// The open buckets, for totals.
    pub fn open(&self) -> impl Iterator<Item = &IntervalStats> {
        self.open.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_of_puts_a_boundary_in_the_sample_it_ends() {
        assert_eq!(sample_of(0.0, 1.0), 0);
        assert_eq!(sample_of(0.5, 1.0), 0);
        assert_eq!(sample_of(1.0, 1.0), 0);
        assert_eq!(sample_of(1.000_001, 1.0), 1);
        assert_eq!(sample_of(4.9, 2.0), 2);
        assert_eq!(sample_of(-3.0, 1.0), 0);
    }

    #[test]
    fn counts_go_to_their_sample_or_the_first_open_one() {
        let mut b = Buckets::default();
        b.at(0).completed += 1;
        b.at(2).completed += 10;
        b.at(1).completed += 5;
        let closed = b.close_through(0);
        assert_eq!(closed.iter().map(|s| s.completed).collect::<Vec<_>>(), [1]);
        // Sample 0 is closed: a late count lands in sample 1.
        b.at(0).completed += 100;
        let closed = b.close_through(1);
        assert_eq!(
            closed.iter().map(|s| s.completed).collect::<Vec<_>>(),
            [105]
        );
        // A skipped close hands back both samples.
        b.at(3).completed += 7;
        let closed = b.close_through(3);
        assert_eq!(
            closed.iter().map(|s| s.completed).collect::<Vec<_>>(),
            [10, 7]
        );
        // Closing past what was ever opened moves the boundary anyway.
        assert!(b.close_through(5).is_empty());
        b.at(4).completed += 1;
        b.at(9).completed += 2;
        let rest: u64 = b.close_all().iter().map(|s| s.completed).sum();
        assert_eq!(rest, 3);
        assert_eq!(b.first, 10);
        b.at(9).completed += 1;
        assert_eq!(b.close_through(10).len(), 1);
    }

    #[test]
    fn provision_keeps_buckets_ready_ahead() {
        let mut b = Buckets::default();
        let mut spare = vec![
            IntervalStats::new(),
            IntervalStats::new(),
            IntervalStats::new(),
        ];
        b.provision(2, &mut spare);
        assert_eq!((b.open.len(), spare.len()), (2, 1));
        b.close_through(0);
        b.provision(2, &mut spare);
        assert_eq!((b.open.len(), spare.len()), (2, 0));
    }
}
