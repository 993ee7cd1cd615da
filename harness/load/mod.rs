//! Load engine v1: open-model (arrival-rate) HTTP load over hyper, with
//! latency measured from each request's intended send time so a slow server
//! or a stalled sender cannot hide queueing (no coordinated omission).
//!
//! - [`schedule`]: the rate curve and intended request instants (pure).
//! - [`engine`]: sends requests at those instants, drops at the in-flight cap.
//! - [`stats`]: per-interval and cumulative counters and latency histograms.
//! - [`rawlog`]: the optional per-request CSV, written off the request path.

pub mod engine;
pub mod rawlog;
pub mod schedule;
pub mod stats;

pub use self::engine::{start, Finished, LoadConfig, LoadError, LoadHandle, RequestSpec};
pub use self::rawlog::RawLogSummary;
pub use self::schedule::{CurveError, RateCurve, Schedule, Segment, Spacing};
pub use self::stats::{IntervalStats, StatusCounts};
