//! Plain data the caller hands to the controller: pods, metric samples, the scale target.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// Milliseconds on the experiment clock. All instants and durations use it.
pub type Millis = i64;

/// Stand-in for Go's zero `time.Time` (year 1): far before any real instant, yet far enough
/// from `i64::MIN` that adding windows and periods (saturating) never wraps.
pub const GO_ZERO_TIME: Millis = i64::MIN / 4;

/// `status.phase` of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// Status of a Kubernetes condition (`True`, `False`, `Unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The pod's `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyCondition {
    pub status: ConditionStatus,
    /// `lastTransitionTime`; [`GO_ZERO_TIME`] when the object leaves it unset.
    pub last_transition: Millis,
}

/// A container whose requests count toward the pod's request: regular containers and
/// restartable init containers (sidecars). Plain init containers must be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    /// Requests in milli-units (`Quantity::MilliValue`), keyed by resource name
    /// (`"cpu"`, `"memory"`). A missing key means "no request".
    pub requests: BTreeMap<String, i64>,
}

/// The view of a pod the controller needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    pub name: String,
    pub phase: PodPhase,
    pub deletion_timestamp_set: bool,
    /// `status.startTime`; `None` when unset.
    pub start_time: Option<Millis>,
    /// The `Ready` condition; `None` when the pod has none.
    pub ready: Option<ReadyCondition>,
    pub containers: Vec<ContainerInfo>,
    /// Pod-level requests (`spec.resources.requests`, PodLevelResources); when set they are
    /// used instead of the container sum for whole-pod resource metrics.
    pub pod_requests: Option<BTreeMap<String, i64>>,
    /// Pod labels. `None` means "the caller already selected this pod"; `Some` makes
    /// `reconcile` filter it with the scale's selector like the upstream pod lister does.
    pub labels: Option<BTreeMap<String, String>>,
}

impl PodInfo {
    /// A running, ready pod with the given containers: handy for simulators and tests.
    pub fn running(name: &str, started: Millis, containers: Vec<ContainerInfo>) -> Self {
        PodInfo {
            name: name.to_string(),
            phase: PodPhase::Running,
            deletion_timestamp_set: false,
            start_time: Some(started),
            ready: Some(ReadyCondition {
                status: ConditionStatus::True,
                last_transition: started,
            }),
            containers,
            pod_requests: None,
            labels: None,
        }
    }
}

/// Usage of one container in a resource-metrics sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUsage {
    pub name: String,
    /// Usage in milli-units keyed by resource name; a missing key means "not reported".
    pub usage: BTreeMap<String, i64>,
}

/// One pod's entry in the resource metrics API (`metrics.k8s.io` PodMetrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodResourceMetric {
    pub pod: String,
    /// End of the sample window.
    pub timestamp: Millis,
    /// Length of the sample window.
    pub window: Millis,
    pub containers: Vec<ContainerUsage>,
}

/// One pod's value of a custom (`Pods`) metric, in milli-units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMetricValue {
    pub pod: String,
    pub value: i64,
}

/// The metrics APIs, implemented by the caller. Errors are the raw API error text; the
/// controller adds the upstream wrapping (`unable to fetch metrics from ...: <err>`).
pub trait MetricsSource {
    /// Resource metrics (`metrics.k8s.io`) for the pods of the scale target. Entries may
    /// name pods that are not in the pod list; usage maps may carry other resources too.
    fn resource_metrics(&self, resource: &str) -> Result<Vec<PodResourceMetric>, String>;
    /// A custom metric for the scale target's pods (custom.metrics.k8s.io, `Pods` source).
    fn pods_metric(
        &self,
        metric: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<PodMetricValue>, String>;
    /// A custom metric describing one object (`Object` source), in milli-units.
    fn object_metric(
        &self,
        metric: &str,
        object: &CrossVersionObjectReference,
        selector: Option<&LabelSelector>,
    ) -> Result<i64, String>;
    /// Every series of an external metric (external.metrics.k8s.io), in milli-units.
    fn external_metric(
        &self,
        metric: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<i64>, String>;
}

/// What the scale subresource (`/scale`) reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleInfo {
    /// `spec.replicas`: the controller's "current" replica count.
    pub spec_replicas: i32,
    /// `status.replicas`: used by AverageValue Object/External metrics.
    pub status_replicas: i32,
    /// `status.selector` in label-selector string form (`"app=web,tier!=db"`).
    pub selector: String,
}
