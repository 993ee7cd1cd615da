//! Expectations evaluated over a recorded run. Pure: data in, verdict out.

use serde::{Deserialize, Serialize};

/// The outcome of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Short identifier, e.g. `scale_out 2→3`.
    pub name: String,
    /// The bound as a person reads it, e.g. `between 10m-14m at 40-50 QPS offered`.
    pub bound: String,
    /// What was measured, e.g. `at 11m42s with 46.1 QPS offered`.
    pub measured: String,
    pub passed: bool,
    /// Why the check could not be decided from what was recorded (the run
    /// ended before its window did, or the cluster could not show what it
    /// needs); `passed` is then false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_evaluated: Option<String>,
}

/// The three outcomes of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    NotEvaluated,
}

impl CheckResult {
    pub fn outcome(&self) -> Outcome {
        match (self.passed, &self.not_evaluated) {
            (_, Some(_)) => Outcome::NotEvaluated,
            (true, None) => Outcome::Passed,
            (false, None) => Outcome::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub checks: Vec<CheckResult>,
}

impl Verdict {
    /// Every check passed; one not evaluated means the run did not show
    /// what was asked.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome() == Outcome::Passed)
    }

    pub fn count(&self, o: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome() == o).count()
    }
}

use crate::recorder::{decode_hist, Event, RunData, Sample};
use crate::scenario::{fmt_dur, Expectation, Window};
use std::time::Duration;

/// Evaluates every expectation over the recorded run.
pub fn evaluate(expect: &[Expectation], run: &RunData) -> Verdict {
    Verdict {
        checks: expect
            .iter()
            .map(|e| {
                let mut c = check(e, run);
                c.not_evaluated = undecided(e, run, &c);
                if c.not_evaluated.is_some() {
                    c.passed = false;
                }
                c
            })
            .collect(),
    }
}

/// Why a check's result is not a verdict: the recorded data ends before
/// the window the check needs (an interrupted or killed run, or a window
/// past the end), or what it measures could not be observed. A violation
/// already seen stays a failure.
fn undecided(e: &Expectation, run: &RunData, c: &CheckResult) -> Option<String> {
    let m = &run.meta;
    let end = run.samples.last().map_or(0.0, |s| s.t);
    let partial = m.interrupted || end + m.interval_s / 2.0 < m.duration_s;
    let ended = || {
        if partial {
            format!("the run ended at {} of {}", fmt_t(end), fmt_t(m.duration_s))
        } else {
            format!("the run ended at {}", fmt_t(end))
        }
    };
    let before = |t: f64, what: &str| {
        (end + 1e-9 < t).then(|| format!("{}, before {what} ({})", ended(), fmt_t(t)))
    };
    match e {
        Expectation::ScaleOut(so) if !c.passed && c.measured == NO_SCALE_OUT => {
            let to = so.between.map_or(m.duration_s, |w| w.to.as_secs_f64());
            if partial {
                before(to, "the window ended")
            } else {
                None
            }
        }
        Expectation::ScaleIn(si) if !c.passed => {
            let anchor = si.after.at(m.load_stop_s);
            let deadline = anchor + si.within.as_secs_f64();
            // A scale-in seen too late is a failure; none seen yet is not.
            let seen = run.events.iter().any(|ev| {
                run.is_target_rescale(ev)
                    && ev.t >= anchor
                    && ev.to_replicas.is_some_and(|n| n <= si.to)
            });
            if seen {
                None
            } else if end + 1e-9 < anchor {
                Some(format!("{}, before {}", ended(), si.after.describe()))
            } else {
                before(
                    deadline,
                    &format!("{} after {}", fmt_dur(si.within), si.after.describe()),
                )
            }
        }
        Expectation::MaxReplicas(_) | Expectation::MinReplicas(_) if partial && c.passed => {
            Some(format!("held over what was recorded, but {}", ended()))
        }
        Expectation::ErrorRatio(_) if partial => Some(format!("{} (so far)", ended())),
        Expectation::Latency(l) => match &l.during {
            Some(w) => before(w.to.as_secs_f64(), "the window ended"),
            None if partial => Some(format!("{} (so far)", ended())),
            None => None,
        },
        Expectation::Replicas(r) => {
            let to =
                r.at.or(r.during.map(|w| w.to))
                    .map_or(0.0, |d| d.as_secs_f64());
            before(to, "the instant it checks")
        }
        // A script that failed decides nothing; it says why itself.
        Expectation::Lua(_) => c.not_evaluated.clone(),
        Expectation::HpaRange(_) if c.measured == NO_RANGE => Some(NO_RANGE.into()),
        Expectation::HpaRange(h) => before(h.at.as_secs_f64(), "the instant it checks"),
        Expectation::PodQps(p) => match &m.pod_qps_unobservable {
            Some(why) => Some(why.clone()),
            None => before(p.during.to.as_secs_f64(), "the window ended"),
        },
        _ => None,
    }
}

const NO_SCALE_OUT: &str = "no such scale-out happened";
const NO_RANGE: &str = "the samples do not record the HPA's range";

/// The first sample at or after `t` seconds.
fn sample_at(run: &RunData, t: f64) -> Option<&Sample> {
    run.samples.iter().find(|s| s.t + 1e-9 >= t)
}

fn check(e: &Expectation, run: &RunData) -> CheckResult {
    let rescales: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| run.is_target_rescale(e))
        .collect();
    match e {
        Expectation::ScaleOut(so) => {
            let name = match so.from {
                Some(f) => format!("scale_out {f}→{}", so.to),
                None => format!("scale_out to {}", so.to),
            };
            let mut bound = Vec::new();
            if let Some(w) = &so.between {
                bound.push(format!("between {}", fmt_window(w)));
            }
            if let Some(r) = &so.offered_qps {
                bound.push(format!("at {}-{} QPS offered", num(r.low), num(r.high)));
            }
            let bound = if bound.is_empty() {
                "happens".to_string()
            } else {
                bound.join(" ")
            };
            // The first upward rescale that reaches `to` (from `from`, if given).
            let hit = rescales.iter().find(|ev| {
                let (Some(a), Some(b)) = (ev.from_replicas, ev.to_replicas) else {
                    return false;
                };
                b > a && b >= so.to && so.from.is_none_or(|f| a == f)
            });
            match hit {
                None => CheckResult {
                    name,
                    bound,
                    measured: NO_SCALE_OUT.into(),
                    passed: false,
                    not_evaluated: None,
                },
                Some(ev) => {
                    let offered = ev.offered_qps.unwrap_or(f64::NAN);
                    let in_time = so.between.is_none_or(|w| in_window(&w, ev.t));
                    let in_rate = so.offered_qps.is_none_or(|r| r.contains(offered));
                    CheckResult {
                        name,
                        bound,
                        measured: format!(
                            "{}→{} at {} with {:.1} QPS offered",
                            ev.from_replicas.unwrap_or(0),
                            ev.to_replicas.unwrap_or(0),
                            fmt_t(ev.t),
                            offered
                        ),
                        passed: in_time && in_rate,
                        not_evaluated: None,
                    }
                }
            }
        }
        Expectation::ScaleIn(si) => {
            let anchor = si.after.at(run.meta.load_stop_s);
            let at = si.after.describe();
            let name = format!("scale_in to {}", si.to);
            let bound = format!("within {} after {at}", fmt_dur(si.within));
            let at_stop = spec_at(&run.samples, anchor);
            let hit = rescales
                .iter()
                .find(|ev| ev.t >= anchor && ev.to_replicas.is_some_and(|n| n <= si.to));
            let (measured, passed) = match (hit, at_stop) {
                (Some(ev), _) => {
                    let after = ev.t - anchor;
                    (
                        format!(
                            "{}→{} {} after {at} (at {})",
                            ev.from_replicas.unwrap_or(0),
                            ev.to_replicas.unwrap_or(0),
                            fmt_t(after),
                            fmt_t(ev.t)
                        ),
                        after <= si.within.as_secs_f64(),
                    )
                }
                (None, Some(n)) if n <= si.to => (format!("already at {n} at {at}"), true),
                (None, Some(n)) => {
                    let (end, last) = run
                        .samples
                        .last()
                        .map_or((anchor, n), |s| (s.t, s.replicas.spec));
                    (
                        format!(
                            "{n} at {at}, still {last} {} after it",
                            fmt_t((end - anchor).max(0.0))
                        ),
                        false,
                    )
                }
                (None, None) => (format!("the run ended before {at}"), false),
            };
            CheckResult {
                name,
                bound,
                measured,
                passed,
                not_evaluated: None,
            }
        }
        Expectation::Replicas(r) => {
            let (lo, hi) = r.bounds();
            let bound = match (r.is, lo, hi) {
                (Some(n), _, _) => format!("{n}"),
                (None, lo, i32::MAX) => format!("at least {lo}"),
                (None, 0, hi) => format!("at most {hi}"),
                (None, lo, hi) => format!("{lo}-{hi}"),
            };
            let picked: Vec<&Sample> = match (r.at, r.during) {
                (Some(at), _) => sample_at(run, at.as_secs_f64()).into_iter().collect(),
                (None, Some(w)) => run.samples.iter().filter(|s| in_window(&w, s.t)).collect(),
                (None, None) => Vec::new(),
            };
            let when = match (r.at, r.during) {
                (Some(at), _) => format!("at {}", fmt_dur(at)),
                (None, Some(w)) => format!("during {}", fmt_window(&w)),
                (None, None) => String::new(),
            };
            let (low, high) = picked
                .iter()
                .map(|s| s.replicas.spec)
                .fold((i32::MAX, i32::MIN), |(a, b), n| (a.min(n), b.max(n)));
            let measured = match picked.first() {
                None => "no samples".into(),
                Some(s) if r.at.is_some() => format!("{} at {}", s.replicas.spec, fmt_t(s.t)),
                Some(_) if low == high => format!("{low} throughout"),
                Some(_) => format!("{low}-{high}"),
            };
            CheckResult {
                name: "replicas".into(),
                bound: format!("{bound} {when}"),
                measured,
                passed: !picked.is_empty() && low >= lo && high <= hi,
                not_evaluated: None,
            }
        }
        Expectation::HpaRange(h) => {
            let s = sample_at(run, h.at.as_secs_f64());
            // Without a schedule the range never moves from the HPA's spec.
            let fixed = run
                .meta
                .schedule
                .is_none()
                .then_some((run.meta.min_replicas, run.meta.max_replicas));
            let range = s.and_then(|s| {
                let hpa = s.hpa.as_ref();
                let moved = hpa.and_then(|h| Some((h.min_replicas?, h.max_replicas?)));
                let (min, max) = moved.or(fixed)?;
                Some((min, max, s.t))
            });
            let bound = format!("[{}, {}] at {}", h.min, h.max, fmt_dur(h.at));
            match range {
                Some((min, max, t)) => CheckResult {
                    name: "hpa_range".into(),
                    bound,
                    measured: format!("[{min}, {max}] at {}", fmt_t(t)),
                    passed: (min, max) == (h.min, h.max),
                    not_evaluated: None,
                },
                None => CheckResult {
                    name: "hpa_range".into(),
                    bound,
                    measured: if s.is_some() {
                        NO_RANGE.into()
                    } else {
                        "no samples".into()
                    },
                    passed: false,
                    not_evaluated: None,
                },
            }
        }
        Expectation::Lua(lc) => lua_check(lc, run),
        Expectation::MaxReplicas(n) => {
            let peak = run
                .samples
                .iter()
                .map(|s| s.replicas.spec)
                .chain(rescales.iter().filter_map(|e| e.to_replicas))
                .max();
            CheckResult {
                name: "max_replicas".into(),
                bound: format!("never above {n}"),
                measured: peak.map_or("no samples".into(), |p| format!("peak {p}")),
                passed: peak.is_some_and(|p| p <= *n),
                not_evaluated: None,
            }
        }
        Expectation::MinReplicas(n) => {
            let low = run
                .samples
                .iter()
                .map(|s| s.replicas.spec)
                .chain(rescales.iter().filter_map(|e| e.to_replicas))
                .min();
            CheckResult {
                name: "min_replicas".into(),
                bound: format!("never below {n}"),
                measured: low.map_or("no samples".into(), |p| format!("lowest {p}")),
                passed: low.is_some_and(|p| p >= *n),
                not_evaluated: None,
            }
        }
        Expectation::ErrorRatio(r) => {
            let (mut bad, mut all) = (0u64, 0u64);
            for s in &run.samples {
                bad += s.status.errors() + s.dropped;
                all += s.status.total() + s.dropped;
            }
            let ratio = if all == 0 {
                0.0
            } else {
                bad as f64 / all as f64
            };
            CheckResult {
                name: "error_ratio".into(),
                bound: format!(
                    "below {} (errors and dropped over all requests)",
                    num(r.below)
                ),
                measured: format!("{:.4} ({bad} of {all})", ratio),
                passed: all > 0 && ratio < r.below,
                not_evaluated: None,
            }
        }
        Expectation::Latency(l) => {
            let samples: Vec<&Sample> = run
                .samples
                .iter()
                .filter(|s| l.during.is_none_or(|w| in_window(&w, s.t)))
                .collect();
            let name = format!("latency p{}", num(l.percentile));
            let mut bound = format!("below {}", fmt_ms(l.below.as_secs_f64() * 1e3));
            if let Some(w) = &l.during {
                bound.push_str(&format!(" during {}", fmt_window(w)));
            }
            match merged_percentile(&samples, l.percentile) {
                Some(ms) => CheckResult {
                    name,
                    bound,
                    measured: format!("{} (from intended send time)", fmt_ms(ms)),
                    passed: ms < l.below.as_secs_f64() * 1e3,
                    not_evaluated: None,
                },
                None => CheckResult {
                    name,
                    bound,
                    measured: "no completed requests".into(),
                    passed: false,
                    not_evaluated: None,
                },
            }
        }
        Expectation::PodQps(p) => {
            let name = "pod_qps".to_string();
            let bound = format!(
                "{}-{} QPS per ready pod during {}",
                num(p.between.low),
                num(p.between.high),
                fmt_window(&p.during)
            );
            let window: Vec<&Sample> = run
                .samples
                .iter()
                .filter(|s| in_window(&p.during, s.t))
                .collect();
            // Mean per pod over the samples where it was ready.
            let mut per_pod: std::collections::BTreeMap<&str, (f64, u32)> = Default::default();
            for s in &window {
                for pod in s.pods.iter().filter(|p| p.ready && !p.terminating) {
                    let e = per_pod.entry(pod.name.as_str()).or_default();
                    e.0 += pod.qps;
                    e.1 += 1;
                }
            }
            // Pods that were ready for under half the window are transients.
            let half = (window.len() as u32).div_ceil(2);
            let means: Vec<f64> = per_pod
                .values()
                .filter(|(_, n)| *n >= half.max(1))
                .map(|(sum, n)| sum / *n as f64)
                .collect();
            if means.is_empty() {
                return CheckResult {
                    name,
                    bound,
                    measured: "no ready pods in the window".into(),
                    passed: false,
                    not_evaluated: None,
                };
            }
            let lo = means.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = means.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mean = means.iter().sum::<f64>() / means.len() as f64;
            CheckResult {
                name,
                bound,
                measured: format!(
                    "mean {:.1} over {} pods (each {:.1}-{:.1})",
                    mean,
                    means.len(),
                    lo,
                    hi
                ),
                passed: p.between.contains(lo) && p.between.contains(hi),
                not_evaluated: None,
            }
        }
    }
}

/// Spec replicas at time `t` (the last sample at or before it); none when
/// the record ends before `t`.
fn spec_at(samples: &[Sample], t: f64) -> Option<i32> {
    if samples.last().is_none_or(|s| s.t + 1e-9 < t) {
        return None;
    }
    samples
        .iter()
        .take_while(|s| s.t <= t + 1e-9)
        .last()
        .map(|s| s.replicas.spec)
}

/// Exact percentile over the samples' merged histograms (ms of experiment
/// time); falls back to the worst per-sample value when histograms are missing.
pub(crate) fn merged_percentile(samples: &[&Sample], pct: f64) -> Option<f64> {
    let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
    for s in samples {
        if let Some(h) = s.latency_hdr.as_deref().and_then(decode_hist) {
            match &mut merged {
                Some(m) => {
                    let _ = m.add(&h);
                }
                None => merged = Some(h),
            }
        }
    }
    if let Some(m) = merged.filter(|m| !m.is_empty()) {
        return Some(m.value_at_quantile(pct / 100.0) as f64 / 1e3);
    }
    let pick = |s: &&&Sample| -> f64 {
        if pct >= 99.9 {
            s.latency_ms.p999
        } else if pct >= 99.0 {
            s.latency_ms.p99
        } else if pct >= 90.0 {
            s.latency_ms.p90
        } else {
            s.latency_ms.p50
        }
    };
    samples
        .iter()
        .filter(|s| s.completed > 0)
        .map(|s| pick(&s))
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
}

fn in_window(w: &Window, t: f64) -> bool {
    t >= w.from.as_secs_f64() && t <= w.to.as_secs_f64()
}

fn fmt_window(w: &Window) -> String {
    format!("{}-{}", fmt_dur(w.from), fmt_dur(w.to))
}

/// Experiment seconds as `11m42s`.
pub fn fmt_t(t: f64) -> String {
    fmt_dur(Duration::from_secs(t.max(0.0).round() as u64))
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{:.1}ms", ms)
    }
}

pub(crate) fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// The verdict as a table for the terminal. With a `width` (a terminal's),
/// the bound and measured cells wrap within their columns to fit it.
pub fn table(v: &Verdict, width: Option<usize>) -> String {
    use textwrap::core::display_width;
    let result = |c: &CheckResult| match c.outcome() {
        Outcome::Passed => "pass",
        Outcome::Failed => "FAIL",
        Outcome::NotEvaluated => "not evaluated",
    };
    // The result first, as k6 puts its check marks: the verdict stays
    // where the eye starts.
    let rows: Vec<[&str; 4]> = std::iter::once(["RESULT", "EXPECTATION", "BOUND", "MEASURED"])
        .chain(v.checks.iter().map(|c| {
            [
                result(c),
                c.name.as_str(),
                c.bound.as_str(),
                c.measured.as_str(),
            ]
        }))
        .collect();
    let widest = |i: usize| rows.iter().map(|r| display_width(r[i])).max().unwrap_or(0);
    let (w_result, w_name) = (widest(0), widest(1));
    let (w_bound, w_meas) = match width {
        Some(w) => share(
            w.saturating_sub(w_result + w_name + 3 * GAP.len()),
            widest(2),
            widest(3),
        ),
        None => (widest(2), widest(3)),
    };
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(display_width(s))));
    let mut out = String::new();
    for r in &rows {
        let bound = textwrap::wrap(r[2], w_bound.max(1));
        let measured = textwrap::wrap(r[3], w_meas.max(1));
        for i in 0..bound.len().max(measured.len()) {
            let (result, name) = if i == 0 { (r[0], r[1]) } else { ("", "") };
            let line = [
                pad(result, w_result),
                pad(name, w_name),
                pad(bound.get(i).map_or("", |l| l), w_bound),
                measured.get(i).map_or("", |l| l).to_string(),
            ]
            .join(GAP);
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    // Reasons under the table: inside, they would wrap every row.
    for c in &v.checks {
        if let (Outcome::NotEvaluated, Some(r)) = (c.outcome(), c.not_evaluated.as_deref()) {
            out.push_str(&format!("{}: not evaluated: {r}\n", c.name));
        }
    }
    let failed = v.count(Outcome::Failed);
    let undecided = v.count(Outcome::NotEvaluated);
    out.push_str(&if v.checks.is_empty() {
        "no expectations: nothing was asserted\n".to_string()
    } else if undecided > 0 {
        format!(
            "NOT PASSED: {} held, {failed} did not, {undecided} could not be evaluated (of {})\n",
            v.count(Outcome::Passed),
            v.checks.len()
        )
    } else if failed == 0 {
        format!(
            "PASSED: {} of {} expectations held\n",
            v.checks.len(),
            v.checks.len()
        )
    } else {
        format!(
            "FAILED: {failed} of {} expectations did not hold\n",
            v.checks.len()
        )
    });
    out
}

const GAP: &str = "  ";

/// Splits `room` columns between the bound and measured columns, whose
/// widest cells are `bound` and `measured`: each keeps its own width if
/// both fit, a narrow one keeps its own and the other takes the rest, and
/// two wide ones share it evenly (never below 12 columns each).
fn share(room: usize, bound: usize, measured: usize) -> (usize, usize) {
    const MIN: usize = 12;
    if bound + measured <= room {
        return (bound, measured);
    }
    let half = room / 2;
    let (b, m) = if bound <= half {
        (bound, room - bound)
    } else if measured <= half {
        (room - measured, measured)
    } else {
        (half, room - half)
    };
    (b.max(MIN.min(bound)), m.max(MIN.min(measured)))
}

/// A Lua check: the script is read next to the scenario the run recorded
/// (so `report RUN_DIR` runs the script as it is now).
fn lua_check(lc: &crate::scenario::LuaCheck, run: &RunData) -> CheckResult {
    let script = lc.script();
    let name = format!("lua {script}");
    let scenario = std::path::Path::new(&run.meta.scenario_path);
    let undecided = |why: String| CheckResult {
        name: name.clone(),
        bound: "the script passes".into(),
        measured: why.clone(),
        passed: false,
        not_evaluated: Some(why),
    };
    let source = match crate::lua::read(scenario, script) {
        Ok(s) => s,
        Err(e) => return undecided(format!("cannot read {script}: {e}")),
    };
    match crate::lua::check::run(script, &source, run, &lc.params()) {
        Ok(o) => CheckResult {
            name: name.clone(),
            bound: o.bound.unwrap_or_else(|| "the script passes".into()),
            measured: match (o.value, o.message.is_empty()) {
                (Some(v), false) => format!("{v}: {}", o.message),
                (Some(v), true) => v,
                (None, _) => o.message,
            },
            passed: o.pass,
            not_evaluated: None,
        },
        Err(e) => undecided(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{PodSample, Replicas};
    use crate::scenario::{Range, ScaleIn, ScaleOut};

    fn rescale(t: f64, from: i32, to: i32, offered: f64) -> Event {
        Event {
            t,
            type_: "Normal".into(),
            reason: "SuccessfulRescale".into(),
            from_replicas: Some(from),
            to_replicas: Some(to),
            offered_qps: Some(offered),
            ..Default::default()
        }
    }

    fn run() -> RunData {
        let mut r = RunData::default();
        r.meta.load_stop_s = 1680.0;
        for t in 0..2100 {
            let spec = if (700..2040).contains(&t) { 3 } else { 2 };
            r.samples.push(Sample {
                t: t as f64,
                replicas: Replicas {
                    spec,
                    current: spec,
                    ready: spec,
                    desired: spec,
                },
                pods: (0..spec)
                    .map(|i| PodSample {
                        name: format!("p{i}"),
                        ready: true,
                        qps: 36.0,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            });
        }
        r.events = vec![rescale(700.0, 2, 3, 45.3), rescale(2040.0, 3, 2, 0.0)];
        r
    }

    fn so(between: Option<(u64, u64)>, qps: Option<(f64, f64)>) -> Expectation {
        Expectation::ScaleOut(ScaleOut {
            from: Some(2),
            to: 3,
            between: between.map(|(a, b)| Window {
                from: Duration::from_secs(a),
                to: Duration::from_secs(b),
            }),
            offered_qps: qps.map(|(low, high)| Range { low, high }),
        })
    }

    #[test]
    fn scale_out_bounds_both_ways() {
        let r = run();
        let v = evaluate(&[so(Some((600, 840)), Some((40.0, 50.0)))], &r);
        assert!(v.passed(), "{}", table(&v, None));
        assert_eq!(v.checks[0].measured, "2→3 at 11m40s with 45.3 QPS offered");
        assert!(!evaluate(&[so(Some((720, 840)), None)], &r).passed());
        assert!(!evaluate(&[so(None, Some((46.0, 50.0)))], &r).passed());
    }

    #[test]
    fn scale_in_measures_from_load_stop() {
        let r = run();
        let si = |mins: u64| {
            Expectation::ScaleIn(ScaleIn {
                to: 2,
                within: Duration::from_secs(mins * 60),
                after: Default::default(),
            })
        };
        let v = evaluate(&[si(7)], &r);
        assert!(v.passed());
        assert!(
            v.checks[0].measured.starts_with("3→2 6m after"),
            "{}",
            v.checks[0].measured
        );
        assert!(!evaluate(&[si(5)], &r).passed());
    }

    #[test]
    fn what_an_interrupted_run_did_not_reach_is_not_evaluated() {
        let mut r = run();
        r.samples.truncate(61);
        r.events.clear();
        (r.meta.interrupted, r.meta.duration_s, r.meta.interval_s) = (true, 2100.0, 1.0);
        let si = Expectation::ScaleIn(ScaleIn {
            to: 2,
            within: Duration::from_secs(420),
            after: Default::default(),
        });
        let all = [so(Some((600, 840)), None), si, Expectation::MaxReplicas(3)];
        let v = evaluate(&all, &r);
        assert!(!v.passed());
        assert_eq!(v.count(Outcome::NotEvaluated), 3, "{}", table(&v, None));
        assert_eq!(
            v.checks[0].not_evaluated.as_deref(),
            Some("the run ended at 1m of 35m, before the window ended (14m)")
        );
        assert_eq!(
            v.checks[1].not_evaluated.as_deref(),
            Some("the run ended at 1m of 35m, before load stop")
        );
        assert!(
            table(&v, None).contains("could not be evaluated"),
            "{}",
            table(&v, None)
        );
        // A violation already recorded is a failure, interrupted or not.
        assert_eq!(
            evaluate(&[Expectation::MaxReplicas(1)], &r).checks[0].outcome(),
            Outcome::Failed
        );
        // As is a scale-in that came, but too late.
        let mut late = run();
        (late.meta.duration_s, late.meta.interval_s) = (2100.0, 1.0);
        let si5 = Expectation::ScaleIn(ScaleIn {
            to: 2,
            within: Duration::from_secs(300),
            after: Default::default(),
        });
        assert_eq!(evaluate(&[si5], &late).checks[0].outcome(), Outcome::Failed);
        // Per-pod load the cluster could not show.
        late.meta.pod_qps_unobservable = Some("no Prometheus".into());
        let pq = Expectation::PodQps(crate::scenario::PodQps {
            during: Window {
                from: Duration::from_secs(900),
                to: Duration::from_secs(1200),
            },
            between: Range {
                low: 30.0,
                high: 40.0,
            },
        });
        let c = &evaluate(&[pq], &late).checks[0];
        assert_eq!(c.not_evaluated.as_deref(), Some("no Prometheus"));
    }

    #[test]
    fn replica_bounds_and_pod_qps() {
        let r = run();
        assert!(evaluate(
            &[Expectation::MaxReplicas(3), Expectation::MinReplicas(2)],
            &r
        )
        .passed());
        assert!(!evaluate(&[Expectation::MaxReplicas(2)], &r).passed());
        let pq = |low, high| {
            Expectation::PodQps(crate::scenario::PodQps {
                during: Window {
                    from: Duration::from_secs(1500),
                    to: Duration::from_secs(1600),
                },
                between: Range { low, high },
            })
        };
        assert!(evaluate(&[pq(30.0, 40.0)], &r).passed());
        assert!(!evaluate(&[pq(37.0, 40.0)], &r).passed());
    }

    #[test]
    fn error_ratio_counts_dropped_and_needs_traffic() {
        let mut r = run();
        let er = Expectation::ErrorRatio(crate::scenario::ErrorRatio { below: 0.01 });
        assert!(
            !evaluate(std::slice::from_ref(&er), &r).passed(),
            "no traffic must not pass"
        );
        r.samples[0].status.s2xx = 990;
        r.samples[0].dropped = 10;
        assert!(!evaluate(std::slice::from_ref(&er), &r).passed());
        r.samples[0].status.s2xx = 2000;
        assert!(evaluate(&[er], &r).passed());
    }

    #[test]
    fn the_table_wraps_its_bound_and_measured_cells_to_the_width() {
        let check = |name: &str, bound: &str, measured: &str, passed| CheckResult {
            name: name.into(),
            bound: bound.into(),
            measured: measured.into(),
            passed,
            not_evaluated: None,
        };
        let v = Verdict {
            checks: vec![
                check(
                    "error_ratio",
                    "below 0.01 (errors and dropped over all requests)",
                    "0.0000 (0 of 95700)",
                    true,
                ),
                check(
                    "scale_out 2→3",
                    "between 10m-14m at 40-50 QPS offered",
                    "2→3 at 11m30s with 46.9 QPS offered",
                    false,
                ),
            ],
        };
        let wide = table(&v, None);
        assert_eq!(wide.lines().count(), 4, "{wide}");
        assert_eq!(table(&v, Some(200)), wide);
        let narrow = table(&v, Some(60));
        let rows: Vec<&str> = narrow.lines().collect();
        assert!(rows.iter().all(|l| l.chars().count() <= 60), "{narrow}");
        assert_eq!(
            rows[..6],
            [
                "RESULT  EXPECTATION    BOUND              MEASURED",
                "pass    error_ratio    below 0.01         0.0000 (0 of",
                "                       (errors and        95700)",
                "                       dropped over all",
                "                       requests)",
                "FAIL    scale_out 2→3  between 10m-14m    2→3 at 11m30s with",
            ],
            "{narrow}"
        );
        // Every word is still there, in order.
        let words = |t: &str| t.split_whitespace().map(String::from).collect::<Vec<_>>();
        let mut a = words(&wide);
        let mut b = words(&narrow);
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}
