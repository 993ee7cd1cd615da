//! The gateway tier on the embedded cluster: each instance serves its own
//! Prometheus `/metrics` (found through the run's `targets.json`, as a
//! Prometheus with file service discovery would find them), and when an
//! instance dies mid-run the gateway's Service stops sending to it within
//! one readiness-probe period, with the requests it lost counted.
use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autoscale_harness::recorder::load_run;
use serde_json::Value;

/// The readiness probe period of manifests/gateway.yaml.
const PROBE_PERIOD_S: f64 = 5.0;

/// Samples in the run's timeline so far.
fn samples(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("timeline.jsonl")).map_or(0, |t| t.lines().count())
}

/// The gateway instances' admin addresses with their pod names.
fn instances(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("targets.json")) else {
        return Vec::new();
    };
    let groups: Vec<Value> = serde_json::from_str(&text).unwrap();
    groups
        .iter()
        .filter(|g| g["labels"]["job"] == "api-gateway")
        .map(|g| {
            (
                g["labels"]["pod"].as_str().unwrap().to_owned(),
                g["targets"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A plain HTTP/1.1 exchange on loopback; the response's status and body.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Parses Prometheus text; every sample line must become a sample.
fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let sample_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "unparsed lines in\n{text}"
    );
    scrape
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric)
        .unwrap_or_else(|| panic!("no {metric}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{metric}: not a number"),
    }
}

#[test]
fn instances_serve_metrics_and_a_killed_one_leaves_the_service() {
    let _g = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "experiment",
            "tests/fixtures/gateway-kill.yaml",
            "--no-progress",
            "--speed",
            "10",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A third of the way in, both instances have served for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    while samples(dir.path()) < 20 {
        assert!(Instant::now() < deadline, "no 20 samples within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let found = instances(dir.path());
    assert_eq!(found.len(), 2, "two instances in targets.json: {found:?}");
    for (pod, addr) in &found {
        let (status, text) = http(addr, "GET", "/metrics");
        assert_eq!(status, 200, "{pod} /metrics");
        let m = parse_metrics(&text);
        assert!(value(&m, "gateway_requests_total") > 0.0, "{pod}:\n{text}");
        assert!(
            value(&m, "process_cpu_seconds_total") > 0.0,
            "{pod}:\n{text}"
        );
        assert!(value(&m, "gateway_in_flight") >= 0.0);
        assert!(
            m.samples
                .iter()
                .any(|s| s.metric == "gateway_route_requests_total"
                    && s.labels.get("route") == Some("default/httpbin")),
            "{pod}: no per-route counter in\n{text}"
        );
    }
    let (victim, addr) = &found[0];
    let (status, _) = http(addr, "POST", "/quitquitquit");
    assert_eq!(status, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("targets.json").exists(),
        "the live target list goes with the cluster"
    );

    let run = load_run(dir.path()).unwrap();
    let exit = run
        .events
        .iter()
        .find(|e| e.reason == "BackOff" && e.object == format!("Pod/{victim}"))
        .unwrap_or_else(|| panic!("no BackOff event for {victim}: {:#?}", run.events));
    assert!(
        exit.message.contains("exited with code 0"),
        "{}",
        exit.message
    );
    let t_kill = exit.t;

    // The requests it held were lost, and counted; none failed once it was
    // out of the Service's endpoints (at once, well within a probe period).
    let errors_at = |lo: f64, hi: f64| -> u64 {
        run.samples
            .iter()
            .filter(|s| s.t > lo && s.t <= hi)
            .map(|s| s.status.errors())
            .sum()
    };
    let lost = errors_at(t_kill - 1.0, t_kill + PROBE_PERIOD_S);
    assert!(
        lost > 0,
        "requests in flight at the kill must count as errors"
    );
    assert_eq!(errors_at(0.0, t_kill - 1.0), 0, "errors before the kill");
    assert_eq!(
        errors_at(t_kill + PROBE_PERIOD_S, f64::INFINITY),
        0,
        "the Service kept sending to the dead instance"
    );
    // About the ten it held (20 QPS × 1 s over two instances), not more.
    assert!(lost <= 20, "{lost} errors");

    // kubelet restarted it (the first restart is immediate) and it served again.
    let last = run.samples.last().unwrap();
    let pod = last
        .pods
        .iter()
        .find(|p| &p.name == victim)
        .unwrap_or_else(|| panic!("{victim} gone: {:?}", last.pods));
    assert_eq!(pod.restarts, 1);
    assert!(pod.ready);
    assert!(
        run.samples
            .iter()
            .filter(|s| s.t > t_kill + PROBE_PERIOD_S)
            .any(|s| s.pods.iter().any(|p| &p.name == victim && p.qps > 0.0)),
        "the restarted instance took load again"
    );
    // The backend behind the gateway is recorded as the other tier.
    assert!(last
        .tiers
        .iter()
        .any(|t| t.role == "backend" && t.deployment == "httpbin-deploy" && t.replicas.ready == 2));
}
