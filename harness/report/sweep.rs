//! The `sweep` page: one row per value with what a planner compares
//! (first scale-out, peak, scale-in, pod-minutes, latency, checks), an
//! overlay of pods over time, and each run's Fig. 7 as a small multiple.
//! Pure: takes the runs, returns text.

use std::fmt::Write as _;

use serde::Serialize;

use super::charts::{self, Axis, Scale, Series, Stroke, TimeChart, PALETTE};
use super::html::{figure, CSS};
use super::{esc, kube_dur, num, summary};
use crate::checks::{self, Outcome, Verdict};
use crate::recorder::RunData;

/// One finished run of a sweep.
pub struct SweepRun {
    /// One value per setting, in the order the settings were given.
    pub values: Vec<String>,
    /// Its run directory, relative to the sweep directory.
    pub dir_name: String,
    pub run: RunData,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub scenario: String,
    pub scenario_path: String,
    /// The settings' `OBJECT:PATH`, in order.
    pub keys: Vec<String>,
    pub seed: u64,
}

/// What one run did, in experiment seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub values: Vec<String>,
    pub dir: String,
    pub first_scale_out_s: Option<f64>,
    /// Offered load at the first scale-out.
    pub first_scale_out_qps: Option<f64>,
    pub peak_pods: i32,
    /// The last scale-in, and how long after the load stopped it came.
    pub last_scale_in_s: Option<f64>,
    pub scale_in_after_stop_s: Option<f64>,
    pub final_pods: i32,
    /// Pods × minutes over the run: what the capacity cost.
    pub pod_minutes: f64,
    pub p99_ms: Option<f64>,
    pub error_ratio: Option<f64>,
    pub checks_passed: usize,
    pub checks_total: usize,
    /// Names of the expectations that failed.
    pub failed: Vec<String>,
    /// Names of those the run could not decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<String>,
}

pub fn row(r: &SweepRun) -> Row {
    let run = &r.run;
    let out = summary::first_scale_out(run);
    let back = summary::last_scale_in(run);
    let stop = run.meta.load_stop_s;
    let mut prev = 0.0;
    let mut pod_s = 0.0;
    for s in &run.samples {
        pod_s += s.replicas.current as f64 * (s.t - prev).max(0.0);
        prev = s.t;
    }
    let all: Vec<_> = run.samples.iter().collect();
    let totals = summary::totals(run);
    Row {
        values: r.values.clone(),
        dir: r.dir_name.clone(),
        first_scale_out_s: out.as_ref().map(|o| o.t),
        first_scale_out_qps: out.and_then(|o| o.offered_qps),
        peak_pods: summary::peak_replicas(run).current,
        last_scale_in_s: back.as_ref().map(|b| b.t),
        scale_in_after_stop_s: back
            .filter(|b| stop.is_finite() && b.t >= stop)
            .map(|b| b.t - stop),
        final_pods: run.samples.last().map_or(0, |s| s.replicas.current),
        pod_minutes: pod_s / 60.0,
        p99_ms: checks::merged_percentile(&all, 99.0),
        error_ratio: totals.error_ratio,
        checks_passed: r.verdict.count(Outcome::Passed),
        checks_total: r.verdict.checks.len(),
        failed: names(&r.verdict, Outcome::Failed),
        not_evaluated: names(&r.verdict, Outcome::NotEvaluated),
    }
}

impl Row {
    /// The failed checks, then those not evaluated, marked so.
    fn not_passed(&self, sep: &str) -> String {
        let undecided = self
            .not_evaluated
            .iter()
            .map(|n| format!("{n} (not evaluated)"));
        let all: Vec<String> = self.failed.iter().cloned().chain(undecided).collect();
        all.join(sep)
    }
}

fn names(v: &Verdict, o: Outcome) -> Vec<String> {
    let of = v.checks.iter().filter(|c| c.outcome() == o);
    of.map(|c| c.name.clone()).collect()
}

fn opt_t(t: Option<f64>) -> String {
    t.map(kube_dur).unwrap_or_else(|| "–".into())
}

fn cells(r: &Row) -> Vec<String> {
    vec![
        opt_t(r.first_scale_out_s),
        r.first_scale_out_qps
            .map(|q| num(q, 1))
            .unwrap_or_else(|| "–".into()),
        r.peak_pods.to_string(),
        opt_t(r.last_scale_in_s),
        r.scale_in_after_stop_s
            .map(|d| format!("+{}", kube_dur(d)))
            .unwrap_or_else(|| "–".into()),
        r.final_pods.to_string(),
        num(r.pod_minutes, 1),
        r.p99_ms
            .map(|p| format!("{} ms", num(p, 1)))
            .unwrap_or_else(|| "–".into()),
        r.error_ratio
            .map(|e| format!("{}%", num(e * 100.0, 2)))
            .unwrap_or_else(|| "–".into()),
        format!("{}/{}", r.checks_passed, r.checks_total),
    ]
}

/// Column names for the settings: the last path segment when that is
/// unambiguous (`maxReplicas`), else the whole key.
pub fn short_keys(keys: &[String]) -> Vec<String> {
    let short: Vec<String> = keys
        .iter()
        .map(|k| k.rsplit(['.', ':']).next().unwrap_or(k).to_string())
        .collect();
    let unique = short
        .iter()
        .all(|a| short.iter().filter(|b| *b == a).count() == 1);
    if unique {
        short
    } else {
        keys.to_vec()
    }
}

const HEADS: [&str; 10] = [
    "first scale-out",
    "at QPS",
    "peak pods",
    "last scale-in",
    "after stop",
    "final pods",
    "pod·min",
    "p99",
    "errors",
    "checks",
];

/// The terminal table: one row per value.
pub fn table(keys: &[String], rows: &[Row]) -> String {
    let mut grid: Vec<Vec<String>> = vec![short_keys(keys)
        .into_iter()
        .chain(HEADS.iter().map(|h| h.to_string()))
        .chain(std::iter::once("failed".to_string()))
        .collect()];
    for r in rows {
        grid.push(
            r.values
                .iter()
                .cloned()
                .chain(cells(r))
                .chain(std::iter::once(r.not_passed(", ")))
                .collect(),
        );
    }
    let n = grid[0].len();
    let width: Vec<usize> = (0..n)
        .map(|c| grid.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in grid.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&width)
            .enumerate()
            .map(|(c, (v, w))| {
                if c < keys.len() || c == n - 1 {
                    format!("{v:<w$}")
                } else {
                    format!("{v:>w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"─".repeat(width.iter().sum::<usize>() + 2 * (n - 1)));
            out.push('\n');
        }
    }
    let passed = rows
        .iter()
        .filter(|r| r.checks_passed == r.checks_total)
        .count();
    let _ = write!(
        out,
        "{passed} of {} runs passed every expectation",
        rows.len()
    );
    out
}

pub fn csv(keys: &[String], rows: &[Row]) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let f = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut out: String = keys.iter().map(|k| q(k)).collect::<Vec<_>>().join(",");
    out.push_str(",first_scale_out_s,first_scale_out_qps,peak_pods,last_scale_in_s,scale_in_after_stop_s,final_pods,pod_minutes,p99_ms,error_ratio,checks_passed,checks_total,failed,run_dir\n");
    for r in rows {
        let vals: Vec<String> = r.values.iter().map(|v| q(v)).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            vals.join(","),
            f(r.first_scale_out_s),
            f(r.first_scale_out_qps),
            r.peak_pods,
            f(r.last_scale_in_s),
            f(r.scale_in_after_stop_s),
            r.final_pods,
            r.pod_minutes,
            f(r.p99_ms),
            f(r.error_ratio),
            r.checks_passed,
            r.checks_total,
            q(&r.not_passed("; ")),
            q(&r.dir)
        );
    }
    out
}

pub fn json(info: &Info, runs: &[SweepRun], rows: &[Row]) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Doc<'a> {
        #[serde(flatten)]
        info: &'a Info,
        runs: Vec<RunJson<'a>>,
    }
    #[derive(Serialize)]
    struct RunJson<'a> {
        #[serde(flatten)]
        row: &'a Row,
        checks: &'a [checks::CheckResult],
    }
    let doc = Doc {
        info,
        runs: runs
            .iter()
            .zip(rows)
            .map(|(r, row)| RunJson {
                row,
                checks: &r.verdict.checks,
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&doc)?)
}

fn label(keys: &[String], values: &[String]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| {
            let short = k.rsplit(['.', ':']).next().unwrap_or(k);
            format!("{short}={v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pods over time, one step line per run, on one chart.
fn overlay(info: &Info, runs: &[SweepRun]) -> Option<TimeChart> {
    let first = &runs.first()?.run;
    let mut c = TimeChart::new(
        first,
        charts::W,
        420,
        Axis::new("ready pods", Scale::Count, ""),
    );
    c.x_max = runs
        .iter()
        .map(|r| super::x_max_s(&r.run))
        .fold(c.x_max, f64::max);
    let stop = first.meta.load_stop_s;
    if stop.is_finite() && stop > 0.0 && stop < c.x_max {
        c.shade_from = Some((stop, "load stopped".into()));
    }
    // The offered curve once, when the sweep does not change it.
    let offered = |r: &RunData| -> Vec<(f64, f64)> {
        r.samples.iter().map(|s| (s.t, s.offered_qps)).collect()
    };
    let same_load = runs.iter().all(|r| offered(&r.run) == offered(first));
    if same_load {
        c.y2 = Some(Axis::new("offered requests / s", Scale::Linear, ""));
        let mut s = Series::new("offered QPS", charts::OFFERED, Stroke::Dashed);
        s.points = offered(first);
        s.secondary = true;
        s.width = 1;
        c.series.push(s);
    }
    for (i, r) in runs.iter().enumerate() {
        let mut s = Series::new(
            label(&info.keys, &r.values),
            PALETTE[i % PALETTE.len()],
            if (i / PALETTE.len()).is_multiple_of(2) {
                Stroke::Step
            } else {
                Stroke::StepDashed
            },
        );
        s.points = r
            .run
            .samples
            .iter()
            .map(|x| (x.t, x.replicas.ready as f64))
            .collect();
        c.series.push(s);
    }
    Some(c)
}

pub fn render(info: &Info, runs: &[SweepRun], rows: &[Row]) -> anyhow::Result<String> {
    let mut h = String::with_capacity(256 * 1024);
    let passed = rows
        .iter()
        .filter(|r| r.checks_passed == r.checks_total)
        .count();
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — sweep</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <header class=\"top\">\n<p class=\"kicker\">Sweep on the sim backend</p>\n\
         <div class=\"title\"><h1>{}</h1><span class=\"badge {}\">{passed} of {} passed</span></div>\n\
         <dl class=\"meta\"><div><dt>scenario</dt><dd>{}</dd></div><div><dt>varied</dt><dd>{}</dd></div>\
         <div><dt>runs</dt><dd>{}</dd></div><div><dt>seed</dt><dd>{}</dd></div></dl>\n</header>\n",
        esc(&info.scenario),
        esc(&info.scenario),
        if passed == rows.len() { "pass" } else { "warn" },
        rows.len(),
        esc(&info.scenario_path),
        esc(&info.keys.join(" × ")),
        rows.len(),
        info.seed
    )?;

    h.push_str(
        "<section>\n<h2>One row per value</h2>\n<p class=\"sub\">Times are experiment time. \
         <i>after stop</i> is how long after the load stopped the last scale-in came; \
         <i>pod·min</i> is pods × minutes over the run, what the capacity cost. \
         Each row links to that run's full report.</p>\n<div style=\"overflow-x:auto\">\
         <table><thead><tr><th class=\"num\">#</th>",
    );
    for (k, short) in info.keys.iter().zip(short_keys(&info.keys)) {
        write!(h, "<th title=\"{}\">{}</th>", esc(k), esc(&short))?;
    }
    for hd in HEADS {
        write!(h, "<th class=\"num\">{hd}</th>")?;
    }
    h.push_str("<th>failed</th></tr></thead><tbody>\n");
    for (i, r) in rows.iter().enumerate() {
        let cls = if r.checks_passed == r.checks_total {
            ""
        } else {
            " class=\"failed\""
        };
        write!(
            h,
            "<tr{cls}><td class=\"num\"><a href=\"{}/report.html\">{}</a></td>",
            esc(&r.dir),
            i + 1
        )?;
        for v in &r.values {
            write!(h, "<td class=\"nowrap\"><code>{}</code></td>", esc(v))?;
        }
        for c in cells(r) {
            write!(h, "<td class=\"num\">{}</td>", esc(&c))?;
        }
        writeln!(h, "<td>{}</td></tr>", esc(&r.not_passed(", ")))?;
    }
    h.push_str("</tbody></table></div>\n</section>\n");

    if let Some(c) = overlay(info, runs) {
        h.push_str(
            "<section>\n<h2>Ready pods over time</h2>\n<p class=\"sub\">One line per value; \
             lines that coincide are drawn over each other.</p>\n",
        );
        figure(&mut h, &c, "ready pods over time for every value", "")?;
        h.push_str("</section>\n");
    }

    h.push_str(
        "<section>\n<h2>Each run</h2>\n<p class=\"sub\">Offered and achieved QPS with ready \
         and desired pods (the report's Fig. 7), per value.</p>\n<div class=\"grid2\">\n",
    );
    for r in runs {
        let mut c = charts::qps_and_pods(&r.run);
        c.width = 560;
        c.height = 300;
        write!(
            h,
            "<div><h3><a href=\"{}/report.html\">{}</a> {}</h3>",
            esc(&r.dir_name),
            esc(&label(&info.keys, &r.values)),
            if r.verdict.passed() {
                "<span class=\"ok\">passed</span>"
            } else {
                "<span class=\"badge fail\">failed</span>"
            }
        )?;
        figure(&mut h, &c, &label(&info.keys, &r.values), "")?;
        h.push_str("</div>\n");
    }
    h.push_str("</div>\n</section>\n");
    h.push_str(
        "<footer>autoscale-harness sweep · every run on the sim backend with the same seed</footer>\n</main>\n</body>\n</html>\n",
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[&str], passed: usize, failed: &[&str]) -> Row {
        Row {
            values: values.iter().map(|v| v.to_string()).collect(),
            dir: "01-x".into(),
            first_scale_out_s: Some(690.0),
            first_scale_out_qps: Some(46.9),
            peak_pods: 3,
            last_scale_in_s: Some(2040.0),
            scale_in_after_stop_s: Some(360.0),
            final_pods: 2,
            pod_minutes: 92.5,
            p99_ms: Some(20.0),
            error_ratio: Some(0.0),
            checks_passed: passed,
            checks_total: 7,
            failed: failed.iter().map(|f| f.to_string()).collect(),
            not_evaluated: Vec::new(),
        }
    }

    #[test]
    fn short_keys_only_when_unambiguous() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            short_keys(&k(&["hpa:spec.maxReplicas", "load.stages[0].ramp_to"])),
            k(&["maxReplicas", "ramp_to"])
        );
        assert_eq!(
            short_keys(&k(&["hpa:spec.maxReplicas", "hpa/b:spec.maxReplicas"])),
            k(&["hpa:spec.maxReplicas", "hpa/b:spec.maxReplicas"])
        );
    }

    #[test]
    fn table_and_csv_carry_every_row() {
        let keys = vec!["hpa:spec.maxReplicas".to_string()];
        let rows = vec![
            row(&["3"], 7, &[]),
            row(&["2"], 5, &["scale_out 2→3", "pod_qps"]),
        ];
        let t = table(&keys, &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("maxReplicas") && lines[0].ends_with("failed"));
        assert!(
            lines[2].contains("11m30s") && lines[2].contains("+6m") && lines[2].contains("7/7")
        );
        assert!(lines[3].ends_with("scale_out 2→3, pod_qps"), "{t}");
        assert_eq!(lines.last(), Some(&"1 of 2 runs passed every expectation"));
        let c = csv(&keys, &rows);
        assert_eq!(c.lines().count(), 3);
        assert!(
            c.lines()
                .nth(2)
                .unwrap()
                .contains(",scale_out 2→3; pod_qps,"),
            "{c}"
        );
    }
}
