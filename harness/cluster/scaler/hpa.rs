//! Runs the pure `autoscaler` against the embedded cluster every sync period:
//! reads pods and metrics, applies a rescale to the Deployment, and turns the
//! controller's events and status into recorder data.

use std::sync::Arc;

use tokio::sync::watch;

use super::metrics::Snapshot;
use super::{pod_infos, snapshot, Config, Phase, Shared};
use crate::autoscaler::{EventType, HpaController, PodInfo, Reconciliation, ScaleInfo};
use crate::recorder::{ConditionSample, Event, HpaSample, MetricSample};

pub(super) async fn controller(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ctl = HpaController::new(sh.cfg.controller);
    let period = sh.cfg.sync_period.as_secs_f64();
    // The controller and the scraper start a moment apart, as in a cluster;
    // half a period keeps HPA reads from racing scrapes at the same instant.
    let mut k = 0u64;
    loop {
        let t = period / 2.0 + k as f64 * period;
        k += 1;
        tokio::select! {
            _ = sh.clock.sleep_until(t) => {}
            _ = stop.changed() => return,
        }
        let (pods, snap, spec, current) = {
            let st = sh.lock();
            let current = st
                .pods
                .iter()
                .filter(|p| p.phase != Phase::Terminating)
                .count() as i32;
            (
                pod_infos(&sh, &st),
                snapshot(&sh, &st),
                st.spec_replicas,
                current,
            )
        };
        let s = sync(&mut ctl, &sh.cfg, spec, current, &pods, &snap, t);
        let mut st = sh.lock();
        if let Some(n) = s.new_size {
            st.spec_replicas = n;
            sh.kick.notify_one();
        }
        st.events.extend(s.events);
        st.hpa_desired = s.desired;
        st.hpa_active |= s.active;
        st.hpa_sample = Some(s.sample);
    }
}

/// What one HPA sync decided, as recorder data.
pub(crate) struct Synced {
    /// The scale target's new spec.replicas, when the HPA rescaled.
    pub new_size: Option<i32>,
    pub events: Vec<Event>,
    pub sample: HpaSample,
    /// It reported ScalingActive=True.
    pub active: bool,
    pub desired: i32,
}

/// One reconciliation of the scenario's HPA at the scheduled instant `t`
/// (cluster seconds), given the target's spec and live replicas, the pods
/// and the metrics (shared with `sim`).
pub(crate) fn sync(
    ctl: &mut HpaController,
    cfg: &Config,
    spec_replicas: i32,
    current: i32,
    pods: &[PodInfo],
    snap: &Snapshot,
    t: f64,
) -> Synced {
    let scale = ScaleInfo {
        spec_replicas,
        status_replicas: current,
        selector: cfg.selector.clone(),
    };
    let mut new_size = None;
    // The scheduled instant, like the scrape stamps: stabilization
    // windows compare these times, and wake-up jitter × speed would
    // decide ties at the window's edge differently from run to run.
    let now_ms = (t * 1000.0).round() as i64;
    let r = ctl.reconcile(&cfg.hpa, Ok(scale), pods, snap, now_ms, &mut |n| {
        new_size = Some(n);
        Ok(())
    });
    let name = cfg.hpa.metadata.name.as_deref().unwrap_or_default();
    let (events, sample, active) = digest(&r, name, spec_replicas, new_size, t);
    Synced {
        new_size,
        events,
        sample,
        active,
        desired: r.desired_replicas,
    }
}

/// One reconciliation as recorder data: its events at cluster time `now`
/// (a rescale carries from/to replicas), the HPA sample, and whether it
/// reported ScalingActive=True.
fn digest(
    r: &Reconciliation,
    name: &str,
    before: i32,
    new_size: Option<i32>,
    now: f64,
) -> (Vec<Event>, HpaSample, bool) {
    let object = format!("HorizontalPodAutoscaler/{name}");
    let events = r
        .events
        .iter()
        .map(|e| {
            let rescale = e.reason == "SuccessfulRescale";
            Event {
                t: now,
                type_: match e.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
                reason: e.reason.clone(),
                object: object.clone(),
                source: "horizontal-pod-autoscaler".into(),
                message: e.message.clone(),
                from_replicas: rescale.then_some(before),
                to_replicas: if rescale { new_size } else { None },
                offered_qps: None,
            }
        })
        .collect();
    let active = r
        .conditions
        .iter()
        .any(|c| c.type_ == "ScalingActive" && c.status == "True");
    let sample = HpaSample {
        name: name.to_string(),
        metrics: r
            .metrics
            .iter()
            .map(|m| MetricSample {
                name: m.name.clone(),
                current: m.current,
                target: m.target,
                unit: m.unit.clone(),
            })
            .collect(),
        conditions: r
            .conditions
            .iter()
            .map(|c| ConditionSample {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
    };
    (events, sample, active)
}
