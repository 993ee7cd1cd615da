//! `summary.json`: the run's outcome for machines (CI, dashboards). Structs,
//! not maps, so the key order is stable across runs and versions.

use serde::Serialize;

use crate::checks::{CheckResult, Verdict};
use crate::recorder::{RunData, StatusCounts};

use super::{firings, kube_dur, recorded_s, rescales, Rescale};

#[derive(Debug, Serialize)]
pub(super) struct Summary<'a> {
    pub scenario: &'a str,
    pub backend: &'a str,
    pub speed: f64,
    pub started_at: &'a str,
    /// Experiment seconds actually recorded.
    pub duration_s: f64,
    pub samples: usize,
    pub passed: bool,
    pub interrupted: bool,
    pub checks: &'a [CheckResult],
    pub totals: Totals,
    pub peak_replicas: PeakReplicas,
    pub first_scale_out: Option<ScaleOut>,
    pub last_scale_in: Option<ScaleIn>,
    pub rescale_events: Vec<RescaleEvent>,
    /// The schedule's firings; absent (not empty) for a run without a schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_firings: Option<Vec<ScheduleFiring>>,
}

#[derive(Debug, Serialize)]
pub(super) struct ScheduleFiring {
    pub t: f64,
    pub at: String,
    /// The job, when the event or the planned times tell.
    pub job: Option<String>,
    /// `changed`, `skipped` or `failed`.
    pub state: &'static str,
    pub from: Option<i32>,
    pub to: Option<i32>,
    /// The HPA's [min, max] before and after, where the samples carry it.
    pub range_before: Option<[i32; 2]>,
    pub range_after: Option<[i32; 2]>,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Totals {
    pub intended: u64,
    pub sent: u64,
    pub completed: u64,
    pub dropped: u64,
    pub late: u64,
    pub status: StatusCounts,
    /// Non-2xx/3xx outcomes, transport failures included.
    pub errors: u64,
    /// `errors / completed`; null when nothing completed.
    pub error_ratio: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct PeakReplicas {
    pub ready: i32,
    pub desired: i32,
    pub current: i32,
}

#[derive(Debug, Serialize)]
pub(super) struct ScaleOut {
    pub t: f64,
    pub at: String,
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub offered_qps: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(super) struct ScaleIn {
    pub t: f64,
    pub at: String,
    pub from: Option<i32>,
    pub to: Option<i32>,
}

#[derive(Debug, Serialize)]
pub(super) struct RescaleEvent {
    pub t: f64,
    pub at: String,
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub message: String,
}

pub(super) fn totals(run: &RunData) -> Totals {
    let mut t = Totals::default();
    for s in &run.samples {
        t.intended += s.intended;
        t.sent += s.sent;
        t.completed += s.completed;
        t.dropped += s.dropped;
        t.late += s.late;
        t.status.add(&s.status);
    }
    t.errors = t.status.errors();
    t.error_ratio = (t.completed > 0).then(|| t.errors as f64 / t.completed as f64);
    t
}

/// When the load generator fell behind its schedule (samples with late sends).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GeneratorLag {
    /// Samples with at least one late send.
    pub samples: usize,
    pub late: u64,
    /// End times of the first and last such sample.
    pub first_t: f64,
    pub last_t: f64,
    /// The sample with the largest send lateness (by max, else by count).
    pub worst_t: f64,
    /// That sample's largest lateness, ms of experiment time; None for runs
    /// recorded before lateness was.
    pub worst_ms: Option<f64>,
}

pub(super) fn generator_lag(run: &RunData) -> Option<GeneratorLag> {
    let late: Vec<_> = run.samples.iter().filter(|s| s.late > 0).collect();
    let (first, last) = (late.first()?, late.last()?);
    let key = |s: &&crate::recorder::Sample| {
        let max = s.send_lateness_ms.map_or(0.0, |p| p.max);
        (max, s.late)
    };
    let worst = late.iter().max_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    })?;
    Some(GeneratorLag {
        samples: late.len(),
        late: late.iter().map(|s| s.late).sum(),
        first_t: first.t,
        last_t: last.t,
        worst_t: worst.t,
        worst_ms: worst.send_lateness_ms.map(|p| p.max),
    })
}

pub(super) fn peak_replicas(run: &RunData) -> PeakReplicas {
    run.samples
        .iter()
        .fold(PeakReplicas::default(), |p, s| PeakReplicas {
            ready: p.ready.max(s.replicas.ready),
            desired: p.desired.max(s.replicas.desired),
            current: p.current.max(s.replicas.current),
        })
}

fn grows(r: &Rescale) -> bool {
    matches!((r.from, r.to), (Some(f), Some(t)) if t > f)
}

fn shrinks(r: &Rescale) -> bool {
    matches!((r.from, r.to), (Some(f), Some(t)) if t < f)
}

pub(super) fn first_scale_out(run: &RunData) -> Option<ScaleOut> {
    rescales(run).iter().find(|r| grows(r)).map(|r| ScaleOut {
        t: r.t,
        at: kube_dur(r.t),
        from: r.from,
        to: r.to,
        offered_qps: r.offered_qps,
    })
}

pub(super) fn last_scale_in(run: &RunData) -> Option<ScaleIn> {
    rescales(run)
        .iter()
        .rev()
        .find(|r| shrinks(r))
        .map(|r| ScaleIn {
            t: r.t,
            at: kube_dur(r.t),
            from: r.from,
            to: r.to,
        })
}

pub(super) fn build<'a>(run: &'a RunData, verdict: &'a Verdict) -> Summary<'a> {
    Summary {
        scenario: &run.meta.scenario_name,
        backend: &run.meta.backend,
        speed: run.meta.speed,
        started_at: &run.meta.started_at,
        duration_s: recorded_s(run),
        samples: run.samples.len(),
        passed: verdict.passed(),
        interrupted: run.meta.interrupted,
        checks: &verdict.checks,
        totals: totals(run),
        peak_replicas: peak_replicas(run),
        first_scale_out: first_scale_out(run),
        last_scale_in: last_scale_in(run),
        rescale_events: rescales(run)
            .iter()
            .map(|r| RescaleEvent {
                t: r.t,
                at: kube_dur(r.t),
                from: r.from,
                to: r.to,
                message: r.event.message.clone(),
            })
            .collect(),
        schedule_firings: run.meta.schedule.as_ref().map(|_| {
            firings(run)
                .iter()
                .map(|f| ScheduleFiring {
                    t: f.t,
                    at: kube_dur(f.t),
                    job: f.job.clone(),
                    state: f.state.word(),
                    from: f.from,
                    to: f.to,
                    range_before: f.range_before.map(|(a, b)| [a, b]),
                    range_after: f.range_after.map(|(a, b)| [a, b]),
                    message: f.event.message.clone(),
                })
                .collect()
        }),
    }
}

pub(super) fn render(run: &RunData, verdict: &Verdict) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(&build(run, verdict))?;
    s.push('\n');
    Ok(s)
}
