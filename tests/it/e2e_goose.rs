//! The closed model end to end: `scenarios/journey.yaml` runs Goose users on
//! the embedded cluster at high speed (real HTTP on loopback, bounded in
//! time, stopping by itself), and its timeline, events and verdict come out
//! as an open-model run's do. Runs are serialized: two at once on a 2-core
//! machine would distort timing.
use crate::common;
use common::{show, sizes};

use std::process::Command;

use autoscale_harness::recorder::load_run;

#[test]
fn journey_users_drive_scale_out_and_scale_in() {
    let _g = crate::common::alone();
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let o = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(root)
        .args([
            "experiment",
            "journey",
            "--no-progress",
            "--speed",
            "20",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .expect("the harness binary runs");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("PASSED: 5 of 5 expectations held"),
        "{stdout}"
    );
    // Goose's own report, per-request warnings and run folder stay off.
    assert!(!stdout.contains("PER REQUEST METRICS"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("goose:"),
        "{}",
        show(&o)
    );
    assert!(!std::path::Path::new(root).join("goose-runs").exists());

    let data = load_run(dir.path()).unwrap();
    assert_eq!(data.samples.len(), 240, "one sample per experiment-second");
    let peak = data.samples.iter().filter_map(|s| s.users).max();
    assert_eq!(peak, Some(30), "the stages ramp to 30 users");
    // Closed model: whatever users intend they send; nothing dropped or late.
    for s in &data.samples {
        assert_eq!((s.intended, s.dropped, s.late), (s.sent, 0, 0), "t={}", s.t);
        assert_eq!(s.offered_qps, s.sent as f64, "t={}", s.t);
    }
    // While 30 users hold (40s-100s; Goose may end a hold up to 10 s late at
    // speed 20, never early), each sends about once per think time (~1 s).
    let hold: Vec<_> = data
        .samples
        .iter()
        .filter(|s| (50.0..=95.0).contains(&s.t))
        .collect();
    let rate = hold.iter().map(|s| s.completed).sum::<u64>() as f64 / hold.len() as f64;
    assert!(
        (18.0..=32.0).contains(&rate),
        "{rate} requests/s from 30 users"
    );
    assert!(hold.iter().all(|s| s.users == Some(30)));
    // Users leave at the end of the stages (110 s, plus Goose's hold tick).
    let after = data.samples.iter().find(|s| s.t == 140.0).unwrap();
    assert_eq!((after.users, after.sent), (Some(0), 0));

    let s = sizes(&data);
    assert_eq!(s.first().map(|x| x.1), Some(2), "first rescale 1→2: {s:?}");
    assert!(
        s.iter().any(|x| x.1 >= 3),
        "~30 requests/s at 10 per pod: {s:?}"
    );
    assert_eq!(
        s.last().map(|x| x.1),
        Some(1),
        "back to 1 after the users: {s:?}"
    );
    let up = data.events.iter().find(|e| e.is_rescale()).unwrap();
    let offered = up.offered_qps.unwrap();
    assert!(
        offered > 5.0 && offered < 35.0,
        "users sent {offered}/s at the scale-out"
    );
    assert!(
        up.message.contains("http_requests_per_second above target"),
        "{}",
        up.message
    );
}

#[test]
fn sim_backend_refuses_the_users_model() {
    let o = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "experiment",
            "journey",
            "--backend",
            "sim",
            "--out",
            "/tmp/ah-never-used",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("runs on `--backend local` only"),
        "{}",
        show(&o)
    );
    assert!(!std::path::Path::new("/tmp/ah-never-used").exists());
}

/// Goose installs a Ctrl-C handler of its own when an attack starts; the
/// harness's interrupt handling (stop, clean up, partial report, exit 130)
/// must still get the signal.
#[cfg(unix)]
#[test]
fn interrupt_during_a_goose_attack_still_cleans_up() {
    let _g = crate::common::alone();
    let dir = tempfile::tempdir().unwrap();
    let data = common::interrupt_after("journey", 20, 30, dir.path());
    assert!(data.samples.len() >= 30 && data.samples.len() < 240);
    assert!(data.samples.iter().any(|s| s.users.unwrap_or(0) > 0));
}
