//! A deadline for a long-lived loop (a connection worker, a pooled
//! connection) that moves later with each request and seldom earlier.
//!
//! A tokio timer per request costs a lock of the timer driver to register
//! it and another to cancel it, and, whenever no earlier timer is pending
//! (an unloaded server answering in microseconds), an eventfd write to wake
//! the I/O thread so that it re-computes its sleep: one syscall per request.
//! Here the timer stays armed at the earliest deadline set and is only
//! re-armed when it fires before the current deadline (at most once per
//! timeout period while busy) or must fire sooner.

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

#[derive(Default)]
pub(crate) struct Deadline {
    timer: Option<Pin<Box<Sleep>>>,
    at: Option<Instant>,
}

impl Deadline {
    fn set(&mut self, at: Instant) {
        self.at = Some(at);
        match &mut self.timer {
            Some(t) if t.deadline() <= at => {}
            Some(t) => t.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Runs `fut` until it ends (Some) or the deadline, moved to `at`,
    /// passes first (None, `fut` dropped).
    pub async fn within<F: std::future::Future>(
        &mut self,
        at: Instant,
        fut: F,
    ) -> Option<F::Output> {
        self.set(at);
        tokio::select! {
            biased;
            v = fut => Some(v),
            () = self.reached() => None,
        }
    }

    /// Resolves once the deadline last set has passed; never without one.
    async fn reached(&mut self) {
        let (Some(timer), Some(at)) = (&mut self.timer, self.at) else {
            return std::future::pending().await;
        };
        loop {
            timer.as_mut().await;
            if Instant::now() >= at {
                return;
            }
            // Fired for an earlier deadline since moved on.
            timer.as_mut().reset(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn fires_at_the_deadline_last_set_whether_later_or_earlier() {
        let t0 = Instant::now();
        let mut d = Deadline::default();
        d.set(t0 + 20 * MS);
        d.set(t0 + 60 * MS);
        d.reached().await;
        assert!(t0.elapsed() >= 60 * MS, "not at the first deadline");
        let t1 = Instant::now();
        d.set(t1 + 200 * MS);
        d.set(t1 + 20 * MS);
        d.reached().await;
        let waited = t1.elapsed();
        assert!((20 * MS..150 * MS).contains(&waited), "{waited:?}");
    }

    #[tokio::test]
    async fn without_a_deadline_it_never_fires() {
        let mut d = Deadline::default();
        let r = tokio::time::timeout(30 * MS, d.reached()).await;
        assert!(r.is_err());
    }
}
