//! Issue 15's Lua targets: one policy call (seed 003's script and the
//! latency policy, function form) under 50 µs, and the 35-minute ramp on
//! sim with the Lua policy under 1 s of process wall time.
//!
//! `cargo bench --bench lua` (add `-- --quick` for one repetition).

use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_autoscale-harness");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    for (name, file) in [
        ("policies/cpu.lua", "policies/cpu.lua"),
        ("policies/latency.lua", "policies/latency.lua"),
    ] {
        let src = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
        let us = autoscale_harness::lua::bench_policy_call(name, &src, 100_000);
        println!(
            "{name:<24} {us:>7.2} µs per call (target < 50 µs: {})",
            if us < 50.0 { "met" } else { "MISSED" }
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let reps = if quick { 1 } else { 5 };
    let mut walls: Vec<f64> = (0..reps)
        .map(|i| {
            let out = tmp.path().join(format!("r{i}"));
            let t = Instant::now();
            let st = Command::new(BIN)
                .current_dir(ROOT)
                .args([
                    "experiment",
                    "lua-cpu",
                    "--backend",
                    "sim",
                    "--no-progress",
                    "--out",
                ])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("the harness binary starts");
            assert!(
                st.code().is_some_and(|c| c <= 1),
                "lua-cpu exited with {st}"
            );
            t.elapsed().as_secs_f64()
        })
        .collect();
    walls.sort_by(f64::total_cmp);
    let wall = walls[walls.len() / 2];
    println!(
        "lua-cpu ramp on sim (35 min)   median {wall:.2} s over {reps} (target < 1 s: {})",
        if wall < 1.0 { "met" } else { "MISSED" }
    );
}
