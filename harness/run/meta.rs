//! The run.json header: what ran, where, with which settings.

use crate::backend::Kind;
use crate::prepared::Prepared;
use crate::recorder::RunMeta;

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
        hpa_name: format!(
            "{}/{}",
            p.hpa.metadata.namespace.as_deref().unwrap_or("default"),
            p.hpa_name()
        ),
        min_replicas: hpa_spec.min_replicas.unwrap_or(1),
        max_replicas: hpa_spec.max_replicas,
        interrupted: false,
        pod_qps_unobservable: None,
        finished: false,
        ended_at_s: 0.0,
        environment: environment(),
    }
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
