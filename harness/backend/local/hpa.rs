//! Runs the pure `autoscaler` against the embedded cluster every sync period:
//! reads pods and metrics, applies a rescale to the Deployment, and turns the
//! controller's events and status into recorder data.

use std::sync::Arc;

use tokio::sync::watch;

use super::{pod_infos, snapshot, Phase, Shared};
use crate::autoscaler::{EventType, HpaController, Reconciliation, ScaleInfo};
use crate::recorder::{ConditionSample, Event, HpaSample, MetricSample};

pub(super) async fn controller(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ctl = HpaController::new(sh.cfg.controller);
    let hpa = &sh.cfg.hpa;
    let name = hpa.metadata.name.clone().unwrap_or_default();
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
        let (pods, snap, scale) = {
            let st = sh.lock();
            let current = st
                .pods
                .iter()
                .filter(|p| p.phase != Phase::Terminating)
                .count() as i32;
            (
                pod_infos(&sh, &st),
                snapshot(&sh, &st),
                ScaleInfo {
                    spec_replicas: st.spec_replicas,
                    status_replicas: current,
                    selector: sh.cfg.selector.clone(),
                },
            )
        };
        let before = scale.spec_replicas;
        let mut new_size = None;
        // The scheduled instant, like the scrape stamps: stabilization
        // windows compare these times, and wake-up jitter × speed would
        // decide ties at the window's edge differently from run to run.
        let now_ms = (t * 1000.0).round() as i64;
        let r = ctl.reconcile(hpa, Ok(scale), &pods, &snap, now_ms, &mut |n| {
            new_size = Some(n);
            Ok(())
        });
        let mut st = sh.lock();
        if let Some(n) = new_size {
            st.spec_replicas = n;
            sh.kick.notify_one();
        }
        let (events, sample, active) = digest(&r, &name, before, new_size, t);
        st.events.extend(events);
        st.hpa_desired = r.desired_replicas;
        st.hpa_active |= active;
        st.hpa_sample = Some(sample);
    }
}

/// One reconciliation as recorder data: its events at cluster time `now`
/// (a rescale carries from/to replicas), the HPA sample, and whether it
/// reported ScalingActive=True (shared with `sim`).
pub(crate) fn digest(
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
