//! Command pods on the embedded cluster (issue 12, items 5 and 6): their
//! processes die with the harness, also when it is SIGKILLed; a pod whose
//! program exits is recorded, taken out of the endpoints and restarted; one
//! that exits before it was ever ready ends the start-up at once.
//!
//! The pods run tests/fixtures/command-pods/server.py; runs are serialized,
//! as two at once on a 2-core machine would distort their timing.
#![cfg(target_os = "linux")]

use crate::common;
use common::show;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autoscale_harness::recorder::{load_run, RunData};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The fixture scenario with `command` as its pods' program, written into `dir`.
fn scenario(dir: &Path, command: &str) -> PathBuf {
    let fixtures = format!("{ROOT}/tests/fixtures/command-pods");
    let mut text = std::fs::read_to_string(format!("{fixtures}/scenario.yaml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("command:"))
        .expect("the fixture has a command")
        .to_owned();
    let quoted = command.replace('\'', "''");
    text = text
        .replace(&line, &format!("    command: '{quoted}'"))
        .replace("  - app.yaml", &format!("  - {fixtures}/app.yaml"));
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn server() -> String {
    format!("python3 {ROOT}/tests/fixtures/command-pods/server.py {{port}}")
}

fn experiment(scenario: &Path, speed: u32, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"));
    c.current_dir(ROOT)
        .arg("experiment")
        .arg(scenario)
        .args(["--no-progress", "--speed", &speed.to_string(), "--out"])
        .arg(out);
    c
}

/// Live processes (zombies are dead) whose command line contains `marker`:
/// (pid, command line).
fn processes_with(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let i = s.rfind(')')?;
                s[i + 1..].split_whitespace().next().map(|st| st == "Z")
            })
            .unwrap_or(true);
        if cmdline.contains(marker) && !zombie {
            found.push((pid, cmdline));
        }
    }
    found
}

#[test]
fn sigkill_of_the_harness_leaves_no_pod_process() {
    let _g = crate::common::alone();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!(
        "pods-outlive-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    // Not `exec`: the server is the shell's child, so the parent-death
    // signal (which reaches only the shell) is not enough on its own.
    let scen = scenario(
        dir.path(),
        &format!("{} --tag {marker}; echo server ended", server()),
    );
    let mut child = experiment(&scen, 5, &dir.path().join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both pods serving: the load has started.
    let timeline = dir.path().join("run/timeline.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&timeline).map_or(0, |t| t.lines().count()) < 1 {
        assert!(Instant::now() < deadline, "no sample within 30 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = processes_with(&marker);
    let servers = before
        .iter()
        .filter(|(_, c)| c.contains("server.py"))
        .count();
    assert!(servers >= 4, "2 shells and 2 servers expected: {before:#?}");
    assert!(child.try_wait().unwrap().is_none(), "the run ended early");
    child.kill().unwrap(); // SIGKILL: no destructor, no signal handler runs
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for (pid, _) in &left {
                // SAFETY: signalling leftovers of this test by pid.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            panic!("pod processes outlived the harness by 5 s: {left:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one pod that crashes (the first to create `crashed`) serves 15
/// requests, exits with 7 and, restarted, serves on.
#[test]
fn a_crashing_pod_is_recorded_taken_out_and_restarted() {
    let _g = crate::common::alone();
    let dir = tempfile::tempdir().unwrap();
    let once = dir.path().join("crashed");
    let scen = scenario(
        dir.path(),
        &format!(
            "exec {} --exit-after 15 --code 7 --once {}",
            server(),
            once.display()
        ),
    );
    let out = dir.path().join("run");
    let o = experiment(&scen, 10, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let run = load_run(&out).unwrap();

    // The exit, as kubelet would report it, with what the program said.
    let crashes: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.reason == "BackOff")
        .collect();
    // Each pod's own timeline: a pod that got no traffic shows at once.
    let timelines: Vec<String> = run.samples.first().map_or(vec![], |s| {
        s.pods
            .iter()
            .map(|p| format!("{}:\n{}", p.name, timeline(&run, &p.name)))
            .collect()
    });
    assert_eq!(
        crashes.len(),
        1,
        "{}\n{}",
        run.events
            .iter()
            .map(|e| format!("{} {} {} {}", e.t, e.reason, e.object, e.message))
            .collect::<Vec<_>>()
            .join("\n"),
        timelines.join("\n")
    );
    let crash = crashes[0];
    assert_eq!(crash.type_, "Warning");
    assert_eq!(crash.source, "kubelet");
    for part in [
        "Restarting failed container server in pod ",
        " at once (restart 1): it exited with code 7 after ",
        "last output: listening on 127.0.0.1:",
        "served 15 requests, exiting with code 7 on purpose",
    ] {
        assert!(crash.message.contains(part), "{part:?} in {crash:?}");
    }
    let pod = crash.object.strip_prefix("Pod/").unwrap().to_owned();
    assert!(
        run.events.iter().any(|e| e.reason == "Started"
            && e.object == crash.object
            && e.t >= crash.t
            && e.message == "Started container server again (restart 1)"),
        "no restart: {:#?}",
        run.events
    );
    // 15 requests at 5 a second each, after the start.
    assert!((1.0..8.0).contains(&crash.t), "crash at {}", crash.t);

    // Not ready and sent nothing from the exit until ready again, then
    // serving with its restart counted; the other pod took the load.
    let of = |s: &autoscale_harness::recorder::Sample| {
        s.pods.iter().find(|p| p.name == pod).cloned().unwrap()
    };
    let after: Vec<_> = run.samples.iter().filter(|s| s.t > crash.t).collect();
    let down: Vec<_> = after.iter().take_while(|s| !of(s).ready).collect();
    assert!(
        down.len() >= 2,
        "not ready for a few samples after the exit: {}",
        timeline(&run, &pod)
    );
    for s in &down {
        assert_eq!(of(s).restarts, 1, "{}", timeline(&run, &pod));
        if s.t - 1.0 >= crash.t {
            assert_eq!(
                of(s).qps,
                0.0,
                "routed after the exit: {}",
                timeline(&run, &pod)
            );
            let all: f64 = s.pods.iter().map(|p| p.qps).sum();
            assert!(all >= 8.0, "the other pod took the load: {s:?}");
        }
    }
    let back = after
        .iter()
        .skip(down.len())
        .filter(|s| of(s).qps > 0.0)
        .count();
    assert!(back >= 3, "serving again: {}", timeline(&run, &pod));
    let errors: u64 = run
        .samples
        .iter()
        .map(|s| s.status.total() - s.status.s2xx)
        .sum();
    assert!(errors <= 3, "{errors} failed requests");
}

/// `t ready qps restarts` of one pod, per sample, for assertion messages.
fn timeline(run: &RunData, pod: &str) -> String {
    run.samples
        .iter()
        .filter_map(|s| {
            let p = s.pods.iter().find(|p| p.name == pod)?;
            Some(format!("{} {} {} {}", s.t, p.ready, p.qps, p.restarts))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_pod_that_exits_at_start_up_ends_the_run_at_once() {
    let _g = crate::common::alone();
    let dir = tempfile::tempdir().unwrap();
    let scen = scenario(
        dir.path(),
        "echo cannot read config for port {port} >&2; exit 5",
    );
    // At speed 1 the ready timeout (1m) is a real minute away.
    let t0 = Instant::now();
    let o = experiment(&scen, 1, &dir.path().join("run"))
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a pod failed to start: pod app-")
            && err.contains(" exited with code 5 before it became ready")
            && err.contains("its last output:\n    cannot read config for port "),
        "{err}"
    );
    let events = std::fs::read_to_string(dir.path().join("run/events.jsonl")).unwrap();
    assert!(
        events.contains("\"reason\":\"BackOff\"") && events.contains("exited with code 5"),
        "{events}"
    );
}
