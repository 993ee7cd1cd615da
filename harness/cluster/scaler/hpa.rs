//! The HPA controller as a scaler: the pure `autoscaler` reconciles the
//! scenario's HorizontalPodAutoscaler, and its events and status become
//! recorder data.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::{Decision, HpaRange, Scaler, View};
use crate::autoscaler::{ControllerConfig, EventType, HpaController, Reconciliation, ScaleInfo};
use crate::recorder::{ConditionSample, Event, HpaSample, MetricSample};

pub(crate) struct HpaScaler {
    ctl: HpaController,
    hpa: HorizontalPodAutoscaler,
    /// The scale subresource's selector, e.g. `app=httpbin`.
    selector: String,
    /// status.currentReplicas: the scale's status.replicas at the last sync.
    current: i32,
}

impl HpaScaler {
    pub(crate) fn new(
        hpa: HorizontalPodAutoscaler,
        selector: String,
        cfg: ControllerConfig,
    ) -> Self {
        Self {
            ctl: HpaController::new(cfg),
            hpa,
            selector,
            current: 0,
        }
    }
}

impl Scaler for HpaScaler {
    fn sync(&mut self, t: f64, v: &View<'_>) -> Decision {
        let scale = ScaleInfo {
            spec_replicas: v.spec_replicas,
            status_replicas: v.current,
            selector: self.selector.clone(),
        };
        self.current = v.current;
        let mut new_size = None;
        // The scheduled instant, like the scrape stamps: stabilization
        // windows compare these times, and wake-up jitter × speed would
        // decide ties at the window's edge differently from run to run.
        let now_ms = (t * 1000.0).round() as i64;
        let r = self
            .ctl
            .reconcile(&self.hpa, Ok(scale), v.pods, v.metrics, now_ms, &mut |n| {
                new_size = Some(n);
                Ok(())
            });
        let name = self.hpa.metadata.name.as_deref().unwrap_or_default();
        let (events, status, active) = digest(&r, name, v.spec_replicas, new_size, t);
        Decision {
            new_size,
            events,
            status,
            active,
            desired: r.desired_replicas,
        }
    }

    fn hpa_range(&self) -> Option<HpaRange> {
        let spec = self.hpa.spec.as_ref()?;
        Some(HpaRange {
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
            current: self.current,
        })
    }

    fn set_hpa_range(&mut self, min: i32, max: i32) {
        if let Some(spec) = self.hpa.spec.as_mut() {
            spec.min_replicas = Some(min);
            spec.max_replicas = max;
        }
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
                cluster_time: None,
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
        min_replicas: None,
        max_replicas: None,
    };
    (events, sample, active)
}
