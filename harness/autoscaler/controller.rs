//! One `reconcileAutoscaler` pass per call, with the per-HPA memory upstream keeps
//! (recommendations, scale events) held in [`HpaController`].

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, ExternalMetricStatus, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricIdentifier, MetricSpec,
    MetricStatus, MetricTarget, MetricValueStatus, ObjectMetricStatus, PodsMetricStatus,
    ResourceMetricSource, ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};

use super::normalization::{
    convert_desired_replicas_with_behavior_rate, convert_desired_replicas_with_rules,
    stabilize_recommendation, stabilize_recommendation_with_behaviors, store_scale_event,
    Recommendation, ScaleEvent, ScalingRules,
};
use super::quantity::{milli_to_quantity, milli_to_quantity_binary, parse_quantity_milli};
use super::replica_calculator::{
    get_external_metric_replicas, get_external_per_pod_metric_replicas, get_metric_replicas,
    get_object_metric_replicas, get_object_per_pod_metric_replicas, get_raw_resource_replicas,
    get_resource_replicas, CalcConfig, Tolerances,
};
use super::selector::{format_label_selector, label_selector_as_selector, parse_selector};
use super::types::{MetricsSource, Millis, PodInfo, ScaleInfo};

/// Feature gates that change the controller's decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureGates {
    /// `HPAConfigurableTolerance` (beta, on by default since v1.35).
    pub configurable_tolerance: bool,
    /// `HPAScaleToZero` (alpha, off by default).
    pub scale_to_zero: bool,
    /// `PodLevelResources` (beta, on by default since v1.34).
    pub pod_level_resources: bool,
}

impl Default for FeatureGates {
    fn default() -> Self {
        FeatureGates {
            configurable_tolerance: true,
            scale_to_zero: false,
            pod_level_resources: true,
        }
    }
}

/// kube-controller-manager settings for the HPA controller. `Default` = production defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// `--horizontal-pod-autoscaler-tolerance`, both directions.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Millis,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Millis,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization_window: Millis,
    /// Legacy path scale-up cap factor (`scaleUpLimitFactor`, 2; upstream tests use 8).
    pub scale_up_limit_factor: f64,
    /// Legacy path scale-up cap minimum (`scaleUpLimitMinimum`, 4).
    pub scale_up_limit_minimum: f64,
    pub feature_gates: FeatureGates,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            tolerance: 0.1,
            cpu_initialization_period: 300_000,
            initial_readiness_delay: 30_000,
            downscale_stabilization_window: 300_000,
            scale_up_limit_factor: 2.0,
            scale_up_limit_minimum: 4.0,
            feature_gates: FeatureGates::default(),
        }
    }
}

impl ControllerConfig {
    /// The replica-calculator part of the configuration.
    pub fn calc_config(&self) -> CalcConfig {
        CalcConfig {
            cpu_initialization_period: self.cpu_initialization_period,
            initial_readiness_delay: self.initial_readiness_delay,
            pod_level_resources: self.feature_gates.pod_level_resources,
        }
    }

    /// `tolerancesForHpa`: the global tolerance, overridden per direction by
    /// `behavior.scale{Up,Down}.tolerance` when `HPAConfigurableTolerance` is on.
    pub fn tolerances_for(&self, hpa: &HorizontalPodAutoscaler) -> Tolerances {
        let mut t = Tolerances::symmetric(self.tolerance);
        let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.as_ref());
        let Some(b) = behavior.filter(|_| self.feature_gates.configurable_tolerance) else {
            return t;
        };
        if let Some(v) = ScalingRules::scale_down_from(b.scale_down.as_ref(), 0).tolerance {
            t.scale_down = v;
        }
        if let Some(v) = ScalingRules::scale_up_from(b.scale_up.as_ref()).tolerance {
            t.scale_up = v;
        }
        t
    }
}

/// An HPA status condition with its transition time on the experiment clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// When `status` last changed; `None` if it never changed under this controller.
    pub last_transition: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// A Kubernetes event the upstream controller would record (component
/// `horizontal-pod-autoscaler`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

/// One successfully computed metric, in natural units for a recorder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricReading {
    /// The metric name as upstream prints it (`cpu resource utilization (percentage of
    /// request)`, `external metric qps(nil)`).
    pub name: String,
    /// Percent for utilization targets, plain value (milli / 1000) otherwise.
    pub current: f64,
    pub target: f64,
    /// `"%"` for utilization, `""` for plain values.
    pub unit: String,
    /// This metric's replica proposal.
    pub proposal: Option<i32>,
}

/// Outcome of one reconcile pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// `status.desiredReplicas` after the pass (the previous value when the pass could not
    /// act, e.g. metrics or the scale update failed).
    pub desired_replicas: i32,
    /// The normalized replica count the controller wanted (even if the update failed);
    /// `None` when it stopped before deciding.
    pub computed_replicas: Option<i32>,
    /// Whether `scale.spec.replicas` was successfully written.
    pub rescaled: bool,
    /// `rescaleReason` (`"<metric> above target"`, `"All metrics below target"`, bound text).
    pub rescale_reason: String,
    /// The new HPA status (condition transition times left `None`; see `conditions`).
    pub status: HorizontalPodAutoscalerStatus,
    /// The status conditions with transition times on the experiment clock.
    pub conditions: Vec<Condition>,
    /// Events in emission order.
    pub events: Vec<Event>,
    pub metrics: Vec<MetricReading>,
    /// `status.lastScaleTime` on the experiment clock.
    pub last_scale_time: Option<Millis>,
    /// The error `reconcileAutoscaler` returns (also set when it scaled on partial data).
    pub error: Option<String>,
}

/// The controller's memory for one HPA.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HpaController {
    pub config: ControllerConfig,
    /// Stored recommendations; `None` until the first successful scale read seeds it.
    pub recommendations: Option<Vec<Recommendation>>,
    pub scale_up_events: Vec<ScaleEvent>,
    pub scale_down_events: Vec<ScaleEvent>,
    /// `namespace/name` of every HPA whose selector selects any of this HPA's pods,
    /// maintained by the caller; more than one entry triggers `AmbiguousSelector`.
    pub selecting_hpas: Vec<String>,
    /// Conditions as last emitted, to carry transition times across passes.
    pub conditions: Vec<Condition>,
    pub last_scale_time: Option<Millis>,
}

/// What one metric produced.
struct MetricOutcome {
    replicas: i32,
    name: String,
    status: MetricStatus,
    reading: MetricReading,
}

/// A failed metric: the `ScalingActive=False` condition to use and the wrapped error.
struct MetricFailure {
    reason: String,
    message: String,
    error: String,
}

/// Working state of one pass (upstream mutates its HPA copy instead).
struct Pass {
    now: Millis,
    conditions: Vec<Condition>,
    events: Vec<Event>,
}

impl Pass {
    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: String) {
        let idx = match self.conditions.iter().position(|c| c.type_ == type_) {
            Some(i) => i,
            None => {
                self.conditions.push(Condition {
                    type_: type_.to_string(),
                    status: String::new(),
                    reason: String::new(),
                    message: String::new(),
                    last_transition: None,
                });
                self.conditions.len() - 1
            }
        };
        let c = &mut self.conditions[idx];
        if c.status != status {
            c.last_transition = Some(self.now);
        }
        c.status = status.to_string();
        c.reason = reason.to_string();
        c.message = message;
    }

    fn remove_condition(&mut self, type_: &str) {
        self.conditions.retain(|c| c.type_ != type_);
    }

    fn event(&mut self, type_: EventType, reason: &str, message: String) {
        self.events.push(Event {
            type_,
            reason: reason.to_string(),
            message,
        });
    }

    /// `getUnableComputeReplicaCountCondition`: warning event plus the condition to use.
    fn unable(&mut self, reason: &str, err: String, wrapped: String) -> MetricFailure {
        self.event(EventType::Warning, reason, err.clone());
        MetricFailure {
            reason: reason.to_string(),
            message: format!("the HPA was unable to compute the replica count: {err}"),
            error: wrapped,
        }
    }
}

/// Inputs shared by every metric of one pass.
struct MetricCtx<'a> {
    spec_replicas: i32,
    status_replicas: i32,
    namespace: &'a str,
    pods: &'a [PodInfo],
    metrics: &'a dyn MetricsSource,
    tolerances: Tolerances,
    calc: CalcConfig,
    now: Millis,
}

fn milli_f64(v: i64) -> f64 {
    v as f64 / 1000.0
}

fn target_milli(q: Option<&Quantity>) -> Option<i64> {
    // An unparsable quantity cannot pass API validation; treat it like an unset one.
    q.and_then(|q| parse_quantity_milli(&q.0).ok())
}

/// The metric used when `spec.metrics` is empty (API defaulting): cpu at 80 %.
fn default_metric() -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: "cpu".to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(80),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

fn has_object_or_external(metrics: &[MetricSpec]) -> bool {
    metrics
        .iter()
        .any(|m| m.type_ == "Object" || m.type_ == "External")
}

impl HpaController {
    pub fn new(config: ControllerConfig) -> Self {
        HpaController {
            config,
            ..Default::default()
        }
    }

    /// Forget everything, as when the HPA is deleted or the controller restarts.
    pub fn reset(&mut self) {
        *self = HpaController::new(self.config);
    }

    /// One `reconcileAutoscaler` pass.
    ///
    /// * `hpa`: the object as stored (spec and the previous status; feed the returned
    ///   `status` back into it for the next pass).
    /// * `scale`: the `/scale` read, or its error text.
    /// * `pods`: the target's pods (see [`PodInfo::labels`] for selection).
    /// * `update`: writes `scale.spec.replicas`; an error is reported as `FailedRescale`.
    pub fn reconcile(
        &mut self,
        hpa: &HorizontalPodAutoscaler,
        scale: Result<ScaleInfo, String>,
        pods: &[PodInfo],
        metrics: &dyn MetricsSource,
        now: Millis,
        update: &mut dyn FnMut(i32) -> Result<(), String>,
    ) -> Reconciliation {
        let spec = hpa.spec.clone().unwrap_or_default();
        let original = hpa.status.clone().unwrap_or_default();
        let namespace = hpa
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let reference = format!(
            "{}/{}/{}",
            spec.scale_target_ref.kind, namespace, spec.scale_target_ref.name
        );
        let mut pass = Pass {
            now,
            conditions: self.carry_conditions(&original),
            events: Vec::new(),
        };
        let gates = self.config.feature_gates;

        let scale = match scale {
            Ok(s) => s,
            Err(e) => {
                pass.event(EventType::Warning, "FailedGetScale", e.clone());
                pass.set_condition(
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                );
                let status = HorizontalPodAutoscalerStatus {
                    conditions: Some(k8s_conditions(&pass.conditions)),
                    ..original.clone()
                };
                let error = format!("failed to query scale subresource for {reference}: {e}");
                return self.finish(
                    pass,
                    status,
                    original.desired_replicas,
                    None,
                    false,
                    String::new(),
                    Vec::new(),
                    Some(error),
                );
            }
        };
        pass.set_condition(
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".to_string(),
        );
        let current = scale.spec_replicas;
        self.recommendations.get_or_insert_with(|| {
            vec![Recommendation {
                replicas: current,
                timestamp: now,
            }]
        });

        let min_replicas = spec.min_replicas.unwrap_or(1);
        let max_replicas = spec.max_replicas;
        let metric_specs = match spec.metrics.as_deref() {
            Some(m) if !m.is_empty() => m.to_vec(),
            _ => vec![default_metric()],
        };
        let has_obj_ext = has_object_or_external(&metric_specs);
        let scaled_to_zero = gates.scale_to_zero
            && pass
                .conditions
                .iter()
                .find(|c| c.type_ == "ScaledToZero")
                .is_some_and(|c| c.status == "True");
        let can_scale_from_zero = scaled_to_zero && has_obj_ext;

        let mut desired: i32 = 0;
        let mut rescale_reason = String::new();
        let mut rescale = true;
        let mut needs_metrics = true;
        let mut statuses: Option<Vec<MetricStatus>> = None;
        let mut readings = Vec::new();
        let mut ret_err = None;

        if current == 0 {
            // A workload at zero pauses the HPA, unless it scaled itself to zero.
            needs_metrics = (min_replicas != 0 && scaled_to_zero) || can_scale_from_zero;
            if !needs_metrics {
                desired = 0;
                rescale = false;
                pass.set_condition(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero".to_string(),
                );
                if !gates.scale_to_zero {
                    pass.remove_condition("ScaledToZero");
                }
            }
        } else if current > max_replicas {
            rescale_reason = "Current number of replicas above Spec.MaxReplicas".to_string();
            desired = max_replicas;
            needs_metrics = false;
        } else if current < min_replicas {
            rescale_reason = "Current number of replicas below Spec.MinReplicas".to_string();
            desired = min_replicas;
            needs_metrics = false;
        }

        if needs_metrics {
            let computed = self.compute_replicas_for_metrics(
                &mut pass,
                &metric_specs,
                &scale,
                &namespace,
                pods,
                metrics,
                hpa,
            );
            let (proposal, metric_name, st, rd, partial_err) = match computed {
                Ok(v) => v,
                Err((st, err)) => {
                    let status = HorizontalPodAutoscalerStatus {
                        current_replicas: Some(current),
                        desired_replicas: original.desired_replicas,
                        current_metrics: st,
                        conditions: Some(k8s_conditions(&pass.conditions)),
                        last_scale_time: original.last_scale_time.clone(),
                        observed_generation: original.observed_generation,
                    };
                    pass.event(
                        EventType::Warning,
                        "FailedComputeMetricsReplicas",
                        err.clone(),
                    );
                    let error = format!(
                        "failed to compute desired number of replicas based on listed metrics for {reference}: {err}"
                    );
                    return self.finish(
                        pass,
                        status,
                        original.desired_replicas,
                        None,
                        false,
                        String::new(),
                        readings,
                        Some(error),
                    );
                }
            };
            statuses = Some(st);
            readings = rd;
            ret_err = partial_err;

            let mut rescale_metric = String::new();
            if proposal > desired {
                desired = proposal;
                rescale_metric = metric_name;
            }
            if desired > current {
                rescale_reason = format!("{rescale_metric} above target");
            }
            if desired < current {
                rescale_reason = "All metrics below target".to_string();
            }
            desired = match &spec.behavior {
                None => {
                    self.normalize_legacy(&mut pass, current, desired, min_replicas, max_replicas)
                }
                Some(b) => {
                    let up = ScalingRules::scale_up_from(b.scale_up.as_ref());
                    let down_window = (self.config.downscale_stabilization_window / 1000)
                        .clamp(0, i32::MAX as i64) as i32;
                    let down = ScalingRules::scale_down_from(b.scale_down.as_ref(), down_window);
                    self.normalize_with_behaviors(
                        &mut pass,
                        current,
                        desired,
                        min_replicas,
                        max_replicas,
                        &up,
                        &down,
                    )
                }
            };
            if current == 0 && min_replicas != 0 && scaled_to_zero && desired < min_replicas {
                desired = min_replicas;
                if rescale_reason.is_empty() {
                    rescale_reason =
                        "Current number of replicas below Spec.MinReplicas".to_string();
                }
            }
            rescale = desired != current;
        }

        let computed = Some(desired);
        let mut last_scale_time = original.last_scale_time.clone();
        if rescale {
            if let Err(e) = update(desired) {
                pass.event(
                    EventType::Warning,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {rescale_reason}; error: {e}"),
                );
                pass.set_condition(
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                );
                let status = HorizontalPodAutoscalerStatus {
                    current_replicas: Some(current),
                    desired_replicas: original.desired_replicas,
                    current_metrics: statuses,
                    conditions: Some(k8s_conditions(&pass.conditions)),
                    last_scale_time,
                    observed_generation: original.observed_generation,
                };
                let error = format!("failed to rescale {reference}: {e}");
                return self.finish(
                    pass,
                    status,
                    original.desired_replicas,
                    computed,
                    false,
                    rescale_reason,
                    readings,
                    Some(error),
                );
            }
            pass.set_condition(
                "AbleToScale",
                "True",
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            pass.event(
                EventType::Normal,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {rescale_reason}"),
            );
            if spec.behavior.is_some() {
                self.store_event(&spec, current, desired, now);
            }
            if gates.scale_to_zero {
                if current > 0 && desired == 0 && min_replicas == 0 && has_obj_ext {
                    pass.set_condition(
                        "ScaledToZero",
                        "True",
                        "ScaledToZero",
                        "the HPA controller scaled the workload to zero".to_string(),
                    );
                } else {
                    pass.set_condition(
                        "ScaledToZero",
                        "False",
                        "NotScaledToZero",
                        "the HPA controller did not scale the workload to zero".to_string(),
                    );
                }
            } else {
                pass.remove_condition("ScaledToZero");
            }
            self.last_scale_time = Some(now);
            // The k8s status keeps the caller's timestamp type; the Millis value is in
            // `Reconciliation::last_scale_time`.
            last_scale_time = original.last_scale_time.clone();
        } else {
            desired = current;
        }

        let status = HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: desired,
            current_metrics: statuses,
            conditions: Some(k8s_conditions(&pass.conditions)),
            last_scale_time,
            observed_generation: original.observed_generation,
        };
        self.finish(
            pass,
            status,
            desired,
            computed,
            rescale,
            rescale_reason,
            readings,
            ret_err,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        pass: Pass,
        status: HorizontalPodAutoscalerStatus,
        desired_replicas: i32,
        computed_replicas: Option<i32>,
        rescaled: bool,
        rescale_reason: String,
        metrics: Vec<MetricReading>,
        error: Option<String>,
    ) -> Reconciliation {
        self.conditions = pass.conditions.clone();
        Reconciliation {
            desired_replicas,
            computed_replicas,
            rescaled,
            rescale_reason,
            status,
            conditions: pass.conditions,
            events: pass.events,
            metrics,
            last_scale_time: self.last_scale_time,
            error,
        }
    }

    /// The input status's conditions, with transition times remembered from the last pass
    /// when the same condition type still has the same status.
    fn carry_conditions(&self, status: &HorizontalPodAutoscalerStatus) -> Vec<Condition> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| Condition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
                last_transition: self
                    .conditions
                    .iter()
                    .find(|p| p.type_ == c.type_ && p.status == c.status)
                    .and_then(|p| p.last_transition),
            })
            .collect()
    }

    fn store_event(
        &mut self,
        spec: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec,
        current: i32,
        desired: i32,
        now: Millis,
    ) {
        let Some(b) = &spec.behavior else {
            return;
        };
        if desired > current {
            let rules = ScalingRules::scale_up_from(b.scale_up.as_ref());
            store_scale_event(
                &mut self.scale_up_events,
                Some(&rules),
                desired.saturating_sub(current),
                now,
            );
        } else {
            let rules = ScalingRules::scale_down_from(b.scale_down.as_ref(), 0);
            store_scale_event(
                &mut self.scale_down_events,
                Some(&rules),
                current.saturating_sub(desired),
                now,
            );
        }
    }

    fn normalize_legacy(
        &mut self,
        pass: &mut Pass,
        current: i32,
        proposal: i32,
        min_replicas: i32,
        max_replicas: i32,
    ) -> i32 {
        let recs = self.recommendations.get_or_insert_with(Vec::new);
        let stabilized = stabilize_recommendation(
            recs,
            proposal,
            self.config.downscale_stabilization_window,
            pass.now,
        );
        if stabilized != proposal {
            pass.set_condition(
                "AbleToScale",
                "True",
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation".to_string(),
            );
        } else {
            pass.set_condition(
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            );
        }
        let limited = convert_desired_replicas_with_rules(
            current,
            stabilized,
            min_replicas,
            max_replicas,
            self.config.scale_up_limit_factor,
            self.config.scale_up_limit_minimum,
        );
        let status = if limited.replicas == stabilized {
            "False"
        } else {
            "True"
        };
        pass.set_condition(
            "ScalingLimited",
            status,
            limited.reason,
            limited.message.to_string(),
        );
        limited.replicas
    }

    #[allow(clippy::too_many_arguments)]
    fn normalize_with_behaviors(
        &mut self,
        pass: &mut Pass,
        current: i32,
        proposal: i32,
        min_replicas: i32,
        max_replicas: i32,
        up: &ScalingRules,
        down: &ScalingRules,
    ) -> i32 {
        let recs = self.recommendations.get_or_insert_with(Vec::new);
        let stabilized = stabilize_recommendation_with_behaviors(
            recs,
            current,
            proposal,
            up.stabilization_window_seconds,
            down.stabilization_window_seconds,
            pass.now,
        );
        if stabilized.replicas != proposal {
            pass.set_condition(
                "AbleToScale",
                "True",
                stabilized.reason,
                stabilized.message.to_string(),
            );
        } else {
            pass.set_condition(
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            );
        }
        let limited = convert_desired_replicas_with_behavior_rate(
            current,
            stabilized.replicas,
            min_replicas,
            max_replicas,
            up,
            down,
            &self.scale_up_events,
            &self.scale_down_events,
            pass.now,
        );
        let status = if limited.replicas == stabilized.replicas {
            "False"
        } else {
            "True"
        };
        pass.set_condition(
            "ScalingLimited",
            status,
            limited.reason,
            limited.message.to_string(),
        );
        limited.replicas
    }

    /// `computeReplicasForMetrics`. `Ok` = act on (max proposal, its name, statuses,
    /// readings, partial-failure error); `Err` = cannot act (statuses, error).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn compute_replicas_for_metrics(
        &self,
        pass: &mut Pass,
        specs: &[MetricSpec],
        scale: &ScaleInfo,
        namespace: &str,
        pods: &[PodInfo],
        metrics: &dyn MetricsSource,
        hpa: &HorizontalPodAutoscaler,
    ) -> Result<
        (
            i32,
            String,
            Vec<MetricStatus>,
            Vec<MetricReading>,
            Option<String>,
        ),
        (Option<Vec<MetricStatus>>, String),
    > {
        // validateAndParseSelector
        if scale.selector.is_empty() {
            let msg = "selector is required".to_string();
            pass.event(EventType::Warning, "SelectorRequired", msg.clone());
            pass.set_condition(
                "ScalingActive",
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector".to_string(),
            );
            return Err((None, msg));
        }
        let selector = match parse_selector(&scale.selector) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                pass.event(EventType::Warning, "InvalidSelector", msg.clone());
                pass.set_condition("ScalingActive", "False", "InvalidSelector", msg.clone());
                return Err((None, msg));
            }
        };
        if self.selecting_hpas.len() > 1 {
            let msg = format!(
                "pods by selector {} are controlled by multiple HPAs: [{}]",
                scale.selector,
                self.selecting_hpas.join(" ")
            );
            pass.event(EventType::Warning, "AmbiguousSelector", msg.clone());
            pass.set_condition("ScalingActive", "False", "AmbiguousSelector", msg.clone());
            return Err((None, msg));
        }
        let selected: Vec<PodInfo> = pods
            .iter()
            .filter(|p| p.labels.as_ref().is_none_or(|l| selector.matches(l)))
            .cloned()
            .collect();

        let ctx = MetricCtx {
            spec_replicas: scale.spec_replicas,
            status_replicas: scale.status_replicas,
            namespace,
            pods: &selected,
            metrics,
            tolerances: self.config.tolerances_for(hpa),
            calc: self.config.calc_config(),
            now: pass.now,
        };
        let mut statuses = Vec::with_capacity(specs.len());
        let mut readings = Vec::new();
        let mut replicas: i32 = 0;
        let mut metric = String::new();
        let mut invalid = 0usize;
        let mut first_failure: Option<MetricFailure> = None;
        for spec in specs {
            match compute_replicas_for_metric(pass, &ctx, spec) {
                Ok(out) => {
                    statuses.push(out.status);
                    readings.push(out.reading);
                    if replicas == 0 || out.replicas > replicas {
                        replicas = out.replicas;
                        metric = out.name;
                    }
                }
                Err(f) => {
                    statuses.push(MetricStatus::default());
                    if invalid == 0 {
                        first_failure = Some(f);
                    }
                    invalid += 1;
                }
            }
        }
        let combined = first_failure.as_ref().map(|f| {
            format!(
                "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                specs.len(),
                f.error
            )
        });
        if invalid >= specs.len() || (invalid > 0 && replicas < scale.spec_replicas) {
            if let Some(f) = &first_failure {
                pass.set_condition("ScalingActive", "False", &f.reason, f.message.clone());
            }
            return Err((Some(statuses), combined.unwrap_or_default()));
        }
        pass.set_condition(
            "ScalingActive",
            "True",
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {metric}"),
        );
        Ok((replicas, metric, statuses, readings, combined))
    }
}

fn k8s_conditions(conds: &[Condition]) -> Vec<HorizontalPodAutoscalerCondition> {
    conds
        .iter()
        .map(|c| HorizontalPodAutoscalerCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: Some(c.reason.clone()),
            message: Some(c.message.clone()),
            last_transition_time: None,
        })
        .collect()
}

fn missing_source(pass: &mut Pass, reason: &str, type_: &str, field: &str) -> MetricFailure {
    // Upstream would dereference nil here; API validation prevents it.
    let err = format!("invalid metric source: type {type_:?} without {field:?}");
    pass.unable(reason, err.clone(), err)
}

/// `computeReplicasForMetric`.
fn compute_replicas_for_metric(
    pass: &mut Pass,
    ctx: &MetricCtx<'_>,
    spec: &MetricSpec,
) -> Result<MetricOutcome, MetricFailure> {
    match spec.type_.as_str() {
        "Object" => {
            let Some(src) = &spec.object else {
                return Err(missing_source(
                    pass,
                    "FailedGetObjectMetric",
                    "Object",
                    "object",
                ));
            };
            let wrap = |e: &str| format!("failed to get object metric value: {e}");
            if let Err(e) = label_selector_as_selector(src.metric.selector.as_ref()) {
                let w = wrap(&e);
                return Err(pass.unable("FailedGetObjectMetric", e, w));
            }
            compute_object(pass, ctx, src).map_err(|mut f| {
                f.error = wrap(&f.error);
                f
            })
        }
        "Pods" => {
            let Some(src) = &spec.pods else {
                return Err(missing_source(pass, "FailedGetPodsMetric", "Pods", "pods"));
            };
            let wrap = |e: &str| format!("failed to get pods metric value: {e}");
            if let Err(e) = label_selector_as_selector(src.metric.selector.as_ref()) {
                let w = wrap(&e);
                return Err(pass.unable("FailedGetPodsMetric", e, w));
            }
            let Some(target) = target_milli(src.target.average_value.as_ref()) else {
                let e = "invalid pods metric source: average value target was not set".to_string();
                let w = wrap(&e);
                return Err(pass.unable("FailedGetPodsMetric", e, w));
            };
            let samples = ctx
                .metrics
                .pods_metric(&src.metric.name, src.metric.selector.as_ref());
            match get_metric_replicas(
                ctx.spec_replicas,
                target,
                &src.metric.name,
                ctx.tolerances,
                &ctx.calc,
                ctx.pods,
                samples,
                ctx.now,
            ) {
                Ok((replicas, usage)) => {
                    let name = format!("pods metric {}", src.metric.name);
                    Ok(MetricOutcome {
                        replicas,
                        name: name.clone(),
                        status: MetricStatus {
                            type_: "Pods".to_string(),
                            pods: Some(PodsMetricStatus {
                                metric: MetricIdentifier {
                                    name: src.metric.name.clone(),
                                    selector: src.metric.selector.clone(),
                                },
                                current: MetricValueStatus {
                                    average_value: Some(milli_to_quantity(usage)),
                                    ..Default::default()
                                },
                            }),
                            ..Default::default()
                        },
                        reading: reading(name, milli_f64(usage), milli_f64(target), "", replicas),
                    })
                }
                Err(e) => {
                    let w = wrap(&e);
                    Err(pass.unable("FailedGetPodsMetric", e, w))
                }
            }
        }
        "Resource" => {
            let Some(src) = &spec.resource else {
                return Err(missing_source(
                    pass,
                    "FailedGetResourceMetric",
                    "Resource",
                    "resource",
                ));
            };
            match compute_resource_generic(ctx, &src.target, &src.name, "", false) {
                Ok((replicas, current, name, reading)) => Ok(MetricOutcome {
                    replicas,
                    name,
                    status: MetricStatus {
                        type_: "Resource".to_string(),
                        resource: Some(ResourceMetricStatus {
                            name: src.name.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                    reading,
                }),
                Err(e) => {
                    let w = format!("failed to get {} resource metric value: {e}", src.name);
                    Err(pass.unable("FailedGetResourceMetric", e, w))
                }
            }
        }
        "ContainerResource" => {
            let Some(src) = &spec.container_resource else {
                return Err(missing_source(
                    pass,
                    "FailedGetContainerResourceMetric",
                    "ContainerResource",
                    "containerResource",
                ));
            };
            match compute_resource_generic(ctx, &src.target, &src.name, &src.container, true) {
                Ok((replicas, current, name, reading)) => Ok(MetricOutcome {
                    replicas,
                    name,
                    status: MetricStatus {
                        type_: "ContainerResource".to_string(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            name: src.name.clone(),
                            container: src.container.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                    reading,
                }),
                Err(e) => {
                    let w = format!(
                        "failed to get {} container metric value: {e}",
                        src.container
                    );
                    Err(pass.unable("FailedGetContainerResourceMetric", e, w))
                }
            }
        }
        "External" => {
            let Some(src) = &spec.external else {
                return Err(missing_source(
                    pass,
                    "FailedGetExternalMetric",
                    "External",
                    "external",
                ));
            };
            compute_external(pass, ctx, src).map_err(|mut f| {
                f.error = format!(
                    "failed to get {} external metric value: {}",
                    src.metric.name, f.error
                );
                f
            })
        }
        other => {
            let err = format!("unknown metric source type {other:?}");
            Err(pass.unable("InvalidMetricSourceType", err.clone(), err))
        }
    }
}

fn reading(name: String, current: f64, target: f64, unit: &str, proposal: i32) -> MetricReading {
    MetricReading {
        name,
        current,
        target,
        unit: unit.to_string(),
        proposal: Some(proposal),
    }
}

/// `computeStatusForResourceMetricGeneric`: AverageValue wins over Utilization.
fn compute_resource_generic(
    ctx: &MetricCtx<'_>,
    target: &MetricTarget,
    resource: &str,
    container: &str,
    is_container: bool,
) -> Result<(i32, MetricValueStatus, String, MetricReading), String> {
    let quantity = |milli: i64| {
        // Memory is reported in bytes, formatted BinarySI like metrics-server.
        if resource == "memory" {
            milli_to_quantity_binary(milli)
        } else {
            milli_to_quantity(milli)
        }
    };
    let raw = || ctx.metrics.resource_metrics(resource);
    if let Some(target_value) = target_milli(target.average_value.as_ref()) {
        let (replicas, usage) = get_raw_resource_replicas(
            ctx.spec_replicas,
            target_value,
            resource,
            container,
            ctx.tolerances,
            &ctx.calc,
            ctx.pods,
            raw(),
            ctx.now,
        )
        .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
        let name = format!("{resource} resource");
        let status = MetricValueStatus {
            average_value: Some(quantity(usage)),
            ..Default::default()
        };
        let r = reading(
            name.clone(),
            milli_f64(usage),
            milli_f64(target_value),
            "",
            replicas,
        );
        return Ok((replicas, status, name, r));
    }
    let Some(target_util) = target.average_utilization else {
        return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_string());
    };
    let r = get_resource_replicas(
        ctx.spec_replicas,
        target_util,
        resource,
        container,
        ctx.tolerances,
        &ctx.calc,
        ctx.pods,
        raw(),
        ctx.now,
    )
    .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
    let name = if is_container {
        format!("{resource} container resource utilization (percentage of request)")
    } else {
        format!("{resource} resource utilization (percentage of request)")
    };
    let status = MetricValueStatus {
        average_utilization: Some(r.utilization),
        average_value: Some(quantity(r.raw_average)),
        value: None,
    };
    let rd = reading(
        name.clone(),
        f64::from(r.utilization),
        f64::from(target_util),
        "%",
        r.replicas,
    );
    Ok((r.replicas, status, name, rd))
}

/// `computeStatusForObjectMetric`.
fn compute_object(
    pass: &mut Pass,
    ctx: &MetricCtx<'_>,
    src: &k8s_openapi::api::autoscaling::v2::ObjectMetricSource,
) -> Result<MetricOutcome, MetricFailure> {
    let status_with = |current: MetricValueStatus| MetricStatus {
        type_: "Object".to_string(),
        object: Some(ObjectMetricStatus {
            described_object: src.described_object.clone(),
            metric: MetricIdentifier {
                name: src.metric.name.clone(),
                selector: src.metric.selector.clone(),
            },
            current,
        }),
        ..Default::default()
    };
    let fetch = || {
        ctx.metrics.object_metric(
            &src.metric.name,
            &src.described_object,
            src.metric.selector.as_ref(),
        )
    };
    let value_target =
        target_milli(src.target.value.as_ref()).filter(|_| src.target.type_ == "Value");
    let avg_target = target_milli(src.target.average_value.as_ref())
        .filter(|_| src.target.type_ == "AverageValue");
    if let Some(target) = value_target {
        return match get_object_metric_replicas(
            ctx.spec_replicas,
            target,
            &src.metric.name,
            ctx.tolerances,
            ctx.namespace,
            &src.described_object,
            ctx.pods,
            fetch(),
        ) {
            Ok((replicas, usage)) => {
                let name = format!("{} metric {}", src.described_object.kind, src.metric.name);
                Ok(MetricOutcome {
                    replicas,
                    name: name.clone(),
                    status: status_with(MetricValueStatus {
                        value: Some(milli_to_quantity(usage)),
                        ..Default::default()
                    }),
                    reading: reading(name, milli_f64(usage), milli_f64(target), "", replicas),
                })
            }
            Err(e) => Err(pass.unable("FailedGetObjectMetric", e.clone(), e)),
        };
    }
    if let Some(target) = avg_target {
        return match get_object_per_pod_metric_replicas(
            ctx.status_replicas,
            target,
            &src.metric.name,
            ctx.tolerances,
            ctx.namespace,
            &src.described_object,
            fetch(),
        ) {
            Ok((replicas, average)) => {
                // Upstream names Object AverageValue metrics "external metric ...".
                let name = format!(
                    "external metric {}({})",
                    src.metric.name,
                    format_label_selector(src.metric.selector.as_ref())
                );
                Ok(MetricOutcome {
                    replicas,
                    name: name.clone(),
                    status: status_with(MetricValueStatus {
                        average_value: Some(milli_to_quantity(average)),
                        ..Default::default()
                    }),
                    reading: reading(name, milli_f64(average), milli_f64(target), "", replicas),
                })
            }
            Err(e) => {
                let w = format!("failed to get {} object metric: {e}", src.metric.name);
                Err(pass.unable("FailedGetObjectMetric", e, w))
            }
        };
    }
    let err =
        "invalid object metric source: neither a value target nor an average value target was set"
            .to_string();
    Err(pass.unable("FailedGetObjectMetric", err.clone(), err))
}

/// `computeStatusForExternalMetric`: AverageValue is checked first, whatever `type` says.
fn compute_external(
    pass: &mut Pass,
    ctx: &MetricCtx<'_>,
    src: &k8s_openapi::api::autoscaling::v2::ExternalMetricSource,
) -> Result<MetricOutcome, MetricFailure> {
    let selector = src.metric.selector.as_ref();
    let name = format!(
        "external metric {}({})",
        src.metric.name,
        format_label_selector(selector)
    );
    let status_with = |current: MetricValueStatus| MetricStatus {
        type_: "External".to_string(),
        external: Some(ExternalMetricStatus {
            metric: MetricIdentifier {
                name: src.metric.name.clone(),
                selector: src.metric.selector.clone(),
            },
            current,
        }),
        ..Default::default()
    };
    let fetch = || ctx.metrics.external_metric(&src.metric.name, selector);
    if let Some(target) = target_milli(src.target.average_value.as_ref()) {
        return match get_external_per_pod_metric_replicas(
            ctx.status_replicas,
            target,
            &src.metric.name,
            ctx.tolerances,
            ctx.namespace,
            selector,
            fetch(),
        ) {
            Ok((replicas, average)) => Ok(MetricOutcome {
                replicas,
                name: name.clone(),
                status: status_with(MetricValueStatus {
                    average_value: Some(milli_to_quantity(average)),
                    ..Default::default()
                }),
                reading: reading(name, milli_f64(average), milli_f64(target), "", replicas),
            }),
            Err(e) => {
                let w = format!("failed to get {} external metric: {e}", src.metric.name);
                Err(pass.unable("FailedGetExternalMetric", e, w))
            }
        };
    }
    if let Some(target) = target_milli(src.target.value.as_ref()) {
        return match get_external_metric_replicas(
            ctx.spec_replicas,
            target,
            &src.metric.name,
            ctx.tolerances,
            ctx.namespace,
            selector,
            ctx.pods,
            fetch(),
        ) {
            Ok((replicas, usage)) => Ok(MetricOutcome {
                replicas,
                name: name.clone(),
                status: status_with(MetricValueStatus {
                    value: Some(milli_to_quantity(usage)),
                    ..Default::default()
                }),
                reading: reading(name, milli_f64(usage), milli_f64(target), "", replicas),
            }),
            Err(e) => {
                let w = format!("failed to get external metric {}: {e}", src.metric.name);
                Err(pass.unable("FailedGetExternalMetric", e, w))
            }
        };
    }
    let err = "invalid external metric source: neither a value target nor an average value target was set".to_string();
    Err(pass.unable("FailedGetExternalMetric", err.clone(), err))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, ExternalMetricSource, HPAScalingPolicy, HPAScalingRules,
        HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    use super::super::types::{ContainerInfo, ContainerUsage, PodMetricValue, PodResourceMetric};
    use super::*;

    /// A metrics source with fixed answers.
    #[derive(Default)]
    struct Fixed {
        cpu: Vec<PodResourceMetric>,
        external: Vec<i64>,
    }

    impl MetricsSource for Fixed {
        fn resource_metrics(&self, _: &str) -> Result<Vec<PodResourceMetric>, String> {
            Ok(self.cpu.clone())
        }
        fn pods_metric(
            &self,
            _: &str,
            _: Option<&LabelSelector>,
        ) -> Result<Vec<PodMetricValue>, String> {
            Err("not served".into())
        }
        fn object_metric(
            &self,
            _: &str,
            _: &CrossVersionObjectReference,
            _: Option<&LabelSelector>,
        ) -> Result<i64, String> {
            Err("not served".into())
        }
        fn external_metric(&self, _: &str, _: Option<&LabelSelector>) -> Result<Vec<i64>, String> {
            Ok(self.external.clone())
        }
    }

    fn hpa(metrics: Vec<MetricSpec>, min: i32, max: i32) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: "web".into(),
                },
                min_replicas: Some(min),
                max_replicas: max,
                metrics: Some(metrics),
                behavior: None,
            }),
            status: None,
        }
    }

    fn cpu_metric(percent: i32) -> MetricSpec {
        MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(percent),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }
    }

    fn cpu_pods(usages: &[i64]) -> (Vec<PodInfo>, Vec<PodResourceMetric>) {
        usages
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let name = format!("web-{i}");
                let pod = PodInfo::running(
                    &name,
                    -3_600_000,
                    vec![ContainerInfo {
                        name: "app".into(),
                        requests: BTreeMap::from([("cpu".to_string(), 1000)]),
                    }],
                );
                let m = PodResourceMetric {
                    pod: name,
                    timestamp: -5_000,
                    window: 30_000,
                    containers: vec![ContainerUsage {
                        name: "app".into(),
                        usage: BTreeMap::from([("cpu".to_string(), *u)]),
                    }],
                };
                (pod, m)
            })
            .unzip()
    }

    fn scale(replicas: i32) -> Result<ScaleInfo, String> {
        Ok(ScaleInfo {
            spec_replicas: replicas,
            status_replicas: replicas,
            selector: "app=web".into(),
        })
    }

    #[test]
    fn external_average_value_scale_up_event_text() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "route".to_string(),
                "default-httpbin-svc-8080".to_string(),
            )])),
            match_expressions: None,
        };
        let metric = MetricSpec {
            type_: "External".into(),
            external: Some(ExternalMetricSource {
                metric: MetricIdentifier {
                    name: "sls_ingress_qps".into(),
                    selector: Some(selector),
                },
                target: MetricTarget {
                    type_: "AverageValue".into(),
                    average_value: Some(Quantity("10".into())),
                    ..Default::default()
                },
            }),
            ..Default::default()
        };
        let hpa = hpa(vec![metric], 1, 10);
        // 25 qps over 1 replica against 10 per replica: ceil(25 / 10) = 3.
        let source = Fixed {
            external: vec![25_000],
            ..Default::default()
        };
        let (pods, _) = cpu_pods(&[100]);
        let mut c = HpaController::new(ControllerConfig::default());
        let mut written = Vec::new();
        let r = c.reconcile(&hpa, scale(1), &pods, &source, 0, &mut |n| {
            written.push(n);
            Ok(())
        });
        assert_eq!(written, vec![3]);
        assert_eq!(r.desired_replicas, 3);
        let ev = r.events.last().unwrap();
        assert_eq!(ev.reason, "SuccessfulRescale");
        assert_eq!(
            ev.message,
            "New size: 3; reason: external metric sls_ingress_qps(&LabelSelector{MatchLabels:map[string]string{route: default-httpbin-svc-8080,},MatchExpressions:[]LabelSelectorRequirement{},}) above target"
        );
        assert_eq!(r.metrics[0].current, 25.0);
        assert_eq!(r.metrics[0].target, 10.0);
    }

    #[test]
    fn cpu_scale_up_is_capped_by_legacy_limit() {
        // 2 pods at 90 % of request against a 10 % target → ratio 9 → 18, capped at 2×2 = 4.
        let (pods, cpu) = cpu_pods(&[900, 900]);
        let source = Fixed {
            cpu,
            ..Default::default()
        };
        let mut c = HpaController::new(ControllerConfig::default());
        let r = c.reconcile(
            &hpa(vec![cpu_metric(10)], 1, 20),
            scale(2),
            &pods,
            &source,
            0,
            &mut |_| Ok(()),
        );
        assert_eq!(r.desired_replicas, 4);
        assert_eq!(r.metrics[0].current, 90.0);
        assert_eq!(r.metrics[0].unit, "%");
        assert_eq!(r.metrics[0].proposal, Some(18));
        let limited = r
            .conditions
            .iter()
            .find(|c| c.type_ == "ScalingLimited")
            .unwrap();
        assert_eq!(
            (limited.status.as_str(), limited.reason.as_str()),
            ("True", "ScaleUpLimit")
        );
        assert_eq!(
            r.rescale_reason,
            "cpu resource utilization (percentage of request) above target"
        );
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window_and_keeps_transition_times() {
        let (pods, cpu) = cpu_pods(&[100, 100, 100, 100]);
        let source = Fixed {
            cpu,
            ..Default::default()
        };
        let mut c = HpaController::new(ControllerConfig::default());
        let mut object = hpa(vec![cpu_metric(50)], 1, 10);
        // First pass seeds the history with the current size: no scale-down yet.
        let r1 = c.reconcile(&object, scale(4), &pods, &source, 0, &mut |_| Ok(()));
        assert!(!r1.rescaled);
        assert_eq!(r1.conditions[0].reason, "ScaleDownStabilized");
        object.status = Some(r1.status.clone());
        // 300 s later the seed is still exactly at the cutoff (counted by the legacy path)…
        let r2 = c.reconcile(&object, scale(4), &pods, &source, 300_000, &mut |_| Ok(()));
        assert!(!r2.rescaled);
        object.status = Some(r2.status.clone());
        let active = r2
            .conditions
            .iter()
            .find(|c| c.type_ == "ScalingActive")
            .unwrap();
        assert_eq!(
            active.last_transition,
            Some(0),
            "status unchanged since the first pass"
        );
        // …and one sync later it has aged out: 10 % vs 50 % → ceil(0.2 × 4 pods) = 1.
        let r3 = c.reconcile(&object, scale(4), &pods, &source, 315_000, &mut |_| Ok(()));
        assert_eq!(r3.desired_replicas, 1);
        assert_eq!(r3.rescale_reason, "All metrics below target");
    }

    #[test]
    fn behavior_percent_policy_limits_scale_up() {
        let (pods, cpu) = cpu_pods(&[900, 900, 900, 900]);
        let source = Fixed {
            cpu,
            ..Default::default()
        };
        let mut object = hpa(vec![cpu_metric(10)], 1, 100);
        if let Some(spec) = object.spec.as_mut() {
            spec.behavior = Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(HPAScalingRules {
                    policies: Some(vec![HPAScalingPolicy {
                        type_: "Percent".into(),
                        value: 50,
                        period_seconds: 60,
                    }]),
                    ..Default::default()
                }),
                scale_down: None,
            });
        }
        let mut c = HpaController::new(ControllerConfig::default());
        // ceil(4 × 1.5) = 6 although the metric asks for 36.
        let r = c.reconcile(&object, scale(4), &pods, &source, 0, &mut |_| Ok(()));
        assert_eq!(r.desired_replicas, 6);
        assert_eq!(c.scale_up_events.len(), 1);
        assert_eq!(c.scale_up_events[0].replica_change, 2);
        // 15 s later the period still holds the +2: start 4 → limit 6 again, no change.
        let r = c.reconcile(&object, scale(6), &pods, &source, 15_000, &mut |_| Ok(()));
        assert_eq!(r.desired_replicas, 6);
        assert!(!r.rescaled);
    }

    #[test]
    fn failures_are_reported_not_panics() {
        let (pods, cpu) = cpu_pods(&[500]);
        let source = Fixed {
            cpu,
            ..Default::default()
        };
        let mut c = HpaController::new(ControllerConfig::default());
        // Target 0 %, a scale read error, an update error and an unparsable selector.
        let object = hpa(vec![cpu_metric(0)], 1, 5);
        let r = c.reconcile(&object, scale(1), &pods, &source, 0, &mut |_| {
            Err("conflict".into())
        });
        assert!(!r.rescaled);
        assert_eq!(
            r.events.last().map(|e| e.reason.as_str()),
            Some("FailedRescale")
        );
        let r = c.reconcile(&object, Err("boom".into()), &pods, &source, 0, &mut |_| {
            Ok(())
        });
        assert_eq!(r.conditions[0].reason, "FailedGetScale");
        let bad = Ok(ScaleInfo {
            spec_replicas: 1,
            status_replicas: 1,
            selector: "a b".into(),
        });
        let r = c.reconcile(&object, bad, &pods, &source, 0, &mut |_| Ok(()));
        assert_eq!(r.events[0].reason, "InvalidSelector");
    }
}
