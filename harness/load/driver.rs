//! One handle over either engine, so the experiment loop reads the same
//! per-interval stats whichever load model the scenario asks for.

use super::closed::ClosedHandle;
use super::engine::LoadHandle;
use super::stats::IntervalStats;

pub enum Engine {
    /// Arrival rate (`load.model: open`).
    Open(LoadHandle),
    /// Goose users (`load.model: users`).
    Closed(ClosedHandle),
}

impl Engine {
    /// Sample `k`'s stats (0-based), once complete: waits until a short
    /// grace after its end. Call once per sample, in order.
    pub async fn sample(&self, k: u64) -> IntervalStats {
        match self {
            Engine::Open(h) => h.sample(k).await,
            Engine::Closed(h) => h.sample(k).await,
        }
    }

    /// Everything recorded and not yet taken, whatever its sample: the
    /// last sample of a run, after [`Engine::finish`].
    pub fn take_recorded(&self) -> IntervalStats {
        match self {
            Engine::Open(h) => h.take_recorded(),
            Engine::Closed(h) => h.take_recorded(),
        }
    }

    /// Stops sending; requests in flight run to completion or timeout.
    pub fn stop(&self) {
        match self {
            Engine::Open(h) => h.stop(),
            Engine::Closed(h) => h.stop(),
        }
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> u64 {
        match self {
            Engine::Open(h) => h.in_flight(),
            Engine::Closed(h) => h.in_flight(),
        }
    }

    /// [`Engine::in_flight`], readable while [`Engine::finish`] borrows the
    /// engine: the final wait's progress.
    pub fn in_flight_reader(&self) -> Box<dyn Fn() -> u64 + Send + Sync> {
        match self {
            Engine::Open(h) => Box::new(h.in_flight_reader()),
            Engine::Closed(h) => Box::new(h.in_flight_reader()),
        }
    }

    /// Waits for the engine to finish: the run's totals, and the raw log's
    /// summary when the open engine wrote one.
    /// The engine stays usable (for what was recorded) if the wait is cut
    /// short.
    pub async fn finish(&mut self) -> super::Finished {
        match self {
            Engine::Open(h) => h.finish().await,
            Engine::Closed(h) => super::Finished {
                totals: h.finish().await,
                raw_log: None,
            },
        }
    }

    /// Users running now; `None` for the open model, which has no users.
    pub fn users(&self) -> Option<u64> {
        match self {
            Engine::Open(_) => None,
            Engine::Closed(h) => Some(h.users()),
        }
    }

    /// Why the engine gave up, if it did (the open engine cannot fail once
    /// started).
    pub fn failure(&self) -> Option<String> {
        match self {
            Engine::Open(_) => None,
            Engine::Closed(h) => h.failure(),
        }
    }
}
