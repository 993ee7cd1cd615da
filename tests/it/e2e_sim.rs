//! End-to-end runs of the shipped scenarios on the `sim` backend: the real
//! binary, a virtual clock, no sockets. Each run takes well under a second.

use crate::common;
use common::{assert_run_files, show, sizes};

use std::path::Path;
use std::process::Output;

use autoscale_harness::recorder::load_run;

fn run(scenario: &str, seed: u64, dir: &Path) -> Output {
    common::sim_run(scenario, seed, dir)
}

#[test]
fn ramp_in_sim_matches_the_local_backend() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = run("ramp", 1, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("PASSED: 7 of 7"),
        "{}",
        show(&o)
    );
    assert_run_files(dir.path());
    let data = load_run(dir.path()).unwrap();
    assert_eq!(data.meta.backend, "sim");
    assert_eq!(data.meta.speed, 1.0);
    assert_eq!(data.samples.len(), 2100, "one sample per experiment-second");
    let s = sizes(&data);
    // The local backend at speed 30 and 10: 2→3 at ~689 s, 3→2 at ~2025-2040 s.
    assert_eq!(
        s.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![3, 2],
        "{s:?}"
    );
    assert!((s[0].0 - 689.0).abs() <= 15.0, "{s:?}");
    assert!((s[1].0 - 2030.0).abs() <= 30.0, "{s:?}");
    let up = data.events.iter().find(|e| e.is_rescale()).unwrap();
    assert!(
        up.message.starts_with("New size: 3; reason: "),
        "{}",
        up.message
    );
    let back = data.events.iter().rfind(|e| e.is_rescale()).unwrap();
    assert_eq!(
        back.message,
        "New size: 2; reason: All metrics below target"
    );
}

#[test]
fn ack_qps_in_sim_scales_out_and_back_to_one() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = run("ack-qps", 1, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let data = load_run(dir.path()).unwrap();
    let s = sizes(&data);
    let peak = s.iter().map(|x| x.1).max().unwrap_or(1);
    assert!(
        peak >= 3,
        "35 QPS at 10 per pod needs at least 3 pods: {s:?}"
    );
    assert_eq!(s.last().map(|x| x.1), Some(1), "back to 1: {s:?}");
    let up = data.events.iter().find(|e| e.is_rescale()).unwrap();
    assert!(
        up.message.contains("external metric sls_ingress_qps(")
            && up.message.ends_with("above target"),
        "{}",
        up.message
    );
}

#[test]
fn same_seed_same_timeline() {
    let _g = crate::common::shared();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        let o = run("ack-qps", 7, d.path());
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    for f in ["timeline.jsonl", "events.jsonl"] {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let y = std::fs::read(b.path().join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(x == y, "{f} differs between two runs with the same seed");
    }
}

fn sweep(args: &[&str]) -> Output {
    common::harness(std::iter::once(&"sweep").chain(args))
}

#[test]
fn sweep_runs_each_value_and_writes_a_combined_page() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sw");
    let o = sweep(&[
        "ramp",
        "--set",
        "hpa:spec.metrics[1].pods.target.averageValue=20,40",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("1 of 2 runs passed every expectation"),
        "{stdout}"
    );
    // The setting reached the HPA: the first scale-out comes later at the
    // higher target, as the CSV says.
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let first = header
        .iter()
        .position(|h| *h == "first_scale_out_s")
        .unwrap();
    let at = |r: &Vec<&str>| r[first].parse::<f64>().unwrap();
    assert_eq!((rows[0][0], rows[1][0]), ("20", "40"), "{csv}");
    assert!(at(&rows[1]) > at(&rows[0]) + 300.0, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for r in json["runs"].as_array().unwrap() {
        let d = r["dir"].as_str().unwrap();
        assert!(html.contains(&format!("{d}/report.html")), "{d}");
        assert!(out.join(d).join("report.html").is_file(), "{d}");
    }
}

#[test]
fn sweep_rejects_a_misspelt_field_with_exit_2() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = sweep(&[
        "ramp",
        "--set",
        "hpa:spec.maxReplica=3",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--set hpa:spec.maxReplica") && err.contains("unknown field `maxReplica`"),
        "{err}"
    );
    let o = sweep(&["ramp", "--set", "hpa:spec.maxReplicas=x"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn daily_curve_runs_a_day_and_passes() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = run("daily", 1, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let data = load_run(dir.path()).unwrap();
    assert_eq!(data.samples.len(), 8640, "one sample per 10 s for 24 h");
    // The HPA followed the curve both ways more than once.
    let s = sizes(&data);
    let downs = s.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert!(s.len() >= 10 && downs >= 3, "{s:?}");
}

#[test]
fn run_directories_are_never_reused_silently_nor_placed_by_the_name() {
    let _g = crate::common::shared();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let o = run("smoke", 1, &out);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // A second run into the same directory is refused before it starts.
    let o = run("smoke", 2, &out);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("holds a previous run's record; pass --overwrite"),
        "{err}"
    );
    // Unless asked to replace it.
    let o = common::harness([
        "experiment".as_ref(),
        "smoke".as_ref(),
        "--backend".as_ref(),
        "sim".as_ref(),
        "--no-progress".as_ref(),
        "--seed".as_ref(),
        "3".as_ref(),
        "--overwrite".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(load_run(&out).unwrap().meta.seed, 3);
    // A hostile name still lands in one folder under ./reports.
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/scenarios/smoke.yaml"))
        .unwrap()
        .replace("name: smoke", "name: ../../escaped")
        .replace("../manifests/", &format!("{root}/manifests/"));
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("hostile.yaml"), text).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(&work)
        .args([
            "experiment",
            "hostile.yaml",
            "--backend",
            "sim",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let made: Vec<String> = std::fs::read_dir(work.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        made.len() == 1 && made[0].starts_with("escaped-"),
        "{made:?}"
    );
    assert!(!t.path().join("escaped").exists() && !Path::new(root).join("escaped").exists());
}

#[test]
fn schedule_rows_of_seed_001_hold_on_sim() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = run("schedule", 1, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let data = load_run(dir.path()).unwrap();
    let firings: Vec<(f64, &str)> = data
        .events
        .iter()
        .filter(|e| e.is_firing())
        .map(|e| (e.t, e.message.as_str()))
        .collect();
    assert_eq!(
        firings,
        [
            (300.0, "cron hpa job schedule-5 executed successfully. Skip scale replicas because HPA httpbin in namespace default current replicas:5 >= desired replicas:5."),
            (600.0, "cron hpa job schedule-3 executed successfully. Skip scale replicas because HPA httpbin in namespace default current replicas:5 >= desired replicas:3."),
            (900.0, "cron hpa job schedule-7 executed successfully. current replicas:5, desired replicas:7."),
        ]
    );
    // The only change of size is the schedule's, and the HPA holds it.
    assert_eq!(crate::common::all_sizes(&data), [(900.0, 7)]);
    let sc = data
        .meta
        .schedule
        .as_ref()
        .expect("run.json records the schedule");
    assert_eq!(sc.clock_start, "2026-12-01T08:55:00+00:00[UTC]");
    let fires: Vec<Vec<f64>> = sc.jobs.iter().map(|j| j.fires_at.clone()).collect();
    assert_eq!(fires, [vec![300.0], vec![600.0], vec![900.0]]);
    // The range in the timeline steps at the third firing.
    let range = |t: f64| {
        let s = data.samples.iter().find(|s| s.t >= t).unwrap();
        let h = s.hpa.as_ref().unwrap();
        (h.min_replicas, h.max_replicas)
    };
    assert_eq!(range(899.0), (Some(1), Some(10)));
    assert_eq!(range(901.0), (Some(7), Some(10)));
}

#[test]
fn daily_schedule_beats_the_metric_only_hpa_on_the_same_curve() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let o = sweep(&[
        "daily-schedule",
        "--set",
        "schedule.controller=off,harness",
        "--out",
        out.to_str().unwrap(),
    ]);
    // A sweep exits 0 whatever the verdicts: it is for comparing.
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(show(&o).contains("1 of 2 runs passed"), "{}", show(&o));
    let off = load_run(&out.join("01-controller=off")).unwrap();
    let on = load_run(&out.join("02-controller=harness")).unwrap();
    assert!(off.meta.schedule.is_none() && on.meta.schedule.is_some());
    let errors = |r: &autoscale_harness::recorder::RunData| -> u64 {
        r.samples
            .iter()
            .map(|s| s.status.errors() + s.dropped)
            .sum()
    };
    assert!(
        errors(&off) > 1000,
        "the surge overwhelms the metric-only HPA: {}",
        errors(&off)
    );
    assert_eq!(errors(&on), 0);
    // The schedule brought the pods up before the surge, not the metric.
    let at = |r: &autoscale_harness::recorder::RunData, t: f64| {
        r.samples.iter().find(|s| s.t >= t).unwrap().replicas.spec
    };
    assert_eq!((at(&off, 8.9 * 3600.0), at(&on, 8.9 * 3600.0)), (1, 6));
}
