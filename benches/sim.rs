//! Issue 3's sim targets, measured on the release binary as a user runs it
//! (process wall time including the report): the 35-minute ramp, a 24-hour
//! daily curve, a sweep of 20 values, and peak RSS against run length.
//!
//! `cargo bench --bench sim` (add `-- --quick` for one repetition each).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_autoscale-harness");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the harness once; returns (wall seconds, peak RSS in MiB).
// Reaped with wait4 (for its own rusage) instead of Child::wait.
#[allow(clippy::zombie_processes)]
fn run(args: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    let child = Command::new(BIN)
        .current_dir(ROOT)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the harness binary starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = t.elapsed().as_secs_f64();
    assert!(pid > 0, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1,
        "{args:?} exited with status {status}"
    );
    (wall, ru.ru_maxrss as f64 / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(name: &str, reps: usize, target_s: f64, args: &[&str]) {
    let runs: Vec<(f64, f64)> = (0..reps).map(|_| run(args)).collect();
    let wall = median(runs.iter().map(|r| r.0).collect());
    let rss = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "{name:<34} median {wall:>6.2} s over {reps} (target < {target_s} s: {})  peak RSS {rss:.0} MiB",
        if wall < target_s { "met" } else { "MISSED" }
    );
}

/// A scenario of `hours` at a constant 60 req/s against seed 000's HPA,
/// one sample a minute, so the timeline stays small next to the engine.
fn constant_scenario(dir: &Path, hours: u32) -> String {
    let p = dir.join(format!("constant-{hours}h.yaml"));
    std::fs::write(
        &p,
        format!(
            "name: constant-{hours}h\nduration: {hours}h\nsample_interval: 60s\nmanifests:\n  \
             - {ROOT}/manifests/httpbin.yaml\n  - {ROOT}/manifests/hpa-ack-qps.yaml\n  \
             - {ROOT}/manifests/httproute.yaml\ntarget:\n  route: httpbin\n  hpa: ingress-hpa\n\
             load:\n  spacing: poisson\n  stages:\n    - {{ rate: 60, for: {hours}h }}\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 5 };
    let tmp = tempfile::tempdir().unwrap();
    let out = |n: &str| tmp.path().join(n).display().to_string();
    let sim = ["--backend", "sim", "--no-progress", "--out"];

    println!(
        "sim backend benchmarks ({} CPUs)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let o = out("ramp");
    timed(
        "ramp (35 min of experiment)",
        reps,
        1.0,
        &[&["experiment", "ramp"][..], &sim, &[&o]].concat(),
    );
    let o = out("daily");
    timed(
        "daily (24 h, Poisson, 10 s samples)",
        reps.min(3),
        5.0,
        &[&["experiment", "daily"][..], &sim, &[&o]].concat(),
    );
    let o = out("sweep");
    timed(
        "sweep of 20 values over the ramp",
        reps.min(3),
        10.0,
        &[
            "sweep",
            "ramp",
            "--set",
            "hpa:spec.metrics[1].pods.target.averageValue=11..30",
            "--out",
            &o,
        ],
    );

    println!("\npeak RSS against run length (constant 60 req/s, one sample a minute):");
    let mut first = None;
    for hours in [1, 4, 24] {
        let scen = constant_scenario(tmp.path(), hours);
        let o = out(&format!("c{hours}"));
        let (wall, rss) = run(&[&["experiment", &scen][..], &sim, &[&o]].concat());
        let timeline = std::fs::metadata(Path::new(&o).join("timeline.jsonl"))
            .map(|m| m.len() as f64 / (1 << 20) as f64)
            .unwrap_or(0.0);
        let base = *first.get_or_insert(rss);
        println!(
            "  {hours:>2} h: {wall:>6.2} s wall, peak RSS {rss:>5.1} MiB ({:+.1} MiB vs 1 h), timeline.jsonl {timeline:.1} MiB",
            rss - base
        );
    }
}
