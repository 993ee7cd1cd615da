//! What a bench run measured, computed from the engine's numbers (pure: no
//! clock, no I/O), and its text rendering.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::{IntervalStats, RateCurve, RawLogSummary, StatusCounts};

/// One sampling window: what the engine counted between two reads of its
/// interval stats, and when (seconds of the curve, warm-up included, since
/// t0) those reads happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub requests: Requests,
}

impl Window {
    pub fn new(start_s: f64, end_s: f64, st: &IntervalStats) -> Self {
        Self {
            start_s,
            end_s,
            requests: Requests::from(st),
        }
    }
}

/// One full second as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// 1-based second of the measured part (after any warm-up).
    pub second: u32,
    /// Requests the curve asks for over the window actually measured
    /// (the window's ends are the real instants the stats were read, so
    /// timer jitter in reading them does not count as rate error).
    pub expected: f64,
    pub sent: u64,
    pub completed: u64,
    pub dropped: u64,
    pub late: u64,
    pub errors: u64,
    /// (completed - expected) / expected, percent; None when less than one
    /// request was due (nothing to hold).
    pub error_pct: Option<f64>,
}

/// Scores each window against the curve.
pub fn seconds(curve: &RateCurve, windows: &[Window]) -> Vec<Second> {
    windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let expected = curve.cumulative(w.end_s) - curve.cumulative(w.start_s);
            let r = &w.requests;
            Second {
                second: u32::try_from(i + 1).unwrap_or(u32::MAX),
                expected,
                sent: r.sent,
                completed: r.completed,
                dropped: r.dropped,
                late: r.late,
                errors: r.errors,
                error_pct: (expected >= 1.0)
                    .then(|| (r.completed as f64 - expected) / expected * 100.0),
            }
        })
        .collect()
}

/// Per-second rate error over the scored seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateError {
    /// Largest |error|, percent.
    pub max_abs_pct: f64,
    /// Mean |error|, percent.
    pub mean_abs_pct: f64,
    /// The second with the largest |error| (1-based).
    pub worst_second: u32,
    /// Seconds scored (at least one request due).
    pub seconds: usize,
}

pub fn rate_error(seconds: &[Second]) -> Option<RateError> {
    let scored: Vec<(u32, f64)> = seconds
        .iter()
        .filter_map(|s| s.error_pct.map(|e| (s.second, e.abs())))
        .collect();
    let &(worst_second, max_abs_pct) = scored
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    Some(RateError {
        max_abs_pct,
        mean_abs_pct: scored.iter().map(|s| s.1).sum::<f64>() / scored.len() as f64,
        worst_second,
        seconds: scored.len(),
    })
}

/// Seconds of user+system CPU per 1,000 completed requests.
pub fn cpu_per_1k(cpu_s: f64, completed: u64) -> Option<f64> {
    (completed > 0).then(|| cpu_s / completed as f64 * 1000.0)
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    /// Requests in the histogram.
    pub count: u64,
}

/// From a histogram of microseconds.
pub fn quantiles(h: &Histogram<u64>) -> Quantiles {
    if h.is_empty() {
        return Quantiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Quantiles {
        p50: ms(h.value_at_quantile(0.5)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        count: h.len(),
    }
}

/// How the run was set up (for the report; the engine config says the same).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setup {
    pub url: String,
    /// "1.1" or "2" (prior knowledge).
    pub http: &'static str,
    pub from_rate: f64,
    pub to_rate: f64,
    /// The measured part.
    pub duration_s: f64,
    /// Sent before it at the starting rate and not counted.
    pub warmup_s: f64,
    /// "uniform" or "poisson".
    pub spacing: &'static str,
    pub max_in_flight: usize,
    /// Cap on open HTTP/1.1 connections.
    pub max_connections: usize,
    pub timeout_s: f64,
    /// Runtime threads generating the load (`--threads`).
    pub threads: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Requests {
    pub intended: u64,
    pub sent: u64,
    pub completed: u64,
    pub dropped: u64,
    pub late: u64,
    /// Non-2xx/3xx, timeouts, connection and other errors.
    pub errors: u64,
    pub status: StatusCounts,
}

impl From<&IntervalStats> for Requests {
    fn from(t: &IntervalStats) -> Self {
        Self {
            intended: t.intended,
            sent: t.sent,
            completed: t.completed,
            dropped: t.dropped,
            late: t.late,
            errors: t.status.errors(),
            status: t.status,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// The curve's mean rate over the duration.
    pub intended_per_s: f64,
    /// Completions in the full seconds over their measured length.
    pub achieved_per_s: f64,
    /// None when no second had a request due.
    pub per_second_error: Option<RateError>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cpu {
    pub user_s: f64,
    pub sys_s: f64,
    /// (user + sys) per 1,000 completed requests; None when none completed.
    pub per_1000_requests_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawLogReport {
    pub path: String,
    pub rows: u64,
    pub lost: u64,
    pub error: Option<String>,
}

impl From<&RawLogSummary> for RawLogReport {
    fn from(r: &RawLogSummary) -> Self {
        Self {
            path: r.path.display().to_string(),
            rows: r.rows,
            lost: r.lost,
            error: r.error.clone(),
        }
    }
}

/// Everything `bench` prints (`--json` prints exactly this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub setup: Setup,
    pub requests: Requests,
    pub rate: Rate,
    /// From each request's intended send time.
    pub response_time_ms: Quantiles,
    /// From the actual send.
    pub service_time_ms: Quantiles,
    /// From the actual send to the response headers.
    pub ttfb_ms: Quantiles,
    /// Actual send - intended send, all sent requests.
    pub send_lateness_ms: Quantiles,
    pub cpu: Cpu,
    /// Peak resident set size of the whole process, bytes.
    pub peak_rss_bytes: u64,
    /// The highest anonymous part of it (heap, stacks) read once a second
    /// and at the end, bytes; None where /proc does not say.
    pub peak_anon_rss_bytes: Option<u64>,
    pub raw_log: Option<RawLogReport>,
    pub per_second: Vec<Second>,
    /// Seconds into the measured part (after the warm-up) at which Ctrl-C
    /// or SIGTERM stopped the run; None when it ran to the end.
    pub interrupted_after_s: Option<f64>,
}

/// What the I/O side measured, to be summarised.
pub struct Measured<'a> {
    pub curve: &'a RateCurve,
    pub windows: &'a [Window],
    pub totals: &'a IntervalStats,
    pub user_s: f64,
    pub sys_s: f64,
    pub peak_rss_bytes: u64,
    pub peak_anon_rss_bytes: Option<u64>,
    pub raw_log: Option<&'a RawLogSummary>,
    pub interrupted_after_s: Option<f64>,
}

pub fn summarize(setup: Setup, m: &Measured<'_>) -> Summary {
    let t = m.totals;
    let per_second = seconds(m.curve, m.windows);
    let measured_s =
        m.windows.last().map_or(0.0, |w| w.end_s) - m.windows.first().map_or(0.0, |w| w.start_s);
    let completed_in_windows: u64 = m.windows.iter().map(|w| w.requests.completed).sum();
    let warmup = setup.warmup_s;
    let duration = m.curve.total_duration() - warmup;
    Summary {
        rate: Rate {
            intended_per_s: if duration > 0.0 {
                (m.curve.total_requests() - m.curve.cumulative(warmup)) / duration
            } else {
                0.0
            },
            achieved_per_s: if measured_s > 0.0 {
                completed_in_windows as f64 / measured_s
            } else {
                0.0
            },
            per_second_error: rate_error(&per_second),
        },
        setup,
        requests: Requests::from(t),
        response_time_ms: quantiles(&t.response_time),
        service_time_ms: quantiles(&t.service_time),
        ttfb_ms: quantiles(&t.ttfb),
        send_lateness_ms: quantiles(&t.lateness),
        cpu: Cpu {
            user_s: m.user_s,
            sys_s: m.sys_s,
            per_1000_requests_s: cpu_per_1k(m.user_s + m.sys_s, t.completed),
        },
        peak_rss_bytes: m.peak_rss_bytes,
        peak_anon_rss_bytes: m.peak_anon_rss_bytes,
        raw_log: m.raw_log.map(RawLogReport::from),
        per_second,
        interrupted_after_s: m.interrupted_after_s,
    }
}

fn rate_text(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

fn q_line(name: &str, q: &Quantiles, note: &str) -> String {
    format!(
        "  {name:<9} p50 {:>8.3}  p99 {:>8.3}  p99.9 {:>8.3}  max {:>8.3} ms  {note}\n",
        q.p50, q.p99, q.p999, q.max
    )
}

/// The human-readable report.
pub fn render_text(s: &Summary) -> String {
    let mut o = String::new();
    let st = &s.setup;
    let profile = if st.from_rate == st.to_rate {
        format!("{} req/s", rate_text(st.from_rate))
    } else {
        format!(
            "ramp {} → {} req/s",
            rate_text(st.from_rate),
            rate_text(st.to_rate)
        )
    };
    let warmup = if st.warmup_s > 0.0 {
        format!(" after a {}s warm-up (not counted)", st.warmup_s)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "bench {} — {profile} for {}s{warmup}, {} spacing, HTTP/{}",
        st.url, st.duration_s, st.spacing, st.http
    );
    let _ = writeln!(
        o,
        "  in-flight cap {}, connections ≤ {}, timeout {}s, {} runtime thread{}",
        st.max_in_flight,
        st.max_connections,
        st.timeout_s,
        st.threads,
        if st.threads == 1 { "" } else { "s" }
    );
    if let Some(at) = s.interrupted_after_s {
        let _ = writeln!(
            o,
            "INTERRUPTED after {at:.1}s of {}s: the figures cover what ran",
            st.duration_s
        );
    }
    let r = &s.requests;
    let _ = writeln!(
        o,
        "requests  intended {}  sent {}  completed {}  dropped {}  late {}  errors {}",
        r.intended, r.sent, r.completed, r.dropped, r.late, r.errors
    );
    if r.errors > 0 {
        let c = &r.status;
        let _ = writeln!(
            o,
            "  errors by class: 4xx {}  5xx {}  timeout {}  connect {}  other {}",
            c.s4xx, c.s5xx, c.timeout, c.connect_error, c.other
        );
    }
    let _ = writeln!(
        o,
        "rate      intended {} req/s  achieved {} req/s",
        rate_text(s.rate.intended_per_s),
        rate_text(s.rate.achieved_per_s)
    );
    match &s.rate.per_second_error {
        Some(e) => {
            let _ = writeln!(
                o,
                "  per-second error (completed vs due): max {:.2} % (second {}), mean {:.2} % over {} full seconds",
                e.max_abs_pct, e.worst_second, e.mean_abs_pct, e.seconds
            );
        }
        None => o.push_str("  per-second error: no full second with a request due\n"),
    }
    o.push_str("latency\n");
    o.push_str(&q_line(
        "response",
        &s.response_time_ms,
        "(from the intended send time)",
    ));
    o.push_str(&q_line(
        "service",
        &s.service_time_ms,
        "(from the actual send)",
    ));
    o.push_str(&q_line("ttfb", &s.ttfb_ms, "(actual send to headers)"));
    o.push_str(&q_line(
        "lateness",
        &s.send_lateness_ms,
        "(actual send after intended)",
    ));
    let c = &s.cpu;
    let per_1k = c
        .per_1000_requests_s
        .map_or("–".into(), |v| format!("{v:.4} s"));
    let _ = writeln!(
        o,
        "cpu       user {:.2} s  sys {:.2} s  = {per_1k} per 1,000 requests (this process, over the run)",
        c.user_s, c.sys_s
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let _ = write!(o, "memory    peak RSS {:.1} MiB", mib(s.peak_rss_bytes));
    if let Some(anon) = s.peak_anon_rss_bytes {
        let _ = write!(o, " (anonymous {:.1} MiB: heap and stacks)", mib(anon));
    }
    let _ = writeln!(o);
    if let Some(raw) = &s.raw_log {
        let _ = write!(o, "raw log   {} rows in {}", raw.rows, raw.path);
        if raw.lost > 0 {
            let _ = write!(o, "; {} rows LOST (writer fell behind)", raw.lost);
        }
        if let Some(e) = &raw.error {
            let _ = write!(o, "; write error: {e}");
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Segment;

    fn w(start_s: f64, end_s: f64, completed: u64) -> Window {
        let mut st = IntervalStats::new();
        (st.intended, st.sent, st.completed) = (completed, completed, completed);
        Window::new(start_s, end_s, &st)
    }

    #[test]
    fn per_second_error_uses_the_measured_window() {
        let c = RateCurve::constant(1000.0, 3.0).expect("curve");
        // Second 2 was read 4 ms late, so it spans 1.004 s: 1004 due.
        let s = seconds(
            &c,
            &[w(0.0, 1.0, 990), w(1.0, 2.004, 1004), w(2.004, 3.0, 996)],
        );
        assert_eq!(s.len(), 3);
        assert!((s[1].expected - 1004.0).abs() < 1e-6, "{s:?}");
        assert_eq!(s[1].error_pct, Some(0.0));
        assert!((s[0].error_pct.expect("scored") + 1.0).abs() < 1e-9);
        let e = rate_error(&s).expect("scored");
        assert_eq!((e.worst_second, e.seconds), (1, 3));
        assert!((e.max_abs_pct - 1.0).abs() < 1e-9);
        assert!((e.mean_abs_pct - 1.0 / 3.0).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn ramp_seconds_expect_the_integral_and_skip_empty_ones() {
        // 0 → 2 req/s over 4 s: 0.25, 0.75, 1.25, 1.75 due per second.
        let c = RateCurve::new(vec![Segment {
            start: 0.0,
            end: 4.0,
            from_rate: 0.0,
            to_rate: 2.0,
        }])
        .expect("curve");
        let s = seconds(
            &c,
            &[
                w(0.0, 1.0, 0),
                w(1.0, 2.0, 1),
                w(2.0, 3.0, 1),
                w(3.0, 4.0, 2),
            ],
        );
        let due: Vec<f64> = s.iter().map(|x| x.expected).collect();
        assert_eq!(due, vec![0.25, 0.75, 1.25, 1.75]);
        assert_eq!(s[0].error_pct, None);
        assert_eq!(s[1].error_pct, None);
        assert!((s[2].error_pct.expect("scored") + 20.0).abs() < 1e-9);
        let e = rate_error(&s).expect("scored");
        assert_eq!((e.seconds, e.worst_second), (2, 3));
        assert_eq!(rate_error(&s[..2]), None);
    }

    #[test]
    fn warmup_is_neither_intended_nor_scored() {
        // 2 s warm-up at 100 req/s, then a ramp 100 → 300 over 10 s.
        let c = RateCurve::new(vec![
            Segment {
                start: 0.0,
                end: 2.0,
                from_rate: 100.0,
                to_rate: 100.0,
            },
            Segment {
                start: 2.0,
                end: 12.0,
                from_rate: 100.0,
                to_rate: 300.0,
            },
        ])
        .expect("curve");
        let mut setup = fixture().setup;
        setup.warmup_s = 2.0;
        setup.duration_s = 10.0;
        let windows = [w(2.0, 3.0, 110)];
        let s = summarize(
            setup,
            &Measured {
                curve: &c,
                windows: &windows,
                totals: &IntervalStats::new(),
                user_s: 0.0,
                sys_s: 0.0,
                peak_rss_bytes: 0,
                peak_anon_rss_bytes: None,
                raw_log: None,
                interrupted_after_s: None,
            },
        );
        assert_eq!(s.rate.intended_per_s, 200.0);
        assert_eq!(s.per_second[0].expected, 110.0);
        assert_eq!(s.per_second[0].error_pct, Some(0.0));
        assert!(render_text(&s).contains("for 10s after a 2s warm-up (not counted)"));
    }

    #[test]
    fn cpu_per_thousand() {
        assert_eq!(cpu_per_1k(3.0, 150_000), Some(0.02));
        assert_eq!(cpu_per_1k(3.0, 0), None);
    }

    fn fixture() -> Summary {
        let curve = RateCurve::constant(1000.0, 3.0).expect("curve");
        let mut totals = IntervalStats::new();
        totals.intended = 3000;
        totals.sent = 2990;
        totals.completed = 2990;
        totals.dropped = 10;
        totals.late = 4;
        totals.status.s2xx = 2985;
        totals.status.timeout = 5;
        for us in [200u64, 300, 400, 5_000] {
            totals.response_time.record(us).expect("record");
            totals.service_time.record(us / 2).expect("record");
            totals.ttfb.record(us / 4).expect("record");
            totals.lateness.record(us / 100).expect("record");
        }
        let windows = [w(0.0, 1.0, 995), w(1.0, 2.0, 1000), w(2.0, 3.0, 990)];
        let raw = RawLogSummary {
            path: "raw.csv".into(),
            rows: 3000,
            lost: 0,
            error: None,
        };
        summarize(
            Setup {
                url: "http://127.0.0.1:8080/".into(),
                http: "1.1",
                from_rate: 1000.0,
                to_rate: 1000.0,
                duration_s: 3.0,
                warmup_s: 0.0,
                spacing: "uniform",
                max_in_flight: 1000,
                max_connections: 64,
                timeout_s: 5.0,
                threads: 1,
            },
            &Measured {
                curve: &curve,
                windows: &windows,
                totals: &totals,
                user_s: 0.25,
                sys_s: 0.05,
                peak_rss_bytes: 12 << 20,
                peak_anon_rss_bytes: Some(5 << 20),
                raw_log: Some(&raw),
                interrupted_after_s: None,
            },
        )
    }

    #[test]
    fn summarizes_a_run() {
        let s = fixture();
        assert_eq!(s.rate.intended_per_s, 1000.0);
        // Completions in the full seconds only (5 more finished after them).
        assert!((s.rate.achieved_per_s - 2985.0 / 3.0).abs() < 1e-9);
        let e = s.rate.per_second_error.expect("scored");
        assert_eq!(e.worst_second, 3);
        assert!((e.max_abs_pct - 1.0).abs() < 1e-9);
        assert!((e.mean_abs_pct - 0.5).abs() < 1e-9);
        assert_eq!(s.requests.errors, 5);
        assert!((s.cpu.per_1000_requests_s.expect("completed") - 0.3 / 2.99).abs() < 1e-12);
        assert_eq!(s.response_time_ms.count, 4);
        assert!((s.response_time_ms.p50 - 0.3).abs() < 0.001);
        assert!((s.response_time_ms.max - 5.0).abs() < 0.01);
        let json: serde_json::Value = serde_json::to_value(&s).expect("json");
        assert_eq!(json["requests"]["dropped"], 10);
        assert_eq!(json["per_second"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["raw_log"]["rows"], 3000);
    }

    #[test]
    fn an_interrupted_run_says_so() {
        let mut s = fixture();
        assert!(!render_text(&s).contains("INTERRUPTED"));
        s.interrupted_after_s = Some(1.25);
        let text = render_text(&s);
        assert!(text.contains("INTERRUPTED after 1.2s of 3s"), "{text}");
        let json: serde_json::Value = serde_json::to_value(&s).expect("json");
        assert_eq!(json["interrupted_after_s"], 1.25);
    }

    #[test]
    fn text_report() {
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("bench_text", render_text(&fixture()));
        });
    }
}
