use std::collections::BTreeMap;

use crate::checks::{CheckResult, Verdict};
use crate::recorder::{
    Event, HpaSample, MetricSample, Percentiles, PodSample, Replicas, RunData, RunMeta, Sample,
    StatusCounts,
};

use super::*;

const CPU: &str = "cpu resource utilization (percentage of request)";
const QPS: &str = "pods metric http_requests_per_second";
const POD_A: &str = "httpbin-6d9f7c8b5-4xk2p";
const POD_B: &str = "httpbin-6d9f7c8b5-9qz7m";
const POD_C: &str = "httpbin-6d9f7c8b5-tw8rd";

/// The paper's experiment, synthesized: a 35-minute run at 1 s samples; load
/// ramps 0→110 QPS over 27 min, holds to 28 min, then stops; 2 pods, 3 from
/// 11m40s (ready 15 s later), back to 2 at 34m; a few 5xx just before scale-out.
pub(crate) fn fixture() -> (RunData, Verdict) {
    let offered = |t: f64| {
        if t <= 1620.0 {
            110.0 * t / 1620.0
        } else if t <= 1680.0 {
            110.0
        } else {
            0.0
        }
    };
    let mut samples = vec![];
    for i in 1..=2100u32 {
        let t = i as f64;
        let q = offered(t);
        let desired = if (700.0..2040.0).contains(&t) { 3 } else { 2 };
        let ready = if (715.0..2040.0).contains(&t) { 3 } else { 2 };
        let third_exists = (700.0..2040.0).contains(&t);
        let per_pod = q / ready as f64;
        // Deterministic jitter so lines look measured, and a slight imbalance
        // between pods so their lines can be told apart.
        let jitter = ((i * 7919) % 101) as f64 / 100.0 - 0.5;
        let mut pods: Vec<PodSample> = [(POD_A, 1.05), (POD_B, 0.95)]
            .iter()
            .map(|(n, w)| PodSample {
                name: n.to_string(),
                phase: "Running".into(),
                ready: true,
                qps: per_pod * w,
                cpu_millicores: per_pod * w * 3.5,
                cpu_utilization: Some(per_pod * w * 3.5 + 2.0 + jitter * 3.0),
                memory_bytes: 64 << 20,
                in_flight: 1,
                ..Default::default()
            })
            .collect();
        if third_exists {
            let up = ready == 3;
            pods.push(PodSample {
                name: POD_C.into(),
                phase: if up { "Running" } else { "Pending" }.into(),
                ready: up,
                qps: if up { per_pod } else { 0.0 },
                cpu_millicores: if up { per_pod * 3.5 } else { 0.0 },
                cpu_utilization: Some(if up { per_pod * 3.5 + 2.0 } else { 0.0 }),
                ..Default::default()
            });
        }
        let five_xx = if (695.0..700.0).contains(&t) { 2 } else { 0 };
        let completed = (q * (1.0 + 0.04 * jitter)).round() as u64;
        // Latency climbs as the two pods near saturation before the third is ready.
        let load = (per_pod / 28.0).min(0.97);
        let base = 4.0 / (1.0 - load);
        let hpa_cpu = pods.iter().filter_map(|p| p.cpu_utilization).sum::<f64>() / ready as f64;
        samples.push(Sample {
            latency_hdr: None,
            t,
            stage: if t <= 1620.0 {
                "ramp_to 110 over 27m".into()
            } else if t <= 1680.0 {
                "hold 110 for 1m".into()
            } else {
                "idle".into()
            },
            offered_qps: q,
            intended: completed,
            sent: completed,
            completed,
            dropped: 0,
            late: 0,
            status: StatusCounts {
                s2xx: completed - five_xx.min(completed),
                s5xx: five_xx.min(completed),
                ..Default::default()
            },
            latency_ms: Percentiles {
                p50: base,
                p90: base * 1.8,
                p99: base * 3.2,
                p999: base * 4.0,
                max: base * 5.0,
            },
            service_ms: Percentiles {
                p50: base * 0.9,
                p90: base * 1.6,
                p99: base * 2.6,
                p999: base * 3.5,
                max: base * 4.5,
            },
            ttfb_ms: None,
            send_lateness_ms: None,
            users: None,
            replicas: Replicas {
                spec: desired,
                current: if third_exists { 3 } else { 2 },
                ready,
                desired,
            },
            pods,
            hpa: Some(HpaSample {
                min_replicas: None,
                max_replicas: None,
                name: "httpbin".into(),
                metrics: vec![
                    MetricSample {
                        name: CPU.into(),
                        current: hpa_cpu,
                        target: 80.0,
                        unit: "%".into(),
                    },
                    MetricSample {
                        name: QPS.into(),
                        current: q / ready as f64,
                        target: 20.0,
                        unit: String::new(),
                    },
                ],
                conditions: vec![],
            }),
            tiers: Vec::new(),
        });
    }
    let ev = |t: f64, type_: &str, reason: &str, object: &str, source: &str, msg: &str| Event {
        t,
        type_: type_.into(),
        reason: reason.into(),
        object: object.into(),
        source: source.into(),
        message: msg.into(),
        ..Default::default()
    };
    let hpa = "HorizontalPodAutoscaler/httpbin";
    let events = vec![
        Event {
            from_replicas: Some(2),
            to_replicas: Some(3),
            offered_qps: Some(offered(700.0)),
            ..ev(
                700.0,
                "Normal",
                "SuccessfulRescale",
                hpa,
                "horizontal-pod-autoscaler",
                "New size: 3; reason: pods metric http_requests_per_second above target",
            )
        },
        ev(
            700.4,
            "Normal",
            "ScalingReplicaSet",
            "Deployment/httpbin",
            "deployment-controller",
            "Scaled up replica set httpbin-6d9f7c8b5 from 2 to 3",
        ),
        ev(
            701.0,
            "Normal",
            "Scheduled",
            &format!("Pod/{POD_C}"),
            "default-scheduler",
            "Successfully assigned default/httpbin-6d9f7c8b5-tw8rd to kind-worker",
        ),
        ev(
            702.0,
            "Warning",
            "FailedGetPodsMetric",
            hpa,
            "horizontal-pod-autoscaler",
            "unable to get metric http_requests_per_second: <no data> for pod httpbin-6d9f7c8b5-tw8rd",
        ),
        ev(1680.0, "Normal", "LoadStopped", "Harness/run", "autoscale-harness", "offered load stopped"),
        Event {
            from_replicas: Some(3),
            to_replicas: Some(2),
            offered_qps: Some(0.0),
            ..ev(
                2040.0,
                "Normal",
                "SuccessfulRescale",
                hpa,
                "horizontal-pod-autoscaler",
                "New size: 2; reason: All metrics below target",
            )
        },
    ];
    let meta = RunMeta {
        scenario_name: "paper-fig7".into(),
        scenario_path: "scenarios/paper-fig7.yaml".into(),
        scenario_text: "name: paper-fig7\n# <b>not bold</b> & \"quoted\"\nload:\n  - ramp_to: 110\n    over: 27m\n  - hold: 1m\n  - idle: 7m\nexpect:\n  scale_out: {from: 2, to: 3, between: [10m, 14m]}\n".into(),
        backend: "kind".into(),
        speed: 1.0,
        seed: 42,
        started_at: "2025-06-01T10:00:00Z".into(),
        duration_s: 2100.0,
        load_stop_s: 1680.0,
        interval_s: 1.0,
        hpa_name: "default/httpbin".into(),
        min_replicas: 2,
        max_replicas: 10,
        interrupted: false,
        ended_at_s: 2100.0,
        pod_qps_unobservable: None,
        unrecorded_in_flight: None,
        tiers: Vec::new(),
        schedule: None,
        policy: None,
        finished: true,
        environment: BTreeMap::from([
            ("harness".to_string(), "0.1.0".to_string()),
            ("kubernetes".to_string(), "v1.34.0".to_string()),
        ]),
    };
    let verdict = Verdict {
        checks: vec![
            CheckResult {
                name: "scale_out 2→3".into(),
                bound: "between 10m-14m at 40-50 QPS offered".into(),
                measured: "at 11m40s with 47.5 QPS offered".into(),
                passed: true,
                not_evaluated: None,
            },
            CheckResult {
                name: "scale_in 3→2".into(),
                bound: "within 10m of load stop".into(),
                measured: "6m after load stop".into(),
                passed: true,
                not_evaluated: None,
            },
            CheckResult {
                name: "max_replicas".into(),
                bound: "≤ 3".into(),
                measured: "3".into(),
                passed: true,
                not_evaluated: None,
            },
            CheckResult {
                name: "error_ratio".into(),
                bound: "< 0.01%".into(),
                measured: "0.0104% (10 of 95 760)".into(),
                passed: false,
                not_evaluated: None,
            },
        ],
    };
    (
        RunData {
            meta,
            samples,
            events,
        },
        verdict,
    )
}

#[test]
fn renders_the_fixture() {
    let (run, verdict) = fixture();
    let a = render(&run, &verdict).unwrap();
    let h = &a.html;
    for id in [
        "verdict", "fig7", "fig8", "latency", "errors", "events", "scenario",
    ] {
        assert!(
            h.contains(&format!("<section id=\"{id}\">")),
            "missing section {id}"
        );
    }
    assert!(h.contains("Fig. 7"));
    assert!(h.contains("Fig. 8"));
    assert!(h.contains("FAILED"));
    assert!(!h.contains("INTERRUPTED"));
    // Fig. 7, two per-pod charts, two HPA metric charts, latency, errors.
    assert_eq!(h.matches("<svg role=\"img\"").count(), 7);
    assert!(h.contains("→3") && h.contains("→2"));
    assert!(h.contains("# &lt;b&gt;not bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
    assert!(!h.contains("<b>not bold</b>"));
    assert!(h.contains("&lt;no data&gt;"));
    assert!(h.contains("11m40s  horizontal-pod-autoscaler  New size: 3"));
    // Self-contained: nothing loaded from elsewhere.
    assert!(!h.contains("<script") && !h.contains("<link") && !h.contains("src=\"http"));

    let j = &a.junit_xml;
    assert_eq!(j.matches("<testcase ").count(), 4);
    assert_eq!(j.matches("<failure").count(), 1);
    assert!(j.contains("tests=\"4\"") && j.contains("failures=\"1\""));
    assert!(j.contains("classname=\"autoscale-harness.paper-fig7\""));
    assert!(j.contains("expected &lt; 0.01%, measured 0.0104% (10 of 95 760)"));
    assert!(j.contains("<system-out>Events:"));

    let s: serde_json::Value = serde_json::from_str(&a.summary_json).unwrap();
    assert_eq!(s["passed"], false);
    assert_eq!(s["totals"]["status"]["5xx"], 10);
    assert_eq!(s["first_scale_out"]["t"], 700.0);
    assert_eq!(s["last_scale_in"]["to"], 2);
}

#[test]
fn events_block_snapshot() {
    let (run, _) = fixture();
    // Named without the module path so the snapshot survives the move into the main crate.
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_events_block", events::block(&run));
    });
}

#[test]
fn summary_snapshot() {
    let (run, verdict) = fixture();
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_summary_json", summary::render(&run, &verdict).unwrap());
    });
}

#[test]
fn empty_run_renders() {
    let run = RunData::default();
    let v = Verdict { checks: vec![] };
    let a = render(&run, &v).unwrap();
    assert!(a.html.contains("No samples were recorded."));
    assert!(a.html.contains("Events:  &lt;none&gt;"));
    assert!(a.junit_xml.contains("tests=\"0\""));
    let s: serde_json::Value = serde_json::from_str(&a.summary_json).unwrap();
    assert_eq!(s["totals"]["error_ratio"], serde_json::Value::Null);
}

#[test]
fn an_interrupted_run_says_what_its_record_lacks() {
    let (mut run, verdict) = fixture();
    run.meta.interrupted = true;
    // Cut during the final wait: the whole plan ran.
    run.meta.duration_s = run.samples.last().unwrap().t;
    run.meta.ended_at_s = run.meta.duration_s;
    run.meta.unrecorded_in_flight = Some(17);
    let h = render(&run, &verdict).unwrap().html;
    assert!(h.contains("then was interrupted while it waited for the last responses. 17 requests still in flight then are not in the record."), "{h}");
    assert!(!h.contains("ended early"));
    // Cut during the load.
    run.samples.truncate(run.samples.len() / 2);
    run.meta.ended_at_s = run.samples.last().unwrap().t;
    run.meta.unrecorded_in_flight = None;
    let h = render(&run, &verdict).unwrap().html;
    assert!(h.contains("The run ended early at"), "{h}");
    assert!(!h.contains("still in flight"));
    // Nothing asserted: no pass to show.
    let none = crate::checks::Verdict { checks: Vec::new() };
    let h = render(&run, &none).unwrap().html;
    assert!(h.contains("NO CHECKS") && !h.contains("badge pass"), "{h}");
}

#[test]
fn one_sample_and_odd_values_render() {
    let (mut run, verdict) = fixture();
    run.samples.truncate(1);
    run.events.clear();
    run.meta.interrupted = true;
    run.meta.duration_s = 0.0;
    run.meta.interval_s = f64::NAN;
    run.meta.load_stop_s = f64::NAN;
    run.meta.speed = f64::INFINITY;
    let s = &mut run.samples[0];
    s.offered_qps = f64::NAN;
    s.latency_ms.p99 = f64::NAN;
    s.pods[0].cpu_utilization = Some(f64::NAN);
    s.hpa.as_mut().unwrap().metrics[0].target = f64::NAN;
    let a = render(&run, &verdict).unwrap();
    assert!(a.html.contains("INTERRUPTED — partial"));
    serde_json::from_str::<serde_json::Value>(&a.summary_json).unwrap();

    // No pods, no HPA, no completions: the sections say so instead of drawing nothing.
    let s = &mut run.samples[0];
    s.pods.clear();
    s.hpa = None;
    s.completed = 0;
    let a = render(&run, &verdict).unwrap();
    assert!(a.html.contains("The HPA reported no metrics."));
    assert!(a.html.contains("No requests completed"));
}

#[test]
fn says_when_the_generator_fell_behind() {
    let (mut run, verdict) = fixture();
    assert_eq!(summary::generator_lag(&run), None);
    let a = render(&run, &verdict).unwrap();
    assert!(!a.html.contains("fell behind"));
    let lateness = |max: f64| Percentiles {
        max,
        ..Default::default()
    };
    // Sample i ends at t = i + 1.
    for (t, late, max) in [(100usize, 3, 4.0), (101, 40, 250.0), (130, 1, 2.0)] {
        let s = &mut run.samples[t - 1];
        s.late = late;
        s.send_lateness_ms = Some(lateness(max));
    }
    let lag = summary::generator_lag(&run).unwrap();
    assert_eq!((lag.samples, lag.late), (3, 44));
    assert_eq!(
        (lag.first_t, lag.last_t, lag.worst_t),
        (100.0, 130.0, 101.0)
    );
    assert_eq!(lag.worst_ms, Some(250.0));
    run.meta.speed = 1.0;
    let a = render(&run, &verdict).unwrap();
    assert!(!a.html.contains("of real time"));
    run.meta.speed = 30.0;
    let fast = render(&run, &verdict).unwrap();
    assert!(fast.html.contains(
        "worst at 1:41 (sends up to 250 ms late in experiment time: 8.3 ms of real time at 30×)"
    ));
    assert!(fast.html.contains("At 30× a stall of a few milliseconds"));
    assert!(
        a.html.contains(
            "fell behind in 3 samples (44 late requests) between 1:40 and 2:10; worst at 1:41 (sends up to 250 ms late)"
        ),
        "{}",
        &a.html[a.html.find("<section id=\"errors\">").unwrap_or(0)..]
            .chars()
            .take(2000)
            .collect::<String>()
    );
}

#[test]
fn kubectl_durations() {
    let cases = [
        (0.0, "0s"),
        (45.9, "45s"),
        (119.0, "119s"),
        (120.0, "2m"),
        (702.0, "11m42s"),
        (3600.0, "60m"),
        (4.0 * 3600.0 + 300.0, "4h5m"),
    ];
    for (s, want) in cases {
        assert_eq!(kube_dur(s), want, "{s}");
    }
    assert_eq!(mmss(700.0), "11:40");
    assert_eq!(mmss(3725.0), "1:02:05");
}

/// Writes the fixture's report for a human to look at (`cargo test -- --ignored`).
#[test]
#[ignore]
fn write_fixture_report() {
    let (run, verdict) = fixture();
    use std::path::Path;
    let dir = Path::new("/tmp/report-fixture");
    write(dir, &run, &verdict).unwrap();
    write(
        Path::new("/tmp/report-fixture/empty"),
        &RunData::default(),
        &Verdict { checks: vec![] },
    )
    .unwrap();
    let mut one = run.clone();
    one.samples.truncate(1);
    one.meta.interrupted = true;
    write(Path::new("/tmp/report-fixture/one"), &one, &verdict).unwrap();
}

#[test]
fn write_creates_the_three_files() {
    let (run, verdict) = fixture();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &run, &verdict).unwrap();
    for f in [REPORT_HTML, SUMMARY_JSON, JUNIT_XML] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 0, "{f}");
    }
}

/// The fixture as a run whose scale target is the gateway tier (its pods
/// are the fixture's), with the backend behind it as the other tier, and a
/// gateway HPA allowed past seed 001's 20 instances.
fn two_tiers() -> (RunData, Verdict) {
    let (mut run, verdict) = fixture();
    run.meta.tiers = vec![
        crate::recorder::TierMeta {
            deployment: "httpbin-deploy".into(),
            role: "backend".into(),
            ..Default::default()
        },
        crate::recorder::TierMeta {
            deployment: "api-gateway".into(),
            role: "gateway".into(),
            target: true,
            cpu_limit_millicores: Some(200.0),
            cpu_request_millicores: Some(100.0),
            hpa: Some("api-gateway".into()),
            min_replicas: Some(2),
            max_replicas: Some(25),
        },
    ];
    for s in &mut run.samples {
        s.tiers = vec![crate::recorder::TierSample {
            deployment: "httpbin-deploy".into(),
            role: "backend".into(),
            replicas: Replicas {
                spec: 2,
                current: 2,
                ready: 2,
                desired: 2,
            },
            pods: s.pods.clone(),
            hpa: None,
        }];
    }
    (run, verdict)
}

#[test]
fn a_gateway_tier_gets_both_tiers_and_the_papers_cpu_figure() {
    let (run, verdict) = two_tiers();
    let h = render(&run, &verdict).unwrap().html;
    assert!(h.contains("<section id=\"tiers\">") && h.contains("href=\"#tiers\""));
    assert!(h.contains("outside seed 001's node range (at most 20)"));
    for legend in [
        "gateway (api-gateway) ready",
        "backend (httpbin-deploy) ready",
        "gateway (api-gateway) per ready pod",
        "gateway target 20",
        "total CPU usage",
        "total CPU limit",
    ] {
        assert!(h.contains(legend), "no {legend:?}");
    }
    // Fig. 7 and the fixture's six other charts, and the tiers' three.
    assert_eq!(h.matches("<svg role=\"img\"").count(), 10);
    // One tier alone: no such section.
    let (one, v) = fixture();
    assert!(!render(&one, &v).unwrap().html.contains("id=\"tiers\""));
}

#[test]
fn load_per_ready_pod_is_what_the_tier_served_over_its_ready_pods() {
    let pods = [
        PodSample {
            qps: 30.0,
            ready: true,
            ..Default::default()
        },
        PodSample {
            qps: 10.0,
            ready: true,
            ..Default::default()
        },
        // Terminating: it still answers what it holds, but is not Ready.
        PodSample {
            qps: 2.0,
            terminating: true,
            ..Default::default()
        },
    ];
    let r = Replicas {
        ready: 2,
        ..Default::default()
    };
    let at = |replicas| tiers::At {
        t: 1.0,
        replicas,
        pods: &pods,
        hpa: None,
    };
    assert_eq!(tiers::qps_per_ready_pod(&at(&r)), 21.0);
    assert!(tiers::qps_per_ready_pod(&at(&Replicas::default())).is_nan());
}

/// The fixture with seed 001's schedule on it: jobs at 5m (5, skipped),
/// 10m (3, skipped) and 15m (7: range 1–10 → 7–10, replicas 3 → 7), a
/// 20m job that failed and a 25m one on an excluded date.
fn scheduled() -> (RunData, Verdict) {
    use crate::recorder::{ScheduleJob, ScheduleMeta, CRON_SOURCE};
    let (mut run, verdict) = fixture();
    let job = |name: &str, schedule: &str, size: i32, at: Vec<f64>| ScheduleJob {
        name: name.into(),
        schedule: schedule.into(),
        target_size: size,
        run_once: false,
        fires_at: at,
    };
    run.meta.schedule = Some(ScheduleMeta {
        object: "CronHorizontalPodAutoscaler/httpbin-schedule".into(),
        target: "HorizontalPodAutoscaler/httpbin".into(),
        controller: "embedded".into(),
        clock_start: "2026-12-01T08:55:00+00:00[UTC]".into(),
        jobs: vec![
            job("schedule-5", "0 0 9 * * *", 5, vec![300.0]),
            job("schedule-3", "0 5 9 * * *", 3, vec![600.0]),
            job("schedule-7", "0 10 9 * * *", 7, vec![900.0]),
            job("evening", "0 15 9 * * *", 4, vec![1200.0]),
            // Every 30 s: the table abbreviates its times.
            job(
                "holiday",
                "*/30 * * * * *",
                2,
                (1..=60).map(|i| i as f64 * 30.0).collect(),
            ),
        ],
        exclude_dates: vec!["* * * 1 12 *".into()],
    });
    for s in &mut run.samples {
        let h = s.hpa.as_mut().unwrap();
        h.min_replicas = Some(if s.t >= 900.0 { 7 } else { 1 });
        h.max_replicas = Some(10);
    }
    let fire = |t: f64, reason: &str, msg: &str, from_to: Option<(i32, i32)>| Event {
        t,
        type_: if reason == "Failed" {
            "Warning"
        } else {
            "Normal"
        }
        .into(),
        reason: reason.into(),
        object: "CronHorizontalPodAutoscaler/httpbin-schedule".into(),
        source: CRON_SOURCE.into(),
        message: msg.into(),
        from_replicas: from_to.map(|p| p.0),
        to_replicas: from_to.map(|p| p.1),
        ..Default::default()
    };
    run.events.extend([
        fire(300.0, "Succeed", "cron hpa job schedule-5 executed successfully. Skip scale replicas because HPA httpbin in namespace default current replicas:2 >= desired replicas:5.", None),
        fire(600.0, "Succeed", "cron hpa job schedule-3 executed successfully. Skip scale replicas because HPA httpbin in namespace default current replicas:2 >= desired replicas:3.", None),
        fire(900.0, "Succeed", "cron hpa job schedule-7 executed successfully. current replicas:3, desired replicas:7.", Some((3, 7))),
        fire(1200.0, "Failed", "cron hpa failed to execute, because of Failed to get HorizontalPodAutoscaler Ref httpbin", None),
        fire(1500.0, "Succeed", "cron hpa job holiday executed successfully. skip scaling activity,because of excludeDate (* * * 1 12 *).", None),
    ]);
    (run, verdict)
}

#[test]
fn firings_are_told_apart() {
    let (run, _) = scheduled();
    let f = firings(&run);
    let got: Vec<(f64, Option<&str>, FiringState)> =
        f.iter().map(|f| (f.t, f.job.as_deref(), f.state)).collect();
    assert_eq!(
        got,
        [
            (300.0, Some("schedule-5"), FiringState::Skipped),
            (600.0, Some("schedule-3"), FiringState::Skipped),
            (900.0, Some("schedule-7"), FiringState::Changed),
            // The Failed message names no job: the planned time does.
            (1200.0, Some("evening"), FiringState::Failed),
            (1500.0, Some("holiday"), FiringState::Skipped),
        ]
    );
    assert_eq!(
        (f[2].range_before, f[2].range_after),
        (Some((1, 10)), Some((7, 10)))
    );
    // A "Skip scale replicas" that still moved the range changed something.
    let (mut run, _) = scheduled();
    for s in run.samples.iter_mut().filter(|s| s.t > 300.0) {
        s.hpa.as_mut().unwrap().min_replicas = Some(5);
    }
    assert_eq!(firings(&run)[0].state, FiringState::Changed);
    // Nothing but a schedule's events are firings.
    assert!(firings(&fixture().0).is_empty());
}

#[test]
fn the_range_band_is_drawn_only_with_a_schedule() {
    let (plain, _) = fixture();
    let c = charts::qps_and_pods(&plain);
    assert!(c.band.is_none() && c.firings.is_empty());
    let h = render(&plain, &fixture().1).unwrap().html;
    assert!(!h.contains("HPA range") && !h.contains("id=\"schedule\"") && !h.contains("#schedule"));

    let (run, _) = scheduled();
    let b = charts::qps_and_pods(&run).band.expect("a band");
    // Steps where the schedule raised the floor; the last sample ends it.
    assert_eq!(
        b.runs,
        [(1.0, 900.0, 1.0, 10.0), (900.0, 2100.0, 7.0, 10.0)]
    );
    assert!(b.secondary);

    // Samples that do not carry the range: RunMeta's bounds, all along.
    let (mut run, _) = scheduled();
    for s in &mut run.samples {
        let h = s.hpa.as_mut().unwrap();
        (h.min_replicas, h.max_replicas) = (None, None);
    }
    assert_eq!(hpa_range_runs(&run), [(1.0, 2100.0, 2, 10)]);
    // A hole in the samples is a hole in the band.
    run.samples.retain(|s| !(1000.0..1100.0).contains(&s.t));
    assert_eq!(
        hpa_range_runs(&run),
        [(1.0, 999.0, 2, 10), (1100.0, 2100.0, 2, 10)]
    );
}

/// The `<text>` elements of an SVG whose content is `label`: (x, y).
fn texts_at(svg: &str, label: &str) -> Vec<(f64, f64)> {
    let attr = |tag: &str, name: &str| -> f64 {
        let k = format!(" {name}=\"");
        let i = tag.find(&k).unwrap() + k.len();
        tag[i..i + tag[i..].find('"').unwrap()].parse().unwrap()
    };
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let (tag, rest) = t.split_once('>')?;
            (rest.split('<').next()?.trim() == label).then(|| (attr(tag, "x"), attr(tag, "y")))
        })
        .collect()
}

#[test]
fn firing_markers_on_fig7() {
    let (run, _) = scheduled();
    let c = charts::qps_and_pods(&run);
    let states: Vec<_> = c
        .firings
        .iter()
        .map(|f| (f.label.as_str(), f.state))
        .collect();
    assert_eq!(states[2], ("schedule-7", FiringState::Changed));
    assert_eq!(states[3], ("evening ✗", FiringState::Failed));
    let svg = c.draw().unwrap();
    for l in ["schedule-5", "schedule-3", "schedule-7", "holiday"] {
        assert_eq!(texts_at(&svg, l).len(), 1, "{l}");
    }
    // The rescale markers keep their labels.
    assert!(svg.contains("→3") && svg.contains("→2"));
    let h = render(&run, &fixture().1).unwrap().html;
    for legend in [
        "HPA range (min–max)",
        "schedule firing (job name)",
        "firing that changed nothing",
        "failed firing",
        "5 schedule firing(s)",
    ] {
        assert!(h.contains(legend), "no {legend:?}");
    }
}

#[test]
fn many_firings_thin_their_labels_without_overlap() {
    use crate::recorder::CRON_SOURCE;
    let (mut run, _) = scheduled();
    let fire = |t: f64| Event {
        t,
        type_: "Normal".into(),
        reason: "Succeed".into(),
        source: CRON_SOURCE.into(),
        message:
            "cron hpa job every-30s executed successfully. current replicas:3, desired replicas:4."
                .into(),
        to_replicas: Some(4),
        from_replicas: Some(3),
        ..Default::default()
    };
    // Every 30 s over 35 min: 70 firings, 15 px apart.
    run.events = (1..=70).map(|i| fire(i as f64 * 30.0)).collect();
    let svg = charts::qps_and_pods(&run).draw().unwrap();
    let mut at = texts_at(&svg, "every-30s");
    // Named once per stretch of the axis: no overlap, and not 70 times.
    assert!((4..=8).contains(&at.len()), "{} labels", at.len());
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in at.windows(2) {
        assert!(w[1].0 - w[0].0 >= 190.0, "{w:?}");
    }
    // A firing that changed something is labelled even among many skipped ones.
    run.events.push(Event {
        message:
            "cron hpa job late-one executed successfully. current replicas:3, desired replicas:4."
                .into(),
        ..fire(2085.0)
    });
    for e in run.events.iter_mut().filter(|e| e.t < 2085.0) {
        e.to_replicas = None;
        e.message = e.message.replace("current replicas:3, desired replicas:4.", "Skip scale replicas because HPA httpbin in namespace default current replicas:3 >= desired replicas:2.");
    }
    let svg = charts::qps_and_pods(&run).draw().unwrap();
    assert_eq!(texts_at(&svg, "late-one").len(), 1);
    // Every second for the whole run: ticks along the bottom, no labels at all.
    run.events = (1..=2100).map(|i| fire(i as f64)).collect();
    let svg = charts::qps_and_pods(&run).draw().unwrap();
    assert!(texts_at(&svg, "every-30s").is_empty());
}

#[test]
fn the_schedule_section_lists_jobs_and_firings() {
    let (run, verdict) = scheduled();
    let a = render(&run, &verdict).unwrap();
    let h = &a.html;
    let sec = &h[h
        .find("<section id=\"schedule\">")
        .expect("a schedule section")..];
    let sec = &sec[..sec.find("</section>").unwrap()];
    assert!(h.contains("<a href=\"#schedule\">Schedule</a>"));
    for want in [
        "CronHorizontalPodAutoscaler/<wbr>httpbin-schedule",
        "HorizontalPodAutoscaler/<wbr>httpbin",
        "the embedded cluster",
        "2026-12-01T08:55:00+00:00[UTC]",
        "<tr><td class=\"nowrap\"><b>schedule-7</b></td><td class=\"nowrap\"><code>0 10 9 * * *</code></td><td class=\"num\">7</td><td>no</td><td class=\"num\">1</td><td>15:00</td></tr>",
        // 60 planned times, abbreviated.
        "0:30, 1:00, 1:30, 2:00, 2:30, 3:00, … 30:00 (60 in all)",
        "<code>* * * 1 12 *</code>",
        "replicas 3 → 7<br>range 1–10 → 7–10",
        "<span class=\"badge warn\">failed</span>",
        "skip scaling activity,because of excludeDate",
    ] {
        assert!(sec.contains(want), "no {want:?} in\n{sec}");
    }
    assert_eq!(sec.matches("badge skip").count(), 3);

    // A job that keeps firing to no effect is one row per unbroken run.
    let (mut run, verdict) = scheduled();
    let holiday = run.events.last().unwrap().clone();
    for (t, msg) in [
        (1530.0, holiday.message.clone()),
        (
            1560.0,
            holiday.message.replace("excludeDate", "an excludeDate"),
        ),
    ] {
        run.events.push(Event {
            t,
            message: msg,
            ..holiday.clone()
        });
    }
    let h = render(&run, &verdict).unwrap().html;
    let sec = &h[h.find("<h3>Firings</h3>").unwrap()..];
    let sec = &sec[..sec.find("</section>").unwrap()];
    assert!(
        sec.contains("<td class=\"num nowrap\">25:00–26:00</td><td class=\"nowrap\">holiday</td><td class=\"nowrap\"><span class=\"badge skip\">skipped ×3</span>"),
        "{sec}"
    );
    assert!(sec.contains("<br>… the last: cron hpa job holiday executed successfully. skip scaling activity,because of an excludeDate"));
    // Two jobs skipped in a row stay two rows; so does a firing that changed.
    assert_eq!(sec.matches("badge skip").count(), 3);
    assert_eq!(sec.matches("<tr").count(), 6);

    let s: serde_json::Value = serde_json::from_str(&a.summary_json).unwrap();
    let f = &s["schedule_firings"];
    assert_eq!(f.as_array().unwrap().len(), 5);
    assert_eq!(f[2]["job"], "schedule-7");
    assert_eq!(f[2]["state"], "changed");
    assert_eq!(f[2]["range_after"], serde_json::json!([7, 10]));
    assert_eq!(f[3]["state"], "failed");
    // Without a schedule the key is absent, so summary.json is as it was.
    let (plain, v) = fixture();
    let s: serde_json::Value =
        serde_json::from_str(&render(&plain, &v).unwrap().summary_json).unwrap();
    assert!(s.get("schedule_firings").is_none());
}

#[test]
fn a_lua_policy_run_names_the_policy_and_shows_its_script() {
    let (mut run, verdict) = fixture();
    run.meta.hpa_name = "lua:../policies/cpu.lua".into();
    run.meta.policy = Some(crate::recorder::PolicyMeta {
        script: "../policies/cpu.lua".into(),
        source: "local x = get_cpu_usage()\nif x > 80 then scale_up_instances() end\n".into(),
        interval_s: 15.0,
        min: 2,
        max: 10,
        target: "Deployment/httpbin".into(),
    });
    let policy_event = |t: f64, type_: &str, reason: &str, message: &str| Event {
        t,
        type_: type_.into(),
        reason: reason.into(),
        message: message.into(),
        object: "Deployment/httpbin".into(),
        source: crate::lua::policy::SOURCE.into(),
        ..Default::default()
    };
    run.events = vec![
        policy_event(
            15.0,
            "Warning",
            "FailedPolicy",
            "../policies/cpu.lua:2: attempt to compare nil with number; holding at 2",
        ),
        policy_event(30.0, "Normal", "PolicyLog", "low CPU usage: 3.0%"),
        policy_event(45.0, "Normal", "PolicyLog", "low CPU usage: 4.5%"),
        policy_event(
            700.0,
            "Normal",
            "SuccessfulRescale",
            "New size: 3; reason: high CPU usage: 93.0%",
        ),
    ];
    run.events[3].from_replicas = Some(2);
    run.events[3].to_replicas = Some(3);
    for s in &mut run.samples {
        if let Some(h) = &mut s.hpa {
            h.name = run.meta.hpa_name.clone();
            h.metrics.clear();
        }
    }
    let h = render(&run, &verdict).unwrap().html;
    assert!(h.contains("<section id=\"policy\">") && h.contains("href=\"#policy\""));
    assert!(h.contains("<dt>Policy</dt>") && !h.contains("<dt>HPA</dt>"));
    assert!(h.contains("desired pods (policy)") && !h.contains("desired pods (HPA)"));
    assert!(!h.contains("HPA metrics as the controller read them"));
    assert!(h.contains("<code>kubectl describe deployment</code>"));
    // The script with line numbers, so `cpu.lua:2` can be read off it.
    assert!(h.contains("<span class=\"ln\">2</span>  if x &gt; 80 then"));
    // The two log lines fold into one row of 2; the rescale and the warning stand alone.
    assert!(h.contains("0:30–0:45"), "{h}");
    assert!(h.contains("… last: low CPU usage: 4.5%"));
    // The events block lists the policy's events, as `kubectl describe deployment` would.
    assert!(h.contains("FailedPolicy") && !h.contains("Events:  &lt;none&gt;"));
}
