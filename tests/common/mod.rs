//! Helpers shared by the end-to-end test files.
#![allow(dead_code)]

use std::process::Output;

use autoscale_harness::recorder::RunData;

/// Rescale events as (experiment seconds, new size).
pub fn sizes(run: &RunData) -> Vec<(f64, i32)> {
    run.events
        .iter()
        .filter(|e| e.is_rescale())
        .map(|e| (e.t, e.to_replicas.expect("rescales carry their new size")))
        .collect()
}

/// A finished command's output, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
