//! Helpers shared by the end-to-end test files.
#![allow(dead_code)]

use std::process::Output;

use std::path::Path;

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

/// Issue 3's agreement rule between two runs of one scenario: the same
/// sequence of replica sizes, each change within one sync period (15 s).
pub fn assert_agree(name: &str, a: &[(f64, i32)], b: &[(f64, i32)]) {
    assert_eq!(
        a.iter().map(|s| s.1).collect::<Vec<_>>(),
        b.iter().map(|s| s.1).collect::<Vec<_>>(),
        "{name}: sizes differ: {a:?} vs {b:?}"
    );
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x.0 - y.0).abs() <= 15.0,
            "{name}: change to {} more than one sync period apart: {a:?} vs {b:?}",
            x.1
        );
    }
}

/// Every file a finished run leaves in its directory.
pub fn assert_run_files(dir: &Path) {
    for f in [
        "report.html",
        "summary.json",
        "junit.xml",
        "timeline.jsonl",
        "events.jsonl",
        "run.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
}
