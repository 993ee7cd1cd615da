//! What the sim backend records for the shipped scenarios, pinned as
//! snapshots: the event list, summary.json and a digest of every sample.
//! Taken before the local and sim backends were moved onto one cluster core,
//! so any change of behaviour in such a move shows up here. Times of day,
//! paths and the machine are redacted; experiment times are not.

use crate::common;
use common::{show, sim_run};

use autoscale_harness::recorder::load_run;

/// summary.json with what differs between machines and runs taken out.
fn redacted_summary(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    if let Some(o) = v.as_object_mut() {
        for k in ["started_at", "run_dir", "environment", "scenario_path"] {
            if o.contains_key(k) {
                o.insert(k.into(), "[redacted]".into());
            }
        }
    }
    serde_json::to_string_pretty(&v).unwrap()
}

/// One line per event: experiment time, type, reason, object, from→to, message.
fn event_lines(run: &autoscale_harness::recorder::RunData) -> String {
    run.events
        .iter()
        .map(|e| {
            format!(
                "{:>9.2} {} {} {} {:?}->{:?} {}",
                e.t, e.type_, e.reason, e.object, e.from_replicas, e.to_replicas, e.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A short fingerprint of every sample: what the cluster did and what the
/// load saw, so the timeline as a whole is pinned without a huge snapshot.
fn sample_digest(run: &autoscale_harness::recorder::RunData) -> String {
    // FNV-1a: stable across toolchains, unlike std's DefaultHasher.
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |s: String| {
        for b in s.bytes().chain(std::iter::once(b'\n')) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
    };
    for s in &run.samples {
        let line = format!(
            "{:.3} {} {:.3} {} {} {} {} {} {} {} {:.3} {:.3} {}",
            s.t,
            s.stage,
            s.offered_qps,
            s.intended,
            s.sent,
            s.completed,
            s.dropped,
            s.replicas.spec,
            s.replicas.current,
            s.replicas.desired,
            s.latency_ms.p50,
            s.latency_ms.p99,
            s.pods.len(),
        );
        feed(line);
        for p in &s.pods {
            feed(format!("{} {:.3} {:.1}", p.phase, p.qps, p.cpu_millicores));
        }
        if let Some(hpa) = &s.hpa {
            for m in &hpa.metrics {
                feed(format!("{} {:?} {:?}", m.name, m.current, m.target));
            }
        }
    }
    format!("{} samples, digest {h:016x}", run.samples.len())
}

fn pin(scenario: &str) {
    let dir = tempfile::tempdir().unwrap();
    let o = sim_run(scenario, 1, dir.path());
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", show(&o));
    let run = load_run(dir.path()).unwrap();
    insta::assert_snapshot!(format!("{scenario}_events"), event_lines(&run));
    insta::assert_snapshot!(format!("{scenario}_summary"), redacted_summary(dir.path()));
    insta::assert_snapshot!(format!("{scenario}_samples"), sample_digest(&run));
}

#[test]
fn ramp_on_sim_is_pinned() {
    let _g = crate::common::shared();
    pin("ramp");
}

#[test]
fn ack_qps_on_sim_is_pinned() {
    let _g = crate::common::shared();
    pin("ack-qps");
}

#[test]
fn daily_on_sim_is_pinned() {
    let _g = crate::common::shared();
    pin("daily");
}
