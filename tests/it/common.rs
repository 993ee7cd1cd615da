//! Helpers shared by the end-to-end test files.

use std::process::Output;

use std::path::Path;

use autoscale_harness::recorder::RunData;

/// The harness binary with `args`, run from the repository root.
pub fn harness<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

/// `experiment SCENARIO --backend sim --seed SEED --out DIR`.
pub fn sim_run(scenario: &str, seed: u64, dir: &Path) -> Output {
    let seed = seed.to_string();
    let args: [&std::ffi::OsStr; 9] = [
        "experiment".as_ref(),
        scenario.as_ref(),
        "--backend".as_ref(),
        "sim".as_ref(),
        "--no-progress".as_ref(),
        "--seed".as_ref(),
        seed.as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
    ];
    harness(args)
}

/// Rescale events as (experiment seconds, new size).
pub fn sizes(run: &RunData) -> Vec<(f64, i32)> {
    run.events
        .iter()
        .filter(|e| e.is_rescale())
        .map(|e| (e.t, e.to_replicas.expect("rescales carry their new size")))
        .collect()
}

/// Every change of spec.replicas, from the HPA or from a schedule's job:
/// (experiment seconds, new size).
pub fn all_sizes(run: &RunData) -> Vec<(f64, i32)> {
    run.events
        .iter()
        .filter(|e| e.is_rescale() || e.is_firing())
        .filter_map(|e| Some((e.t, e.to_replicas?)))
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

/// Starts `experiment SCENARIO --speed N`, waits until `samples` lines are
/// in the timeline (bounded: 60 s), sends SIGINT, and checks the run ended
/// with exit 130, marked interrupted, with a report. Returns the record.
#[cfg(unix)]
pub fn interrupt_after(scenario: &str, speed: u32, samples: usize, dir: &Path) -> RunData {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "experiment",
            scenario,
            "--no-progress",
            "--speed",
            &speed.to_string(),
            "--out",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let timeline = dir.join("timeline.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&timeline).map_or(0, |t| t.lines().count()) < samples {
        assert!(
            std::time::Instant::now() < deadline,
            "no {samples} samples within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child by pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let data = autoscale_harness::recorder::load_run(dir).unwrap();
    assert!(data.meta.interrupted);
    assert!(dir.join("report.html").is_file());
    data
}

static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// A test that may share the machine with another (an end-to-end run that
/// needs a fraction of a core and mostly waits on the experiment clock).
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// A test whose result depends on timing or CPU (load at full rate, the
/// borderline agreement run): the machine to itself.
pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}
