//! Rate curve and request schedule (pure, no I/O).
//!
//! Every request's intended time is derived from an absolute clock: request
//! `n` is due where the integral of the rate curve reaches `n`. Nothing is a
//! sum of sleeps, so rounding and scheduler jitter never accumulate.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One piece of the rate curve: the rate moves linearly from `from_rate` at
/// `start` to `to_rate` at `end` (seconds of experiment time, requests per
/// experiment-second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub from_rate: f64,
    pub to_rate: f64,
}

impl Segment {
    fn len(&self) -> f64 {
        self.end - self.start
    }

    /// Requests in the whole segment (trapezoid area).
    fn area(&self) -> f64 {
        0.5 * (self.from_rate + self.to_rate) * self.len()
    }

    fn slope(&self) -> f64 {
        (self.to_rate - self.from_rate) / self.len()
    }

    /// Requests between `start` and `start + dt`.
    fn integral(&self, dt: f64) -> f64 {
        self.from_rate * dt + 0.5 * self.slope() * dt * dt
    }

    /// Offset `dt` within the segment where `integral(dt) == local`, for
    /// `0 < local <= area()`. Uses the cancellation-free form of the quadratic
    /// root, `2c / (b + sqrt(b^2 + 2kc))`, which stays exact for flat
    /// segments (k = 0 gives c / from) and ramps from zero (gives sqrt(2c/k)).
    fn offset_of(&self, local: f64) -> f64 {
        let disc = (self.from_rate * self.from_rate + 2.0 * self.slope() * local).max(0.0);
        let denom = self.from_rate + disc.sqrt();
        if denom <= 0.0 {
            // Only reachable for a zero-area segment, which callers skip.
            return 0.0;
        }
        (2.0 * local / denom).clamp(0.0, self.len())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CurveError {
    #[error("rate curve has no segments")]
    Empty,
    #[error("segment {index}: first segment must start at 0, starts at {start}")]
    NotFromZero { index: usize, start: f64 },
    #[error("segment {index}: starts at {start} but previous segment ends at {prev_end}")]
    Gap {
        index: usize,
        start: f64,
        prev_end: f64,
    },
    #[error("segment {index}: end {end} must be finite and after start {start}")]
    BadBounds { index: usize, start: f64, end: f64 },
    #[error("segment {index}: rates must be finite and >= 0 (got {from_rate} -> {to_rate})")]
    BadRate {
        index: usize,
        from_rate: f64,
        to_rate: f64,
    },
}

/// Piecewise-linear request rate over experiment time, contiguous from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Segment>", into = "Vec<Segment>")]
pub struct RateCurve {
    segments: Vec<Segment>,
    /// Cumulative request count at the start of each segment (prefix sums),
    /// so lookups are a binary search instead of a rescan.
    cum_start: Vec<f64>,
    total: f64,
}

impl TryFrom<Vec<Segment>> for RateCurve {
    type Error = CurveError;
    fn try_from(segments: Vec<Segment>) -> Result<Self, CurveError> {
        Self::new(segments)
    }
}

impl From<RateCurve> for Vec<Segment> {
    fn from(curve: RateCurve) -> Self {
        curve.segments
    }
}

impl RateCurve {
    pub fn new(segments: Vec<Segment>) -> Result<Self, CurveError> {
        if segments.is_empty() {
            return Err(CurveError::Empty);
        }
        let mut cum_start = Vec::with_capacity(segments.len());
        let mut total = 0.0;
        let mut prev_end = 0.0;
        for (index, s) in segments.iter().enumerate() {
            if index == 0 && s.start != 0.0 {
                return Err(CurveError::NotFromZero {
                    index,
                    start: s.start,
                });
            }
            if s.start != prev_end {
                return Err(CurveError::Gap {
                    index,
                    start: s.start,
                    prev_end,
                });
            }
            if !s.end.is_finite() || s.end <= s.start {
                return Err(CurveError::BadBounds {
                    index,
                    start: s.start,
                    end: s.end,
                });
            }
            let ok = |r: f64| r.is_finite() && r >= 0.0;
            if !ok(s.from_rate) || !ok(s.to_rate) {
                return Err(CurveError::BadRate {
                    index,
                    from_rate: s.from_rate,
                    to_rate: s.to_rate,
                });
            }
            cum_start.push(total);
            total += s.area();
            prev_end = s.end;
        }
        Ok(Self {
            segments,
            cum_start,
            total,
        })
    }

    /// Convenience: a single constant-rate segment.
    pub fn constant(rate: f64, duration: f64) -> Result<Self, CurveError> {
        Self::new(vec![Segment {
            start: 0.0,
            end: duration,
            from_rate: rate,
            to_rate: rate,
        }])
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn total_duration(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.end)
    }

    /// Expected number of requests over the whole curve.
    pub fn total_requests(&self) -> f64 {
        self.total
    }

    /// Index of the segment containing `t` (segment ends are exclusive except
    /// for the last one), or None outside [0, total_duration].
    fn segment_at(&self, t: f64) -> Option<usize> {
        if !(0.0..=self.total_duration()).contains(&t) {
            return None;
        }
        let i = self.segments.partition_point(|s| s.end <= t);
        Some(i.min(self.segments.len() - 1))
    }

    /// Rate at experiment time `t`; 0 outside the curve. At an instant step
    /// the later segment's rate applies.
    pub fn rate_at(&self, t: f64) -> f64 {
        match self.segment_at(t) {
            Some(i) => {
                let s = &self.segments[i];
                s.from_rate + s.slope() * (t - s.start)
            }
            None => 0.0,
        }
    }

    /// Integral of the rate from 0 to `t` (clamped to the curve).
    pub fn cumulative(&self, t: f64) -> f64 {
        if t <= 0.0 || t.is_nan() {
            return 0.0;
        }
        if t >= self.total_duration() {
            return self.total;
        }
        match self.segment_at(t) {
            Some(i) => {
                let s = &self.segments[i];
                self.cum_start[i] + s.integral(t - s.start)
            }
            None => 0.0,
        }
    }

    /// Time at which the cumulative count reaches `x`, or None if the curve
    /// never gets there. Fractional remainders carry across segments because
    /// the search is on the global integral.
    pub fn time_of_cumulative(&self, x: f64) -> Option<f64> {
        if x.is_nan() {
            return None;
        }
        if x <= 0.0 {
            return Some(0.0);
        }
        // Prefix sums are rounded; accept a count that lands a hair past the
        // total so e.g. request 100 of an exactly-100-request curve exists.
        let eps = 1e-9 * self.total.max(1.0);
        if x > self.total + eps {
            return None;
        }
        let x = x.min(self.total);
        // The last segment whose start count is below x contains it: the
        // next segment's start count (the same rounded prefix sum) is >= x.
        // That segment has positive area, so zero-rate segments never host a
        // request. x > 0 = cum_start[0], hence the subtraction cannot fail.
        let i = self.cum_start.partition_point(|&c| c < x).checked_sub(1)?;
        let s = &self.segments[i];
        let local = (x - self.cum_start[i]).clamp(0.0, s.area());
        Some(s.start + s.offset_of(local))
    }

    /// Intended time of request `n` (1-based) under uniform spacing.
    pub fn time_of_request(&self, n: u64) -> Option<f64> {
        if n == 0 {
            return None;
        }
        self.time_of_cumulative(n as f64)
    }

    /// Last time the rate is > 0 (the end of the last segment with any
    /// positive rate); 0 for an all-zero curve.
    pub fn load_stop(&self) -> f64 {
        self.segments
            .iter()
            .rev()
            .find(|s| s.from_rate > 0.0 || s.to_rate > 0.0)
            .map_or(0.0, |s| s.end)
    }
}

/// How request instants are spread along the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Spacing {
    /// Request n at the time the integral reaches n.
    Uniform,
    /// Poisson arrivals: exponential(1) gaps in cumulative-count space,
    /// mapped through the curve, so the process follows the curve's rate.
    Poisson { seed: u64 },
}

/// Iterator over intended request times (experiment seconds), ascending.
#[derive(Debug, Clone)]
pub struct Schedule {
    curve: RateCurve,
    n: u64,
    poisson: Option<(StdRng, f64)>,
}

impl Schedule {
    pub fn new(curve: RateCurve, spacing: Spacing) -> Self {
        let poisson = match spacing {
            Spacing::Uniform => None,
            Spacing::Poisson { seed } => Some((StdRng::seed_from_u64(seed), 0.0)),
        };
        Self {
            curve,
            n: 0,
            poisson,
        }
    }

    pub fn curve(&self) -> &RateCurve {
        &self.curve
    }
}

impl Iterator for Schedule {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        match &mut self.poisson {
            None => {
                self.n = self.n.checked_add(1)?;
                self.curve.time_of_request(self.n)
            }
            Some((rng, acc)) => {
                // 1 - U is in (0, 1], so the log is finite.
                let u: f64 = rng.random();
                *acc += -(1.0 - u).ln();
                self.curve.time_of_cumulative(*acc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, from_rate: f64, to_rate: f64) -> Segment {
        Segment {
            start,
            end,
            from_rate,
            to_rate,
        }
    }

    fn count_until(curve: &RateCurve, spacing: Spacing, t: f64) -> usize {
        Schedule::new(curve.clone(), spacing)
            .take_while(|&x| x <= t + 1e-9)
            .count()
    }

    #[test]
    fn ramp_then_hold_counts_at_boundaries() {
        let c = RateCurve::new(vec![seg(0.0, 10.0, 0.0, 10.0), seg(10.0, 15.0, 10.0, 10.0)])
            .expect("valid");
        assert_eq!(c.total_duration(), 15.0);
        assert_eq!(c.cumulative(10.0), 50.0);
        assert_eq!(c.cumulative(15.0), 100.0);
        assert_eq!(count_until(&c, Spacing::Uniform, 10.0), 50);
        assert_eq!(count_until(&c, Spacing::Uniform, 15.0), 100);
        assert_eq!(Schedule::new(c.clone(), Spacing::Uniform).count(), 100);
        // Request 50 lands exactly on the ramp's end, 100 on the curve's end.
        assert!((c.time_of_request(50).expect("50") - 10.0).abs() < 1e-9);
        assert!((c.time_of_request(100).expect("100") - 15.0).abs() < 1e-9);
        assert_eq!(c.time_of_request(101), None);
        // Ramp from 0: integral t^2/2 = n  =>  t = sqrt(2n).
        let t1 = c.time_of_request(1).expect("1");
        assert!((t1 - 2f64.sqrt()).abs() < 1e-12, "{t1}");
        assert_eq!(c.rate_at(5.0), 5.0);
        assert_eq!(c.rate_at(12.0), 10.0);
        assert_eq!(c.rate_at(16.0), 0.0);
    }

    #[test]
    fn times_invert_cumulative() {
        let c = RateCurve::new(vec![
            seg(0.0, 3.0, 7.0, 2.0),
            seg(3.0, 4.0, 2.0, 2.0),
            seg(4.0, 6.0, 0.0, 9.0),
            seg(6.0, 8.0, 9.0, 0.0),
        ])
        .expect("valid");
        let mut prev = 0.0;
        for (i, t) in Schedule::new(c.clone(), Spacing::Uniform).enumerate() {
            let n = (i + 1) as f64;
            assert!(t >= prev, "monotonic");
            assert!((c.cumulative(t) - n).abs() < 1e-9, "n={n} t={t}");
            prev = t;
        }
        assert_eq!(
            Schedule::new(c.clone(), Spacing::Uniform).count(),
            c.total_requests().floor() as usize
        );
    }

    #[test]
    fn fractional_carry_between_segments() {
        // 1.5 requests in the first second: request 1 at 2/3 s, the leftover
        // half request carries, so request 2 needs only 0.5 s at rate 1.
        let c =
            RateCurve::new(vec![seg(0.0, 1.0, 1.5, 1.5), seg(1.0, 3.0, 1.0, 1.0)]).expect("valid");
        let times: Vec<f64> = Schedule::new(c, Spacing::Uniform).collect();
        assert_eq!(times.len(), 3);
        assert!((times[0] - 2.0 / 3.0).abs() < 1e-12);
        assert!((times[1] - 1.5).abs() < 1e-12);
        assert!((times[2] - 2.5).abs() < 1e-12);
    }

    #[test]
    fn instant_step_and_zero_rate_segments() {
        let c = RateCurve::new(vec![
            seg(0.0, 2.0, 0.0, 0.0),
            seg(2.0, 4.0, 5.0, 5.0),
            seg(4.0, 10.0, 0.0, 0.0),
            seg(10.0, 11.0, 20.0, 20.0),
            seg(11.0, 20.0, 0.0, 0.0),
        ])
        .expect("valid");
        let times: Vec<f64> = Schedule::new(c.clone(), Spacing::Uniform).collect();
        assert_eq!(times.len(), 30);
        let in_zero = |t: f64| t < 2.0 || (t > 4.0 + 1e-9 && t < 10.0) || t > 11.0 + 1e-9;
        assert!(times.iter().all(|&t| !in_zero(t)), "{times:?}");
        assert_eq!(times.iter().filter(|&&t| t <= 4.0 + 1e-9).count(), 10);
        assert_eq!(c.load_stop(), 11.0);
        assert_eq!(c.rate_at(4.0), 0.0);
        assert_eq!(c.rate_at(10.0), 20.0);

        let idle = RateCurve::constant(0.0, 5.0).expect("valid");
        assert_eq!(Schedule::new(idle.clone(), Spacing::Uniform).count(), 0);
        assert_eq!(
            Schedule::new(idle.clone(), Spacing::Poisson { seed: 1 }).count(),
            0
        );
        assert_eq!(idle.load_stop(), 0.0);
    }

    #[test]
    fn poisson_mean_and_reproducibility() {
        let c = RateCurve::constant(100.0, 100.0).expect("valid");
        let a: Vec<f64> = Schedule::new(c.clone(), Spacing::Poisson { seed: 42 }).collect();
        let b: Vec<f64> = Schedule::new(c.clone(), Spacing::Poisson { seed: 42 }).collect();
        assert_eq!(a, b);
        // Expected 10_000 with sd 100; 3% is a 3-sigma band.
        let n = a.len() as f64;
        assert!((n - 10_000.0).abs() < 300.0, "{n}");
        let mean_gap = a.windows(2).map(|w| w[1] - w[0]).sum::<f64>() / (n - 1.0);
        assert!((mean_gap - 0.01).abs() < 0.0003, "{mean_gap}");
        // Gaps of an exponential have sd == mean; uniform spacing would not.
        let var = a
            .windows(2)
            .map(|w| (w[1] - w[0] - mean_gap).powi(2))
            .sum::<f64>()
            / (n - 2.0);
        assert!((var.sqrt() / mean_gap - 1.0).abs() < 0.05);
        let other: Vec<f64> = Schedule::new(c, Spacing::Poisson { seed: 43 }).collect();
        assert_ne!(a, other);
    }

    #[test]
    fn poisson_follows_a_ramp() {
        // Ramp 0 -> 200 over 100 s: 10_000 expected, 2_500 in the first half.
        let c = RateCurve::new(vec![seg(0.0, 100.0, 0.0, 200.0)]).expect("valid");
        let times: Vec<f64> = Schedule::new(c, Spacing::Poisson { seed: 7 }).collect();
        let first_half = times.iter().filter(|&&t| t <= 50.0).count() as f64;
        assert!((times.len() as f64 - 10_000.0).abs() < 300.0);
        assert!((first_half - 2_500.0).abs() < 150.0, "{first_half}");
    }

    #[test]
    fn lowest_rate_and_exact_counts_across_steps() {
        // 0.1 req/s: one request every 10 s, the last exactly at the end.
        let slow = RateCurve::constant(0.1, 30.0).expect("valid");
        let times: Vec<f64> = Schedule::new(slow, Spacing::Uniform).collect();
        assert_eq!(times.len(), 3);
        for (t, want) in times.iter().zip([10.0, 20.0, 30.0]) {
            assert!((t - want).abs() < 1e-9, "{times:?}");
        }
        // Instant steps up and down, then a ramp to zero: exact counts at
        // every stage boundary.
        let c = RateCurve::new(vec![
            seg(0.0, 1.0, 3.0, 3.0),
            seg(1.0, 2.0, 1000.0, 1000.0),
            seg(2.0, 4.0, 1000.0, 0.0),
        ])
        .expect("valid");
        assert_eq!(count_until(&c, Spacing::Uniform, 1.0), 3);
        assert_eq!(count_until(&c, Spacing::Uniform, 2.0), 1003);
        assert_eq!(count_until(&c, Spacing::Uniform, 4.0), 2003);
        assert_eq!(c.rate_at(1.0), 1000.0, "a step takes effect at its instant");
    }

    #[test]
    fn fraction_carries_across_a_zero_rate_stage() {
        // Half a request is left after the first second; it completes 0.5 s
        // into the third stage, not at its start or after a full second.
        let c = RateCurve::new(vec![
            seg(0.0, 1.0, 1.5, 1.5),
            seg(1.0, 6.0, 0.0, 0.0),
            seg(6.0, 7.0, 1.0, 1.0),
        ])
        .expect("valid");
        let times: Vec<f64> = Schedule::new(c, Spacing::Uniform).collect();
        assert_eq!(times.len(), 2);
        assert!((times[0] - 2.0 / 3.0).abs() < 1e-12);
        assert!((times[1] - 6.5).abs() < 1e-12, "{times:?}");
    }

    #[test]
    fn one_absolute_clock_keeps_long_runs_exact() {
        // An hour at 20_000 req/s: request n is at n / 20_000 s to well under
        // a microsecond, with no drift from summing intervals.
        let c = RateCurve::constant(20_000.0, 3600.0).expect("valid");
        for n in [1u64, 7, 36_000_001, 71_999_999, 72_000_000] {
            let t = c.time_of_request(n).expect("inside the curve");
            assert!((t - n as f64 / 20_000.0).abs() < 1e-7, "n={n} t={t}");
        }
        assert_eq!(c.time_of_request(72_000_001), None);
    }

    #[test]
    fn poisson_holds_each_stage_rate() {
        // 200 req/s for 50 s, nothing for 10 s, 50 req/s for 50 s.
        let c = RateCurve::new(vec![
            seg(0.0, 50.0, 200.0, 200.0),
            seg(50.0, 60.0, 0.0, 0.0),
            seg(60.0, 110.0, 50.0, 50.0),
        ])
        .expect("valid");
        let times: Vec<f64> = Schedule::new(c, Spacing::Poisson { seed: 11 }).collect();
        let within = |a: f64, b: f64| times.iter().filter(|&&t| t > a && t <= b).count() as f64;
        // 3-sigma bands: sd = sqrt(mean).
        assert!((within(0.0, 50.0) - 10_000.0).abs() < 300.0);
        assert_eq!(within(50.0, 60.0), 0.0);
        assert!((within(60.0, 110.0) - 2_500.0).abs() < 150.0);
    }

    #[test]
    fn rejects_bad_curves() {
        assert_eq!(RateCurve::new(vec![]), Err(CurveError::Empty));
        assert!(matches!(
            RateCurve::new(vec![seg(1.0, 2.0, 1.0, 1.0)]),
            Err(CurveError::NotFromZero { .. })
        ));
        assert!(matches!(
            RateCurve::new(vec![seg(0.0, 1.0, 1.0, 1.0), seg(1.5, 2.0, 1.0, 1.0)]),
            Err(CurveError::Gap { .. })
        ));
        assert!(matches!(
            RateCurve::new(vec![seg(0.0, 0.0, 1.0, 1.0)]),
            Err(CurveError::BadBounds { .. })
        ));
        assert!(matches!(
            RateCurve::new(vec![seg(0.0, 1.0, -1.0, 1.0)]),
            Err(CurveError::BadRate { .. })
        ));
    }
}
