//! Renders a recorded run into `report.html` (self-contained, inline SVG charts),
//! `summary.json` and `junit.xml`. Pure rendering: everything comes from the
//! `RunData` and the `Verdict`; nothing is measured or fetched here.

mod charts;
mod events;
mod html;
mod junit;
mod policy;
mod summary;
pub mod sweep;
#[cfg(test)]
mod tests;
mod tiers;

use std::path::Path;

use anyhow::Context;

use crate::checks::Verdict;
use crate::recorder::{Event, RunData};

pub const REPORT_HTML: &str = "report.html";
pub const SUMMARY_JSON: &str = "summary.json";
pub const JUNIT_XML: &str = "junit.xml";

/// The three rendered files, as text.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub html: String,
    pub summary_json: String,
    pub junit_xml: String,
}

/// Renders all artifacts. Pure: no I/O, same input gives the same output.
pub fn render(run: &RunData, verdict: &Verdict) -> anyhow::Result<Artifacts> {
    Ok(Artifacts {
        html: html::render(run, verdict)?,
        summary_json: summary::render(run, verdict)?,
        junit_xml: junit::render(run, verdict)?,
    })
}

/// Renders and writes `report.html`, `summary.json` and `junit.xml` into `dir`.
pub fn write(dir: &Path, run: &RunData, verdict: &Verdict) -> anyhow::Result<()> {
    let a = render(run, verdict)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create report directory {}", dir.display()))?;
    for (name, text) in [
        (REPORT_HTML, &a.html),
        (SUMMARY_JSON, &a.summary_json),
        (JUNIT_XML, &a.junit_xml),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers shared by the submodules.

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sample interval in experiment seconds. Falls back to the spacing of the
/// samples (and then 1 s) so a damaged `run.json` cannot make rates infinite.
pub(super) fn interval_s(run: &RunData) -> f64 {
    let i = run.meta.interval_s;
    if i.is_finite() && i > 0.0 {
        return i;
    }
    let mut d: Vec<f64> = run
        .samples
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    if d.is_empty() {
        return 1.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// How long the run actually lasted, experiment seconds (0 when nothing was recorded).
pub(super) fn recorded_s(run: &RunData) -> f64 {
    let last = run.samples.iter().map(|s| s.t).filter(|t| t.is_finite());
    let ended = Some(run.meta.ended_at_s).filter(|t| t.is_finite() && *t > 0.0);
    last.chain(ended).fold(0.0, f64::max)
}

/// The x-axis extent of the time charts: the planned duration for a complete
/// run (so runs of one scenario line up), the recorded span for a partial one.
pub(super) fn x_max_s(run: &RunData) -> f64 {
    let planned =
        Some(run.meta.duration_s).filter(|d| d.is_finite() && *d > 0.0 && !run.meta.interrupted);
    let events = run.events.iter().map(|e| e.t).filter(|t| t.is_finite());
    events
        .chain(planned)
        .chain(std::iter::once(recorded_s(run)))
        .fold(10.0, f64::max)
}

/// `m:ss` (or `h:mm:ss`) of experiment seconds, used on every time axis and table.
pub(super) fn mmss(s: f64) -> String {
    if !s.is_finite() {
        return "–".into();
    }
    let neg = s < 0.0;
    let t = s.abs().round() as u64;
    let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60);
    let body = if h > 0 {
        format!("{h}:{m:02}:{sec:02}")
    } else {
        format!("{m}:{sec:02}")
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// A duration shaped like kubectl's (`45s`, `2m`, `11m42s`, `1h5m`), but keeping
/// seconds up to 3 h where kubectl's `HumanDuration` drops them from 10 m on:
/// here it is a timestamp within the run, so the seconds matter.
pub(super) fn kube_dur(s: f64) -> String {
    if !s.is_finite() {
        return "0s".into();
    }
    // Negative: the warm-up before the load started.
    if s < 0.0 {
        return format!("-{}", kube_dur(-s));
    }
    let t = s.floor() as u64; // kubectl truncates
    if t < 120 {
        return format!("{t}s");
    }
    let (m, sec) = (t / 60, t % 60);
    if m < 180 {
        return if sec == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{sec}s")
        };
    }
    let (h, m) = (t / 3600, t / 60 % 60);
    if h < 48 {
        return if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m}m")
        };
    }
    format!("{}d{}h", h / 24, h % 24)
}

/// A number without noise: integers as integers, others with up to `prec` decimals.
pub(super) fn num(v: f64, prec: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{:.0}", v);
    }
    let s = format!("{:.*}", prec, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A rescale event with its sizes resolved.
#[derive(Debug, Clone)]
pub(super) struct Rescale<'a> {
    pub t: f64,
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub offered_qps: Option<f64>,
    pub event: &'a Event,
}

/// SuccessfulRescale events in time order. Sizes come from the event's fields;
/// when the recorder could not fill them, `to` is read from the HPA message
/// ("New size: 3; ...") and `from` from the scale target's spec just before.
pub(super) fn rescales(run: &RunData) -> Vec<Rescale<'_>> {
    let mut out: Vec<Rescale> = run
        .events
        .iter()
        .filter(|e| run.is_target_rescale(e))
        .map(|e| Rescale {
            t: e.t,
            to: e.to_replicas.or_else(|| parse_new_size(&e.message)),
            from: e.from_replicas.or_else(|| {
                run.samples
                    .iter()
                    .rev()
                    .find(|s| s.t < e.t)
                    .map(|s| s.replicas.spec)
            }),
            offered_qps: e.offered_qps.filter(|q| q.is_finite()).or_else(|| {
                run.samples
                    .iter()
                    .rev()
                    .find(|s| s.t <= e.t)
                    .map(|s| s.offered_qps)
                    .filter(|q| q.is_finite())
            }),
            event: e,
        })
        .collect();
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

fn parse_new_size(msg: &str) -> Option<i32> {
    let rest = &msg[msg.find("New size:")? + "New size:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// What scales the target, as the report names it: the HPA, or a Lua policy.
pub(super) fn scaler_word(run: &RunData) -> &'static str {
    if run.meta.policy.is_some() {
        "policy"
    } else {
        "HPA"
    }
}

/// Events sorted by time (stable, so simultaneous events keep recording order).
pub(super) fn sorted_events(run: &RunData) -> Vec<&Event> {
    let mut ev: Vec<&Event> = run.events.iter().collect();
    ev.sort_by(|a, b| a.t.total_cmp(&b.t));
    ev
}

/// What a schedule's firing did, as the report tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FiringState {
    /// It scaled the target or moved the HPA's range.
    Changed,
    /// It ran and left everything as it was (`Skip scale replicas …`, an excludeDate).
    Skipped,
    /// The controller could not run it (reason `Failed`).
    Failed,
}

impl FiringState {
    pub fn word(self) -> &'static str {
        match self {
            FiringState::Changed => "changed",
            FiringState::Skipped => "skipped",
            FiringState::Failed => "failed",
        }
    }
}

/// A CronHorizontalPodAutoscaler job's firing with what it did resolved.
#[derive(Debug, Clone)]
pub(super) struct Firing<'a> {
    pub t: f64,
    /// From the message, else the job planned nearest to `t` (a `Failed`
    /// message does not name its job).
    pub job: Option<String>,
    pub state: FiringState,
    pub from: Option<i32>,
    pub to: Option<i32>,
    /// The HPA's (min, max) in the samples just before and just after.
    pub range_before: Option<(i32, i32)>,
    pub range_after: Option<(i32, i32)>,
    pub event: &'a Event,
}

impl Firing<'_> {
    /// The range moved across the firing (as far as the samples tell).
    pub fn moved_range(&self) -> bool {
        matches!((self.range_before, self.range_after), (Some(a), Some(b)) if a != b)
    }
}

/// The schedule's firings in time order; empty without a schedule's events.
pub(super) fn firings(run: &RunData) -> Vec<Firing<'_>> {
    let iv = interval_s(run);
    let range = |s: &crate::recorder::Sample| {
        let h = s.hpa.as_ref()?;
        Some((h.min_replicas?, h.max_replicas?))
    };
    let mut out: Vec<Firing> = sorted_events(run)
        .into_iter()
        .filter(|e| e.is_firing())
        .map(|e| {
            // Sample t covers (t - interval, t]: whether the one at the firing's
            // own second saw it is a race, so compare its neighbours.
            let range_before = run.samples.iter().rev().find(|s| s.t < e.t).and_then(range);
            let range_after = run.samples.iter().find(|s| s.t > e.t).and_then(range);
            let job = job_in_message(&e.message).or_else(|| planned_job(run, e.t, iv));
            let mut f = Firing {
                t: e.t,
                job,
                state: FiringState::Skipped,
                from: e.from_replicas,
                to: e.to_replicas,
                range_before,
                range_after,
                event: e,
            };
            f.state = if e.reason == "Failed" {
                FiringState::Failed
            } else if f.to.is_some() || f.moved_range() || !is_skip(&e.message) {
                FiringState::Changed
            } else {
                FiringState::Skipped
            };
            f
        })
        .collect();
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// `cron hpa job NAME executed successfully. …`
fn job_in_message(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("cron hpa job ")?;
    let name = rest.split_whitespace().next()?;
    Some(name.to_string())
}

/// The controller's own words for a job that ran and did nothing: `Skip
/// scale replicas …`, or an excludeDate's `skip scaling activity …`
/// (after the `… executed successfully.` prefix when there is one).
fn is_skip(msg: &str) -> bool {
    let body = msg
        .split_once("executed successfully.")
        .map_or(msg, |(_, b)| b)
        .trim_start();
    body.to_ascii_lowercase().starts_with("skip")
}

/// The job whose planned firing is nearest to `t`, within one sample interval.
fn planned_job(run: &RunData, t: f64, iv: f64) -> Option<String> {
    let s = run.meta.schedule.as_ref()?;
    s.jobs
        .iter()
        .flat_map(|j| j.fires_at.iter().map(move |f| ((f - t).abs(), j)))
        .filter(|(d, _)| *d <= iv.max(1.0))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, j)| j.name.clone())
}

/// The HPA's (min, max) over time for the band on Fig. 7: runs of equal
/// range as (from, to, min, max), from the samples where they carry it and
/// `RunMeta`'s bounds where they do not. Empty without a schedule, so other
/// runs' charts are unchanged, and when no sensible range is known.
pub(super) fn hpa_range_runs(run: &RunData) -> Vec<(f64, f64, i32, i32)> {
    if run.meta.schedule.is_none() {
        return vec![];
    }
    let m = &run.meta;
    let max_gap = interval_s(run) * 2.5;
    let mut out: Vec<(f64, f64, i32, i32)> = vec![];
    let mut cur: Option<(f64, f64, i32, i32)> = None;
    for s in run.samples.iter().filter(|s| s.t.is_finite()) {
        let h = s.hpa.as_ref();
        let lo = h.and_then(|h| h.min_replicas).unwrap_or(m.min_replicas);
        let hi = h.and_then(|h| h.max_replicas).unwrap_or(m.max_replicas);
        let range = (hi > 0 && lo <= hi).then_some((lo, hi));
        // A sample's range holds until the next sample, unless samples are missing.
        if let Some(c) = cur.as_mut() {
            if s.t - c.1 <= max_gap {
                c.1 = s.t;
            }
        }
        if cur.map(|c| (c.2, c.3)) != range || cur.is_some_and(|c| c.1 != s.t) {
            out.extend(cur.take());
            cur = range.map(|(lo, hi)| (s.t, s.t, lo, hi));
        }
    }
    out.extend(cur);
    out.retain(|r| r.1 > r.0);
    out
}
