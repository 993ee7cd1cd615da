//! Pure port of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) controller's
//! decision logic (kubernetes/kubernetes `pkg/controller/podautoscaler`, see
//! `shared/hpa/SPEC.md`).
//!
//! Nothing here performs I/O, reads a clock or draws random numbers: the caller hands in
//! the HPA object, the scale subresource, the pods, a [`MetricsSource`] and the current
//! instant (`now`, [`Millis`] on the experiment clock), and gets a [`Reconciliation`] back.
//! State that upstream keeps in controller memory (recommendation history, scale-event
//! history) lives in one [`HpaController`] per HPA.
//!
//! Sub-modules mirror the upstream split:
//! * [`replica_calculator`]: per-metric replica proposals and pod grouping;
//! * [`normalization`]: legacy and `behavior` stabilization, rate limits and bounds;
//! * [`controller`]: one full `reconcileAutoscaler` pass, conditions, events, status;
//! * [`quantity`] and [`selector`]: the small apimachinery pieces the controller needs.

pub mod controller;
pub mod normalization;
pub mod quantity;
pub mod replica_calculator;
pub mod selector;
pub mod types;

pub use self::controller::{
    Condition, ControllerConfig, Event, EventType, FeatureGates, HpaController, MetricReading,
    Reconciliation,
};
pub use self::normalization::{
    calculate_scale_down_limit_with_behaviors, calculate_scale_up_limit_with_scaling_rules,
    convert_desired_replicas_with_behavior_rate, convert_desired_replicas_with_rules,
    get_replicas_change_per_period, stabilize_recommendation,
    stabilize_recommendation_with_behaviors, store_scale_event, Limited, Recommendation,
    ScaleEvent, ScalingPolicy, ScalingPolicyType, ScalingRules, SelectPolicy, Stabilized,
};
pub use self::quantity::{
    milli_to_quantity, milli_to_quantity_binary, parse_quantity_f64, parse_quantity_milli,
    QuantityError,
};
pub use self::replica_calculator::{
    calc_plain_metric_replicas, get_external_metric_replicas, get_external_per_pod_metric_replicas,
    get_metric_replicas, get_object_metric_replicas, get_object_per_pod_metric_replicas,
    get_raw_resource_replicas, get_resource_replicas, get_usage_ratio_replica_count, group_pods,
    pod_metrics_from_resource_metrics, CalcConfig, PodGroups, PodMetric, PodMetricsInfo,
    ResourceReplicas, Tolerances,
};
pub use self::selector::{
    format_label_selector, label_selector_as_selector, parse_selector, Selector,
};
pub use self::types::{
    ConditionStatus, ContainerInfo, ContainerUsage, MetricsSource, Millis, PodInfo, PodMetricValue,
    PodPhase, PodResourceMetric, ReadyCondition, ScaleInfo, GO_ZERO_TIME,
};
