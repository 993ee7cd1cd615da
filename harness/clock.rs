//! Experiment time. Under `--speed N` one experiment-second lasts 1/N real
//! seconds; everything that waits (stages, sync periods, start-up delays)
//! waits on this clock so that events do not depend on N.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    t0: Instant,
    speed: f64,
}

impl Clock {
    pub fn new(t0: Instant, speed: f64) -> Self {
        Self { t0, speed }
    }
    pub fn start(&self) -> Instant {
        self.t0
    }
    pub fn speed(&self) -> f64 {
        self.speed
    }
    /// Experiment seconds since the start.
    pub fn now(&self) -> f64 {
        self.time_of(Instant::now())
    }
    /// Experiment seconds at real instant `at` (0 before the start).
    pub fn time_of(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.t0).as_secs_f64() * self.speed
    }
    /// Real duration of an experiment duration.
    pub fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }
    /// Nanoseconds of experiment time in `real_ns` real nanoseconds (a real
    /// pod's CPU time, compressed with the clock).
    pub fn experiment_ns(&self, real_ns: u64) -> u64 {
        (real_ns as f64 * self.speed).round() as u64
    }
    /// The real instant of experiment time `t` seconds.
    pub fn instant(&self, t: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(t.max(0.0) / self.speed)
    }
    /// The real instant of experiment time `t` seconds, `None` where it is
    /// not representable (the end of a schedule).
    pub fn checked_instant(&self, t: f64) -> Option<Instant> {
        self.t0
            .checked_add(Duration::try_from_secs_f64(t / self.speed).ok()?)
    }
    pub async fn sleep_until(&self, t: f64) {
        tokio::time::sleep_until(self.instant(t)).await
    }
}
