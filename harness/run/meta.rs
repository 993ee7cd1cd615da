//! The run.json header: what ran, where, with which settings.

use crate::backend::Kind;
use crate::prepared::Prepared;
use crate::recorder::{RunMeta, TierMeta};

pub(super) fn run_meta(p: &Prepared, backend: Kind, speed: f64, seed: u64) -> RunMeta {
    let s = p.scenario();
    let hpa_spec = p.hpa.spec.clone().unwrap_or_default();
    RunMeta {
        scenario_name: p.loaded.name(),
        scenario_path: p.loaded.path.display().to_string(),
        scenario_text: p.loaded.text.clone(),
        backend: backend.name().into(),
        speed: if backend == Kind::Sim { 1.0 } else { speed },
        seed,
        started_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        duration_s: s.duration.as_secs_f64(),
        load_stop_s: s.load.load_stop(),
        interval_s: s.sample_interval.as_secs_f64(),
        hpa_name: match &p.lua {
            // A policy is no namespaced object: its name says what it is.
            Some(l) => l.display(),
            None => format!(
                "{}/{}",
                p.hpa.metadata.namespace.as_deref().unwrap_or("default"),
                p.hpa_name()
            ),
        },
        min_replicas: hpa_spec.min_replicas.unwrap_or(1),
        max_replicas: hpa_spec.max_replicas,
        interrupted: false,
        pod_qps_unobservable: None,
        unrecorded_in_flight: None,
        tiers: tiers(p),
        schedule: p.schedule.as_ref().map(|sc| {
            if backend == Kind::Kube {
                // A real cluster runs on the real clock: t = 0 and the
                // firings are known only once the run is ready (the
                // backend's `schedule_started` replaces this). Until then,
                // as for a run that never gets there, its clock starts now.
                let mut m = sc.meta(sc.controller.name(), false);
                m.clock_start = jiff::Zoned::now()
                    .with_time_zone(sc.clock_start.time_zone().clone())
                    .to_string();
                m
            } else {
                // The embedded cluster plans every firing from clock.start.
                sc.meta("embedded", true)
            }
        }),
        policy: p.lua.as_ref().map(|l| crate::recorder::PolicyMeta {
            script: l.name.clone(),
            source: l.source.clone(),
            interval_s: l.interval.as_secs_f64(),
            min: l.min,
            max: l.max,
            target: format!("Deployment/{}", hpa_spec.scale_target_ref.name),
        }),
        finished: false,
        ended_at_s: 0.0,
        environment: environment(),
    }
}

/// The workloads, when the cluster runs a gateway tier besides the backend.
fn tiers(p: &Prepared) -> Vec<TierMeta> {
    if p.gateway_tier().is_none() {
        return Vec::new();
    }
    let target = p.target_tier();
    p.tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let spec = t.hpa.as_ref().and_then(|h| h.spec.as_ref());
            TierMeta {
                deployment: t.name().to_owned(),
                role: t.role.name().to_owned(),
                target: i == target,
                cpu_limit_millicores: t.cpu_limit_milli().map(|m| m as f64),
                cpu_request_millicores: t.cpu_request_milli().map(|m| m as f64),
                hpa: t.hpa.as_ref().and_then(|h| h.metadata.name.clone()),
                min_replicas: spec.map(|s| s.min_replicas.unwrap_or(1)),
                max_replicas: spec.map(|s| s.max_replicas),
            }
        })
        .collect()
}

fn environment() -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("harness_version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("os".into(), std::env::consts::OS.into());
    m.insert("arch".into(), std::env::consts::ARCH.into());
    m.insert(
        "cpus".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
    );
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        m.insert("host".into(), h.trim().into());
    }
    m
}

/// The headline's line about the schedule: who runs the manifests'
/// CronHorizontalPodAutoscaler, or that it is left out.
pub(super) fn schedule_headline(p: &Prepared, backend: Kind) -> Option<String> {
    use crate::scenario::ScheduleController as C;
    let Some(sc) = &p.schedule else {
        let (_, c) = p.manifests.cron_hpas().next()?;
        return Some(format!(
            "schedule: off (CronHorizontalPodAutoscaler/{} left out: the metric-only baseline)",
            c.name()
        ));
    };
    let who = match (backend, sc.controller) {
        (Kind::Kube, C::Cluster) => {
            "the cluster's kubernetes-cronhpa-controller (schedule.controller: cluster)"
        }
        (Kind::Kube, _) => {
            "the harness, by the controller's rules, on the real clock (schedule.controller: harness)"
        }
        _ => "the embedded cluster",
    };
    Some(format!(
        "schedule: {} on {}, run by {who}",
        sc.object_ref(),
        sc.target_ref()
    ))
}

/// What a real cluster's run prints at t = 0 about its schedule.
pub(super) fn schedule_started_line(m: &crate::recorder::ScheduleMeta) -> String {
    let mut fires: Vec<f64> = m
        .jobs
        .iter()
        .flat_map(|j| j.fires_at.iter().copied())
        .collect();
    fires.sort_by(f64::total_cmp);
    let when = match (m.controller.as_str(), fires.first()) {
        ("cluster", _) => "the cluster's controller fires the jobs on its own clock".to_string(),
        (_, None) => "no job fires within the run".to_string(),
        (_, Some(first)) => format!(
            "{} firing(s) within the run, the first at {}",
            fires.len(),
            crate::checks::fmt_t(*first)
        ),
    };
    format!(
        "schedule: experiment t = 0 is {} on the schedule's clock; {when}",
        m.clock_start
    )
}
