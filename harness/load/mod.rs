//! Load engines: the open model (arrival rate over hyper, latency measured
//! from each request's intended send time, no coordinated omission) and the
//! closed model (Goose users walking a journey with think time). Both feed
//! the same per-interval stats.
//!
//! - [`schedule`]: the rate curve and intended request instants (pure).
//! - [`engine`]: sends requests at those instants, drops at the in-flight cap.
//! - `workers`: due requests handed to HTTP/1.1 connection workers, capped.
//! - `pool`: one HTTP/1.1 connection driven in its worker's task, or one
//!   multiplexed HTTP/2 one.
//! - [`closed`]: Goose users ramped by a test plan; every request timed here.
//! - `goose_env`: the logger and Ctrl-C handler, claimed before Goose does.
//! - [`driver`]: one handle over either engine for the experiment loop.
//! - [`stats`]: per-sample and cumulative counters and latency histograms.
//! - `buckets`: the open samples, each count in the sample of its timestamp.
//! - [`rawlog`]: the optional per-request CSV, written off the request path.

mod buckets;
pub mod closed;
pub mod driver;
pub mod engine;
mod goose_env;
mod pool;
pub mod rawlog;
pub mod schedule;
pub mod stats;
mod workers;

pub use self::buckets::sample_of;
pub use self::closed::{ClosedConfig, ClosedError, ClosedHandle, PlanStep, StepSpec};
pub use self::driver::Engine;
pub use self::engine::{start, Finished, LoadConfig, LoadError, LoadHandle, RequestSpec};
pub use self::rawlog::RawLogSummary;
pub use self::schedule::{CurveError, RateCurve, Schedule, Segment, Spacing};
pub use self::stats::{IntervalStats, StatusCounts};
