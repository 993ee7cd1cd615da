//! Per-metric replica proposals (upstream `replica_calculator.go` plus the metrics-client
//! steps that shape the samples). Every function is pure: metric samples and pods come in as
//! data, `now` as [`Millis`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use super::selector::{format_label_selector, label_selector_as_selector};
use super::types::{ConditionStatus, Millis, PodInfo, PodMetricValue, PodPhase, PodResourceMetric};

/// Window assumed for custom-metric samples that carry none (upstream's 1 minute default).
const DEFAULT_METRIC_WINDOW: Millis = 60_000;

/// Usage-ratio tolerances (`--horizontal-pod-autoscaler-tolerance`, or per-HPA
/// `behavior.scale{Up,Down}.tolerance`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    pub scale_up: f64,
    pub scale_down: f64,
}

impl Tolerances {
    /// The same tolerance in both directions.
    pub fn symmetric(t: f64) -> Self {
        Tolerances {
            scale_up: t,
            scale_down: t,
        }
    }

    /// `1 - down <= ratio <= 1 + up` in float64 (the v1.33+ form; the older `|1-r| <= t`
    /// differs at the exact boundary).
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// Replica-calculator settings that come from controller flags and feature gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalcConfig {
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Millis,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Millis,
    /// `PodLevelResources` gate: use pod-level requests when a pod sets them.
    pub pod_level_resources: bool,
}

impl Default for CalcConfig {
    fn default() -> Self {
        CalcConfig {
            cpu_initialization_period: 300_000,
            initial_readiness_delay: 30_000,
            pod_level_resources: true,
        }
    }
}

/// One pod's metric sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp: Millis,
    pub window: Millis,
}

/// Pod name → sample (upstream `PodMetricsInfo`).
pub type PodMetricsInfo = BTreeMap<String, PodMetric>;

/// Result of [`group_pods`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodGroups {
    pub ready_pod_count: usize,
    pub unready: BTreeSet<String>,
    pub missing: BTreeSet<String>,
    pub ignored: BTreeSet<String>,
}

/// Result of [`get_resource_replicas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReplicas {
    pub replicas: i32,
    /// Utilization percent of the first pass (truncated integer).
    pub utilization: i32,
    /// Average raw usage (milli-units) of the first pass.
    pub raw_average: i64,
}

/// `groupPods`: sorts pods into ready / unready / missing / ignored. CPU readiness and
/// initialization rules apply only when `resource == "cpu"`.
pub fn group_pods(
    pods: &[PodInfo],
    metrics: &PodMetricsInfo,
    resource: &str,
    config: &CalcConfig,
    now: Millis,
) -> PodGroups {
    let mut g = PodGroups::default();
    for pod in pods {
        if pod.deletion_timestamp_set || pod.phase == PodPhase::Failed {
            g.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == PodPhase::Pending {
            g.unready.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing.insert(pod.name.clone());
            continue;
        };
        if resource == "cpu" {
            let unready = match (pod.ready, pod.start_time) {
                (Some(cond), Some(start)) => {
                    if start.saturating_add(config.cpu_initialization_period) > now {
                        // Still initialising: distrust the sample unless a full metric window
                        // was collected since the last readiness transition.
                        cond.status == ConditionStatus::False
                            || metric.timestamp < cond.last_transition.saturating_add(metric.window)
                    } else {
                        // Unready only if it has never been ready since it started.
                        cond.status == ConditionStatus::False
                            && start.saturating_add(config.initial_readiness_delay)
                                > cond.last_transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(pod.name.clone());
                continue;
            }
        }
        g.ready_pod_count += 1;
    }
    g
}

/// The resource metrics client: API error / empty-list errors, then one sample per pod.
/// Whole-pod (`container == ""`): sum over all containers, no sample if any container
/// lacks the resource. Container metric: that container's usage, no sample if absent.
pub fn pod_metrics_from_resource_metrics(
    raw: Result<Vec<PodResourceMetric>, String>,
    resource: &str,
    container: &str,
) -> Result<PodMetricsInfo, String> {
    let raw = raw.map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
    if raw.is_empty() {
        return Err("no metrics returned from resource metrics API".to_string());
    }
    let mut res = PodMetricsInfo::new();
    for m in &raw {
        let value = if container.is_empty() {
            let mut sum: i64 = 0;
            let mut missing = m.containers.is_empty();
            for c in &m.containers {
                match c.usage.get(resource) {
                    Some(v) => sum = sum.saturating_add(*v),
                    None => {
                        missing = true;
                        break;
                    }
                }
            }
            (!missing).then_some(sum)
        } else {
            m.containers
                .iter()
                .find(|c| c.name == container)
                .and_then(|c| c.usage.get(resource).copied())
        };
        if let Some(value) = value {
            res.insert(
                m.pod.clone(),
                PodMetric {
                    value,
                    timestamp: m.timestamp,
                    window: m.window,
                },
            );
        }
    }
    Ok(res)
}

/// Per-pod requests (milli-units) for every listed pod, including ignored/unready ones.
fn calculate_requests(
    pods: &[PodInfo],
    container: &str,
    resource: &str,
    config: &CalcConfig,
) -> Result<BTreeMap<String, i64>, String> {
    let mut requests = BTreeMap::new();
    for pod in pods {
        let request = match &pod.pod_requests {
            Some(pod_level) if config.pod_level_resources && container.is_empty() => {
                match pod_level.get(resource) {
                    Some(v) => *v,
                    None => {
                        return Err(format!(
                            "missing pod-level request for {resource} in Pod {}",
                            pod.name
                        ))
                    }
                }
            }
            _ => {
                let mut sum: i64 = 0;
                let mut found = false;
                for c in &pod.containers {
                    if container.is_empty() || container == c.name {
                        match c.requests.get(resource) {
                            Some(v) => sum = sum.saturating_add(*v),
                            None => {
                                return Err(format!(
                                    "missing request for {resource} in container {} of Pod {}",
                                    c.name, pod.name
                                ))
                            }
                        }
                    }
                    // Container names are unique inside a pod.
                    if container == c.name {
                        found = true;
                        break;
                    }
                }
                if !container.is_empty() && !found {
                    return Err(format!(
                        "container {container} not found in Pod {}",
                        pod.name
                    ));
                }
                sum
            }
        };
        requests.insert(pod.name.clone(), request);
    }
    Ok(requests)
}

/// `GetResourceUtilizationRatio`: (ratio, utilization %, raw average). The percent is
/// truncated before the ratio is formed.
fn resource_utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), String> {
    let mut metrics_total: i128 = 0;
    let mut requests_total: i128 = 0;
    let mut entries: i128 = 0;
    for (pod, metric) in metrics {
        // Samples without a request are superfluous pods: skipped here.
        let Some(request) = requests.get(pod) else {
            continue;
        };
        metrics_total += metric.value as i128;
        requests_total += *request as i128;
        entries += 1;
    }
    if requests_total == 0 || entries == 0 {
        return Err("no metrics returned matched known pods".to_string());
    }
    let utilization = clamp_i32((metrics_total * 100) / requests_total);
    let raw = clamp_i64(metrics_total / entries);
    Ok((
        utilization as f64 / target_utilization as f64,
        utilization,
        raw,
    ))
}

/// `GetMetricUsageRatio`: (ratio, truncated average over all samples).
fn metric_usage_ratio(metrics: &PodMetricsInfo, target: i64) -> (f64, i64) {
    let total: i128 = metrics.values().map(|m| m.value as i128).sum();
    let usage = if metrics.is_empty() {
        0
    } else {
        clamp_i64(total / metrics.len() as i128)
    };
    (usage as f64 / target as f64, usage)
}

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `int32(math.Ceil(x))`; Rust's float→int cast saturates (and maps NaN to 0).
fn ceil_i32(x: f64) -> i32 {
    x.ceil() as i32
}

fn remove_pods(metrics: &mut PodMetricsInfo, pods: &BTreeSet<String>) {
    for p in pods {
        metrics.remove(p);
    }
}

fn fill(metrics: &mut PodMetricsInfo, pods: &BTreeSet<String>, value: i64) {
    for p in pods {
        metrics.insert(
            p.clone(),
            PodMetric {
                value,
                timestamp: 0,
                window: 0,
            },
        );
    }
}

/// `GetResourceReplicas`: Resource/ContainerResource metric with a `Utilization` target.
#[allow(clippy::too_many_arguments)]
pub fn get_resource_replicas(
    current_replicas: i32,
    target_utilization: i32,
    resource: &str,
    container: &str,
    tolerances: Tolerances,
    config: &CalcConfig,
    pods: &[PodInfo],
    raw_metrics: Result<Vec<PodResourceMetric>, String>,
    now: Millis,
) -> Result<ResourceReplicas, String> {
    let mut metrics = pod_metrics_from_resource_metrics(raw_metrics, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".to_string());
    }
    let groups = group_pods(pods, &metrics, resource, config, now);
    remove_pods(&mut metrics, &groups.ignored);
    remove_pods(&mut metrics, &groups.unready);
    if metrics.is_empty() {
        return Err(
            "did not receive metrics for targeted pods (pods might be unready)".to_string(),
        );
    }
    let requests = calculate_requests(pods, container, resource, config)?;
    let (ratio, utilization, raw_average) =
        resource_utilization_ratio(&metrics, &requests, target_utilization)?;
    let done = |replicas| ResourceReplicas {
        replicas,
        utilization,
        raw_average,
    };

    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.is_within(ratio) {
            return Ok(done(current_replicas));
        }
        return Ok(done(ceil_i32(ratio * groups.ready_pod_count as f64)));
    }

    // Rebalance: assume values for missing/unready pods that dampen the move.
    if !groups.missing.is_empty() {
        if ratio < 1.0 {
            let fallback = i64::from(target_utilization.max(100));
            for pod in &groups.missing {
                let request = requests.get(pod).copied().unwrap_or(0);
                let value = clamp_i64(request as i128 * fallback as i128 / 100);
                fill(&mut metrics, &BTreeSet::from([pod.clone()]), value);
            }
        } else if ratio > 1.0 {
            fill(&mut metrics, &groups.missing, 0);
        }
    }
    if scale_up_with_unready {
        fill(&mut metrics, &groups.unready, 0);
    }
    let (new_ratio, _, _) = resource_utilization_ratio(&metrics, &requests, target_utilization)?;
    if tolerances.is_within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(done(current_replicas));
    }
    let new_replicas = ceil_i32(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && new_replicas > current_replicas)
        || (new_ratio > 1.0 && new_replicas < current_replicas)
    {
        return Ok(done(current_replicas));
    }
    Ok(done(new_replicas))
}

/// `calcPlainMetricReplicas`: per-pod plain values (Resource AverageValue, Pods metrics).
/// Returns (replicas, first-pass average usage in milli-units).
#[allow(clippy::too_many_arguments)]
pub fn calc_plain_metric_replicas(
    mut metrics: PodMetricsInfo,
    current_replicas: i32,
    target_usage: i64,
    tolerances: Tolerances,
    pods: &[PodInfo],
    resource: &str,
    config: &CalcConfig,
    now: Millis,
) -> Result<(i32, i64), String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".to_string());
    }
    let groups = group_pods(pods, &metrics, resource, config, now);
    remove_pods(&mut metrics, &groups.ignored);
    remove_pods(&mut metrics, &groups.unready);
    if metrics.is_empty() {
        return Err(
            "did not receive metrics for targeted pods (pods might be unready)".to_string(),
        );
    }
    let (ratio, usage) = metric_usage_ratio(&metrics, target_usage);
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.is_within(ratio) {
            return Ok((current_replicas, usage));
        }
        return Ok((ceil_i32(ratio * groups.ready_pod_count as f64), usage));
    }
    if !groups.missing.is_empty() {
        if ratio < 1.0 {
            fill(&mut metrics, &groups.missing, target_usage);
        } else if ratio > 1.0 {
            fill(&mut metrics, &groups.missing, 0);
        }
    }
    if scale_up_with_unready {
        fill(&mut metrics, &groups.unready, 0);
    }
    let (new_ratio, _) = metric_usage_ratio(&metrics, target_usage);
    if tolerances.is_within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok((current_replicas, usage));
    }
    let new_replicas = ceil_i32(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && new_replicas > current_replicas)
        || (new_ratio > 1.0 && new_replicas < current_replicas)
    {
        return Ok((current_replicas, usage));
    }
    Ok((new_replicas, usage))
}

/// `GetRawResourceReplicas`: Resource/ContainerResource metric with an `AverageValue` target.
#[allow(clippy::too_many_arguments)]
pub fn get_raw_resource_replicas(
    current_replicas: i32,
    target_usage: i64,
    resource: &str,
    container: &str,
    tolerances: Tolerances,
    config: &CalcConfig,
    pods: &[PodInfo],
    raw_metrics: Result<Vec<PodResourceMetric>, String>,
    now: Millis,
) -> Result<(i32, i64), String> {
    let metrics = pod_metrics_from_resource_metrics(raw_metrics, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    calc_plain_metric_replicas(
        metrics,
        current_replicas,
        target_usage,
        tolerances,
        pods,
        resource,
        config,
        now,
    )
}

/// `GetMetricReplicas`: a `Pods` (custom per-pod) metric.
#[allow(clippy::too_many_arguments)]
pub fn get_metric_replicas(
    current_replicas: i32,
    target_usage: i64,
    metric_name: &str,
    tolerances: Tolerances,
    config: &CalcConfig,
    pods: &[PodInfo],
    samples: Result<Vec<PodMetricValue>, String>,
    now: Millis,
) -> Result<(i32, i64), String> {
    let wrap = |e: String| format!("unable to get metric {metric_name}: {e}");
    let samples = samples.map_err(|e| {
        wrap(format!(
            "unable to fetch metrics from custom metrics API: {e}"
        ))
    })?;
    if samples.is_empty() {
        return Err(wrap(
            "no metrics returned from custom metrics API".to_string(),
        ));
    }
    let metrics = samples
        .into_iter()
        .map(|s| {
            (
                s.pod,
                PodMetric {
                    value: s.value,
                    timestamp: now,
                    window: DEFAULT_METRIC_WINDOW,
                },
            )
        })
        .collect();
    calc_plain_metric_replicas(
        metrics,
        current_replicas,
        target_usage,
        tolerances,
        pods,
        "",
        config,
        now,
    )
}

/// `getUsageRatioReplicaCount`: Value-type Object/External metrics. Multiplies by the
/// number of Running+Ready pods; from zero replicas it is `ceil(ratio)` without tolerance.
pub fn get_usage_ratio_replica_count(
    current_replicas: i32,
    usage_ratio: f64,
    tolerances: Tolerances,
    pods: &[PodInfo],
) -> Result<i32, String> {
    if current_replicas == 0 {
        return Ok(ceil_i32(usage_ratio));
    }
    if tolerances.is_within(usage_ratio) {
        return Ok(current_replicas);
    }
    if pods.is_empty() {
        return Err("unable to calculate ready pods: no pods returned by selector while calculating replica count".to_string());
    }
    let ready = pods
        .iter()
        .filter(|p| {
            p.phase == PodPhase::Running
                && p.ready.is_some_and(|c| c.status == ConditionStatus::True)
        })
        .count();
    let x = usage_ratio * ready as f64;
    Ok(if x > i32::MAX as f64 {
        i32::MAX
    } else {
        ceil_i32(x)
    })
}

fn object_error(
    metric_name: &str,
    namespace: &str,
    object: &CrossVersionObjectReference,
    err: &str,
) -> String {
    // Upstream's format string has its arguments out of order; the text really reads so.
    format!(
        "unable to get metric {metric_name}: {} on {namespace} {}/unable to fetch metrics from custom metrics API: {err}",
        object.kind, object.name
    )
}

/// `GetObjectMetricReplicas`: Object metric, `Value` target. Returns (replicas, usage).
#[allow(clippy::too_many_arguments)]
pub fn get_object_metric_replicas(
    spec_replicas: i32,
    target_usage: i64,
    metric_name: &str,
    tolerances: Tolerances,
    namespace: &str,
    object: &CrossVersionObjectReference,
    pods: &[PodInfo],
    value: Result<i64, String>,
) -> Result<(i32, i64), String> {
    let usage = value.map_err(|e| object_error(metric_name, namespace, object, &e))?;
    let ratio = usage as f64 / target_usage as f64;
    let replicas = get_usage_ratio_replica_count(spec_replicas, ratio, tolerances, pods)?;
    Ok((replicas, usage))
}

/// `GetObjectPerPodMetricReplicas`: Object metric, `AverageValue` target (divides by the
/// scale's status replicas). Returns (replicas, per-replica average usage).
pub fn get_object_per_pod_metric_replicas(
    status_replicas: i32,
    target_average_usage: i64,
    metric_name: &str,
    tolerances: Tolerances,
    namespace: &str,
    object: &CrossVersionObjectReference,
    value: Result<i64, String>,
) -> Result<(i32, i64), String> {
    let usage = value.map_err(|e| object_error(metric_name, namespace, object, &e))?;
    let mut replicas = status_replicas;
    let ratio = usage as f64 / (target_average_usage as f64 * status_replicas as f64);
    if !tolerances.is_within(ratio) {
        replicas = ceil_i32(usage as f64 / target_average_usage as f64);
    }
    let average = (usage as f64 / status_replicas as f64).ceil() as i64;
    Ok((replicas, average))
}

fn external_values(
    metric_name: &str,
    namespace: &str,
    selector: Option<&LabelSelector>,
    values: Result<Vec<i64>, String>,
) -> Result<Vec<i64>, String> {
    label_selector_as_selector(selector)?;
    let wrap = |e: String| {
        format!(
            "unable to get external metric {namespace}/{metric_name}/{}: {e}",
            format_label_selector(selector)
        )
    };
    let values = values.map_err(|e| {
        wrap(format!(
            "unable to fetch metrics from external metrics API: {e}"
        ))
    })?;
    if values.is_empty() {
        return Err(wrap(
            "no metrics returned from external metrics API".to_string(),
        ));
    }
    Ok(values)
}

/// `GetExternalMetricReplicas`: External metric, `Value` target. Returns (replicas, sum).
#[allow(clippy::too_many_arguments)]
pub fn get_external_metric_replicas(
    spec_replicas: i32,
    target_usage: i64,
    metric_name: &str,
    tolerances: Tolerances,
    namespace: &str,
    selector: Option<&LabelSelector>,
    pods: &[PodInfo],
    values: Result<Vec<i64>, String>,
) -> Result<(i32, i64), String> {
    let values = external_values(metric_name, namespace, selector, values)?;
    let mut usage: i64 = 0;
    for v in values {
        // Positive overflow caps at MaxInt64 like upstream.
        if v > 0 && usage > i64::MAX - v {
            usage = i64::MAX;
            break;
        }
        usage = usage.saturating_add(v);
    }
    let ratio = usage as f64 / target_usage as f64;
    let replicas = get_usage_ratio_replica_count(spec_replicas, ratio, tolerances, pods)?;
    Ok((replicas, usage))
}

/// `GetExternalPerPodMetricReplicas`: External metric, `AverageValue` target (divides by
/// the scale's status replicas). Returns (replicas, per-replica average usage).
pub fn get_external_per_pod_metric_replicas(
    status_replicas: i32,
    target_usage_per_pod: i64,
    metric_name: &str,
    tolerances: Tolerances,
    namespace: &str,
    selector: Option<&LabelSelector>,
    values: Result<Vec<i64>, String>,
) -> Result<(i32, i64), String> {
    let values = external_values(metric_name, namespace, selector, values)?;
    let mut usage: i64 = 0;
    for v in values {
        usage = usage.wrapping_add(v);
        if usage < 0 {
            // Upstream reads a negative running sum as an int64 overflow.
            usage = i64::MAX;
            break;
        }
    }
    let mut replicas = status_replicas;
    let ratio = usage as f64 / (target_usage_per_pod as f64 * status_replicas as f64);
    if !tolerances.is_within(ratio) {
        let r = (usage as f64 / target_usage_per_pod as f64).ceil();
        replicas = if r > i32::MAX as f64 {
            i32::MAX
        } else {
            r as i32
        };
    }
    let average = if usage as f64 >= i64::MAX as f64 {
        i64::MAX
    } else {
        (usage as f64 / status_replicas as f64).ceil() as i64
    };
    Ok((replicas, average))
}

#[cfg(test)]
mod tests {
    use super::super::types::{ContainerInfo, ContainerUsage};
    use super::*;

    fn pod(name: &str, cpu_request: i64) -> PodInfo {
        PodInfo::running(
            name,
            -1_000_000,
            vec![ContainerInfo {
                name: "app".into(),
                requests: BTreeMap::from([("cpu".to_string(), cpu_request)]),
            }],
        )
    }

    fn usage(name: &str, cpu: i64) -> PodResourceMetric {
        PodResourceMetric {
            pod: name.into(),
            timestamp: 0,
            window: 60_000,
            containers: vec![ContainerUsage {
                name: "app".into(),
                usage: BTreeMap::from([("cpu".to_string(), cpu)]),
            }],
        }
    }

    #[test]
    fn utilization_ratio_scales_ready_pods() {
        // 3 pods at 1000m request using 500m, 600m, 700m: 60 % vs a 30 % target → 2.0 × 3.
        let pods = [pod("a", 1000), pod("b", 1000), pod("c", 1000)];
        let raw = vec![usage("a", 500), usage("b", 600), usage("c", 700)];
        let r = get_resource_replicas(
            3,
            30,
            "cpu",
            "",
            Tolerances::symmetric(0.1),
            &CalcConfig::default(),
            &pods,
            Ok(raw),
            0,
        )
        .unwrap();
        assert_eq!(r.utilization, 60);
        assert_eq!(r.raw_average, 600);
        assert_eq!(r.replicas, 6);
    }

    #[test]
    fn utilization_percent_is_truncated_before_ratio() {
        // 1000m used of 2998m requested is 33.35 %, truncated to 33 → ratio 33/30 = 1.1,
        // which is inside the tolerance band; with 33.35 it would have scaled.
        let pods = [pod("a", 1499), pod("b", 1499)];
        let raw = vec![usage("a", 500), usage("b", 500)];
        let r = get_resource_replicas(
            2,
            30,
            "cpu",
            "",
            Tolerances::symmetric(0.1),
            &CalcConfig::default(),
            &pods,
            Ok(raw),
            0,
        )
        .unwrap();
        assert_eq!((r.utilization, r.replicas), (33, 2));
    }

    #[test]
    fn tolerance_boundary_is_inclusive() {
        let t = Tolerances::symmetric(0.1);
        assert!(t.is_within(1.1));
        assert!(t.is_within(0.9));
        assert!(!t.is_within(1.1000001));
        assert!(!t.is_within(0.8999999));
    }

    #[test]
    fn external_value_multiplies_running_ready_pods() {
        let pods = [pod("a", 1), pod("b", 1), pod("c", 1)];
        // 8600 / 4400 = 1.95 × 3 ready pods → ceil(5.86) = 6.
        let (r, sum) = get_external_metric_replicas(
            3,
            4400,
            "qps",
            Tolerances::symmetric(0.1),
            "default",
            None,
            &pods,
            Ok(vec![8600]),
        )
        .unwrap();
        assert_eq!((r, sum), (6, 8600));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let t = Tolerances::symmetric(0.1);
        let obj = CrossVersionObjectReference::default();
        // Zero targets and zero status replicas divide floats by zero: saturating casts.
        assert!(get_object_per_pod_metric_replicas(0, 0, "m", t, "ns", &obj, Ok(5)).is_ok());
        assert!(get_external_per_pod_metric_replicas(
            0,
            1,
            "m",
            t,
            "ns",
            None,
            Ok(vec![i64::MAX, 1])
        )
        .is_ok());
        assert!(get_external_metric_replicas(
            3,
            0,
            "m",
            t,
            "ns",
            None,
            &[pod("a", 1)],
            Ok(vec![i64::MIN, -1])
        )
        .is_ok());
        assert!(get_usage_ratio_replica_count(1, f64::NAN, t, &[pod("a", 1)]).is_ok());
        let pods = [pod("a", 0)];
        let r = get_resource_replicas(
            1,
            0,
            "cpu",
            "",
            t,
            &CalcConfig::default(),
            &pods,
            Ok(vec![usage("a", 5)]),
            0,
        );
        assert_eq!(r, Err("no metrics returned matched known pods".to_string()));
        let r = get_resource_replicas(
            1,
            0,
            "cpu",
            "nope",
            t,
            &CalcConfig::default(),
            &pods,
            Ok(vec![usage("a", 5)]),
            0,
        );
        assert!(r.is_err());
    }
}
