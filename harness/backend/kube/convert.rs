//! Pure conversions for the `kube` backend: cluster objects into recorder
//! data (replicas, pods, HPA status, events), the objects to apply for a
//! run namespace, and why pods are not ready. No I/O, so tested without a
//! cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus,
};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};

use crate::autoscaler::{format_label_selector, parse_quantity_f64};
use crate::manifests::{Manifests, Object};
use crate::recorder::{ConditionSample, Event, HpaSample, MetricSample, PodSample, Replicas};

/// Label on every namespace the harness creates, so `cleanup` finds them.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "autoscale-harness");
pub const RUN_LABEL: &str = "autoscale-harness/run";
pub const SCENARIO_LABEL: &str = "autoscale-harness/scenario";
pub const FIELD_MANAGER: &str = "autoscale-harness";

/// `s` lowercased, other characters as `-`, trimmed, at most `max` long:
/// a valid DNS-1123 label part and label value.
pub fn dns_label(s: &str, max: usize) -> String {
    let s: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut s = s.trim_matches('-').to_string();
    s.truncate(max);
    s.trim_end_matches('-').to_string()
}

/// `autoscale-<scenario>-<id>`, a valid DNS-1123 label (≤ 63 characters).
pub fn namespace_name(scenario: &str, id: &str) -> String {
    let s = dns_label(scenario, 63 - "autoscale-".len() - 1 - id.len());
    if s.is_empty() {
        format!("autoscale-{id}")
    } else {
        format!("autoscale-{s}-{id}")
    }
}

/// One object ready for server-side apply.
#[derive(Debug, Clone)]
pub struct Applied {
    pub kind: &'static str,
    pub name: String,
    pub object: Object,
}

/// The manifests moved into the run namespace, in manifest order:
/// - every object's namespace becomes `ns`;
/// - `target.replicas`, when set, becomes the Deployment's spec.replicas;
/// - a route's parentRefs without a namespace keep pointing at the gateway
///   in the manifest's own namespace (the gateway is cluster infrastructure);
/// - label values of the form `<manifest-namespace>-…` (seed 000's route id
///   `default-httpbin-svc-8080`) on routes and in External metric selectors
///   become `<ns>-…`, so the HPA still selects the route it was written for.
pub fn relocate(m: &Manifests, ns: &str, replicas: Option<i32>) -> Vec<Applied> {
    m.items
        .iter()
        .map(|item| {
            let mut object = item.object.clone();
            let name = item.name();
            match &mut object {
                Object::Deployment(d) => {
                    let orig = original_ns(&d.metadata.namespace);
                    d.metadata.namespace = Some(ns.into());
                    relabel(&mut d.metadata.labels, &orig, ns);
                    if let (Some(r), Some(spec)) = (replicas, d.spec.as_mut()) {
                        spec.replicas = Some(r);
                    }
                }
                Object::Service(s) => s.metadata.namespace = Some(ns.into()),
                Object::CronHpa(c) => c.metadata.namespace = Some(ns.into()),
                Object::Hpa(h) => {
                    let orig = original_ns(&h.metadata.namespace);
                    h.metadata.namespace = Some(ns.into());
                    for m in h
                        .spec
                        .iter_mut()
                        .flat_map(|s| s.metrics.iter_mut().flatten())
                    {
                        if let Some(sel) =
                            m.external.as_mut().and_then(|e| e.metric.selector.as_mut())
                        {
                            relabel(&mut sel.match_labels, &orig, ns);
                        }
                    }
                }
                Object::HttpRoute(r) => {
                    let orig = original_ns(&r.metadata.namespace);
                    r.metadata.namespace = Some(ns.into());
                    relabel(&mut r.metadata.labels, &orig, ns);
                    for p in r.spec.parent_refs.iter_mut().flatten() {
                        if p.namespace.is_none() {
                            p.namespace = Some(orig.clone());
                        }
                    }
                }
            }
            Applied {
                kind: item.kind(),
                name,
                object,
            }
        })
        .collect()
}

fn original_ns(ns: &Option<String>) -> String {
    ns.clone().unwrap_or_else(|| "default".into())
}

fn relabel(labels: &mut Option<BTreeMap<String, String>>, orig: &str, ns: &str) {
    let prefix = format!("{orig}-");
    for v in labels.iter_mut().flat_map(|l| l.values_mut()) {
        if let Some(rest) = v.strip_prefix(&prefix) {
            *v = format!("{ns}-{rest}");
        }
    }
}

/// `k=v,...` of a Deployment's `matchLabels`: the selector of its pods'
/// watch (Envoy Gateway's and the manifests' Deployments use matchLabels).
pub fn pod_selector(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pod template's CPU requests summed over its containers, in
/// millicores: what the HPA divides usage by for CPU utilization.
pub fn cpu_request_milli(d: &Deployment) -> Option<i64> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .filter_map(|c| {
                    c.resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref())
                        .and_then(|r| r.get("cpu"))
                        .and_then(|q| crate::autoscaler::parse_quantity_milli(&q.0).ok())
                })
                .sum::<i64>()
        })
        .filter(|c| *c > 0)
}

/// Whether a cluster Event in a namespace the run does not own is about
/// what the run watches: the HPA, its Deployment, or the Deployment's
/// ReplicaSets and pods (named `<deployment>-<hash>[-<suffix>]`). Other
/// workloads there (another gateway's proxies) are not the run's story.
pub fn concerns(e: &KubeEvent, hpa: &str, deployment: &str) -> bool {
    let name = e.involved_object.name.as_deref().unwrap_or_default();
    let kind = e.involved_object.kind.as_deref().unwrap_or_default();
    match kind {
        "HorizontalPodAutoscaler" => name == hpa,
        "Deployment" => name == deployment,
        "ReplicaSet" | "Pod" => name
            .strip_prefix(deployment)
            .is_some_and(|rest| rest.starts_with('-')),
        _ => false,
    }
}

pub fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's container restarts, summed as `kubectl get pods` shows them.
fn restarts(p: &Pod) -> u32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum()
        })
}

/// Replica counts as the local backend reports them.
pub fn replicas(
    d: Option<&Deployment>,
    pods: &[Pod],
    hpa: Option<&HorizontalPodAutoscaler>,
) -> Replicas {
    let live: Vec<&Pod> = pods.iter().filter(|p| !is_terminating(p)).collect();
    Replicas {
        spec: d
            .and_then(|d| d.spec.as_ref())
            .and_then(|s| s.replicas)
            .unwrap_or(0),
        current: live.len() as i32,
        ready: live.iter().filter(|p| is_ready(p)).count() as i32,
        desired: hpa
            .and_then(|h| h.status.as_ref())
            .map(|s| s.desired_replicas)
            .unwrap_or(0),
    }
}

/// Per-pod samples: CPU and memory from the metrics API when it answers
/// (`usage`: pod → (millicores, bytes)), request rates from Prometheus
/// when it does (`qps`: pod → requests per second; 0 for a pod it has no
/// series of).
pub fn pod_samples(
    pods: &[Pod],
    usage: &BTreeMap<String, (f64, u64)>,
    qps: &BTreeMap<String, f64>,
    cpu_request_milli: Option<i64>,
) -> Vec<PodSample> {
    let mut out: Vec<PodSample> = pods
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let phase = if is_terminating(p) {
                "Terminating".to_string()
            } else {
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Pending".into())
            };
            let (cpu, mem) = usage.get(&name).copied().unwrap_or((0.0, 0));
            let rate = qps.get(&name).copied().unwrap_or(0.0);
            PodSample {
                name,
                phase,
                ready: is_ready(p),
                terminating: is_terminating(p),
                qps: rate,
                cpu_millicores: cpu,
                cpu_utilization: cpu_request_milli
                    .filter(|r| {
                        *r > 0 && usage.contains_key(p.metadata.name.as_deref().unwrap_or_default())
                    })
                    .map(|r| cpu / r as f64 * 100.0),
                memory_bytes: mem,
                in_flight: 0,
                restarts: restarts(p),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn quantity(v: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<f64> {
    v.as_ref().and_then(|q| parse_quantity_f64(&q.0).ok())
}

/// The value a target type compares against, and its unit.
fn target_value(t: &MetricTarget) -> (f64, &'static str) {
    match t.type_.as_str() {
        "Utilization" => (t.average_utilization.unwrap_or(0) as f64, "%"),
        "AverageValue" => (quantity(&t.average_value).unwrap_or(0.0), ""),
        _ => (quantity(&t.value).unwrap_or(0.0), ""),
    }
}

fn current_value(c: &MetricValueStatus, target_type: &str) -> f64 {
    match target_type {
        "Utilization" => c.average_utilization.map(f64::from).unwrap_or(0.0),
        "AverageValue" => quantity(&c.average_value).unwrap_or(0.0),
        _ => quantity(&c.value)
            .or_else(|| quantity(&c.average_value))
            .unwrap_or(0.0),
    }
}

/// The metric's name as the controller prints it (see `autoscaler`).
fn metric_name(m: &MetricSpec) -> Option<(String, &MetricTarget)> {
    Some(match m.type_.as_str() {
        "Resource" => {
            let r = m.resource.as_ref()?;
            let name = if r.target.type_ == "Utilization" {
                format!("{} resource utilization (percentage of request)", r.name)
            } else {
                format!("{} resource", r.name)
            };
            (name, &r.target)
        }
        "ContainerResource" => {
            let r = m.container_resource.as_ref()?;
            let name = if r.target.type_ == "Utilization" {
                format!(
                    "{} container resource utilization (percentage of request)",
                    r.name
                )
            } else {
                format!("{} container resource", r.name)
            };
            (name, &r.target)
        }
        "Pods" => {
            let p = m.pods.as_ref()?;
            (format!("pods metric {}", p.metric.name), &p.target)
        }
        "Object" => {
            let o = m.object.as_ref()?;
            let name = if o.target.type_ == "AverageValue" {
                format!(
                    "external metric {}({})",
                    o.metric.name,
                    format_label_selector(o.metric.selector.as_ref())
                )
            } else {
                format!("{} metric {}", o.described_object.kind, o.metric.name)
            };
            (name, &o.target)
        }
        "External" => {
            let e = m.external.as_ref()?;
            (
                format!(
                    "external metric {}({})",
                    e.metric.name,
                    format_label_selector(e.metric.selector.as_ref())
                ),
                &e.target,
            )
        }
        _ => return None,
    })
}

fn status_current(s: &MetricStatus) -> Option<&MetricValueStatus> {
    match s.type_.as_str() {
        "Resource" => s.resource.as_ref().map(|r| &r.current),
        "ContainerResource" => s.container_resource.as_ref().map(|r| &r.current),
        "Pods" => s.pods.as_ref().map(|r| &r.current),
        "Object" => s.object.as_ref().map(|r| &r.current),
        "External" => s.external.as_ref().map(|r| &r.current),
        _ => None,
    }
}

/// The HPA's spec targets next to its status's current values (the
/// controller writes currentMetrics in spec order), and its conditions.
pub fn hpa_sample(h: &HorizontalPodAutoscaler) -> HpaSample {
    let spec_metrics = h
        .spec
        .as_ref()
        .and_then(|s| s.metrics.clone())
        .unwrap_or_default();
    let status = h.status.as_ref();
    let current = status
        .and_then(|s| s.current_metrics.clone())
        .unwrap_or_default();
    let metrics = spec_metrics
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let (name, target) = metric_name(m)?;
            let (tv, unit) = target_value(target);
            // Not read yet (or failing): no sample rather than a made-up value.
            let cur = current
                .get(i)
                .filter(|c| c.type_ == m.type_)
                .and_then(status_current)
                .map(|c| current_value(c, &target.type_))?;
            Some(MetricSample {
                name,
                current: cur,
                target: tv,
                unit: unit.into(),
            })
        })
        .collect();
    let conditions = status
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| ConditionSample {
            type_: c.type_,
            status: c.status,
            reason: c.reason.unwrap_or_default(),
            message: c.message.unwrap_or_default(),
        })
        .collect();
    let spec = h.spec.as_ref();
    HpaSample {
        name: h.metadata.name.clone().unwrap_or_default(),
        metrics,
        conditions,
        min_replicas: spec.map(|s| s.min_replicas.unwrap_or(1)),
        max_replicas: spec.map(|s| s.max_replicas),
    }
}

pub fn scaling_active(h: &HorizontalPodAutoscaler) -> bool {
    let conds = h.status.iter().flat_map(|s| s.conditions.iter().flatten());
    is_true(conds.map(|c| (&c.type_, &c.status)), "ScalingActive")
}

pub fn deployment_available(d: &Deployment) -> bool {
    let conds = d.status.iter().flat_map(|s| s.conditions.iter().flatten());
    is_true(conds.map(|c| (&c.type_, &c.status)), "Available")
}

/// Whether the condition of type `ty` among (type, status) pairs is "True"
/// (each kind has its own condition struct with these two fields).
fn is_true<'a>(mut conds: impl Iterator<Item = (&'a String, &'a String)>, ty: &str) -> bool {
    conds.any(|(t, s)| t == ty && s == "True")
}

/// A cluster Event as a recorder event at experiment time (`t0` in Unix
/// seconds), with the cluster's own timestamp (lastTimestamp, else
/// eventTime, else firstTimestamp) kept beside it. A rescale's new size
/// comes from its message; its previous size is left to `rescales`.
/// Returns the event and its cluster time in Unix seconds.
pub fn event(e: &KubeEvent, t0: f64) -> Option<(Event, f64)> {
    let at = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|m| m.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))?;
    let at_unix = at.as_millisecond() as f64 / 1000.0;
    let reason = e.reason.clone().unwrap_or_default();
    let message = e.message.clone().unwrap_or_default();
    let to = (reason == "SuccessfulRescale")
        .then(|| {
            message
                .strip_prefix("New size: ")
                .and_then(|r| r.split(';').next())
                .and_then(|n| n.trim().parse::<i32>().ok())
        })
        .flatten();
    let ev = Event {
        t: at_unix - t0,
        type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason,
        object: format!(
            "{}/{}",
            e.involved_object.kind.clone().unwrap_or_default(),
            e.involved_object.name.clone().unwrap_or_default()
        ),
        source: e
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .or_else(|| e.reporting_component.clone())
            .unwrap_or_default(),
        message,
        from_replicas: None,
        to_replicas: to,
        offered_qps: None,
        cluster_time: Some(at.to_string()),
    };
    Some((ev, at_unix))
}

/// Why pods are not ready, from their status: image pulls, crash loops,
/// scheduling. Empty when nothing explains it.
pub fn diagnose(pods: &[Pod]) -> Vec<String> {
    let mut out = Vec::new();
    for p in pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some(st) = p.status.as_ref() else {
            continue;
        };
        for c in st
            .container_statuses
            .iter()
            .flatten()
            .chain(st.init_container_statuses.iter().flatten())
        {
            if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                let reason = w.reason.clone().unwrap_or_default();
                if !reason.is_empty()
                    && reason != "ContainerCreating"
                    && reason != "PodInitializing"
                {
                    out.push(format!(
                        "pod {name}: container {} is {reason}{}",
                        c.name,
                        w.message
                            .as_ref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        if st.phase.as_deref() == Some("Pending") {
            for c in st.conditions.iter().flatten() {
                if c.type_ == "PodScheduled" && c.status == "False" {
                    out.push(format!(
                        "pod {name}: Pending, not scheduled ({}): {}",
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    ));
                }
            }
        }
        if st.phase.as_deref() == Some("Failed") {
            out.push(format!(
                "pod {name}: Failed ({}): {}",
                st.reason.clone().unwrap_or_default(),
                st.message.clone().unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn events_elsewhere_count_only_for_the_watched_hpa_and_its_workload() {
        let ev = |kind: &str, name: &str| -> KubeEvent {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "e"},
                "involvedObject": {"kind": kind, "name": name}}))
            .unwrap()
        };
        let c = |kind, name| concerns(&ev(kind, name), "envoy-paper", "envoy-paper");
        assert!(c("HorizontalPodAutoscaler", "envoy-paper"));
        assert!(c("Deployment", "envoy-paper"));
        assert!(c("ReplicaSet", "envoy-paper-5d9f7c"));
        assert!(c("Pod", "envoy-paper-5d9f7c-x2x4q"));
        // The other gateway's proxies share the namespace and a name prefix.
        assert!(!c("Pod", "envoy-default-gateway-3d5f1e-abcde"));
        assert!(!c("Pod", "envoy-paperweight-1-a"));
        assert!(!c(
            "HorizontalPodAutoscaler",
            "envoy-default-gateway-3d5f1e"
        ));
        assert!(!c("Service", "envoy-paper"));
    }

    #[test]
    fn selector_and_cpu_request_come_from_the_deployment() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "envoy-paper", "namespace": "envoy-gateway-system"},
            "spec": {"selector": {"matchLabels": {
                "app.kubernetes.io/name": "envoy",
                "gateway.envoyproxy.io/owning-gateway-name": "paper"}},
              "template": {"spec": {"containers": [
                {"name": "envoy", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "shutdown-manager", "resources": {"requests": {"cpu": "10m"}}}]}}}
        }))
        .unwrap();
        assert_eq!(
            pod_selector(&d),
            "app.kubernetes.io/name=envoy,gateway.envoyproxy.io/owning-gateway-name=paper"
        );
        assert_eq!(cpu_request_milli(&d), Some(110));
        assert_eq!(cpu_request_milli(&Deployment::default()), None);
    }

    #[test]
    fn namespace_names_are_dns_labels() {
        assert_eq!(
            namespace_name("ramp-kind", "a1b2c3"),
            "autoscale-ramp-kind-a1b2c3"
        );
        assert_eq!(
            namespace_name("Paper Fig 7!", "x1"),
            "autoscale-paper-fig-7-x1"
        );
        let long = namespace_name(&"y".repeat(100), "abcdef");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-abcdef"));
    }

    #[test]
    fn diagnose_names_image_pulls_crash_loops_and_scheduling() {
        let pods = vec![
            pod(
                serde_json::json!({"metadata": {"name": "a"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "httpbin", "image": "x", "imageID": "", "ready": false,
                  "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
                  "message": "Back-off pulling image \"nope:1\""}}}]}}),
            ),
            pod(
                serde_json::json!({"metadata": {"name": "b"}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                  "message": "0/1 nodes are available: 1 Insufficient cpu."}]}}),
            ),
            pod(
                serde_json::json!({"metadata": {"name": "c"}, "status": {"phase": "Running",
                "containerStatuses": [{"name": "httpbin", "image": "x", "imageID": "", "ready": false,
                  "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            ),
        ];
        let d = diagnose(&pods);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            d[0].contains("ImagePullBackOff") && d[0].contains("nope:1"),
            "{}",
            d[0]
        );
        assert!(
            d[1].contains("Unschedulable") && d[1].contains("Insufficient cpu"),
            "{}",
            d[1]
        );
        assert!(
            d[2].contains("container httpbin is CrashLoopBackOff"),
            "{}",
            d[2]
        );
    }

    #[test]
    fn events_use_cluster_time_and_carry_the_new_size() {
        let e: KubeEvent = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e1", "namespace": "ns"},
            "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "httpbin"},
            "reason": "SuccessfulRescale", "type": "Normal",
            "message": "New size: 3; reason: cpu resource utilization (percentage of request) above target",
            "source": {"component": "horizontal-pod-autoscaler"},
            "lastTimestamp": "2026-11-23T10:00:42Z"
        }))
        .unwrap();
        let t0 = jiff::Timestamp::from_second(1_795_428_000)
            .unwrap()
            .as_second() as f64; // 10:00:00Z
        let (ev, at) = event(&e, t0).unwrap();
        assert_eq!((ev.t, at), (42.0, t0 + 42.0));
        assert_eq!((ev.from_replicas, ev.to_replicas), (None, Some(3)));
        assert_eq!(ev.cluster_time.as_deref(), Some("2026-11-23T10:00:42Z"));
        assert_eq!(ev.object, "HorizontalPodAutoscaler/httpbin");
        assert_eq!(ev.source, "horizontal-pod-autoscaler");
    }

    #[test]
    fn hpa_sample_pairs_targets_with_current_values() {
        let h: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ingress-hpa"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
              "maxReplicas": 10, "metrics": [
                {"type": "External", "external": {"metric": {"name": "sls_ingress_qps",
                  "selector": {"matchLabels": {"route": "default-httpbin-svc-8080"}}},
                  "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                  "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
                {"type": "External", "external": {"metric": {"name": "sls_ingress_qps"},
                  "current": {"averageValue": "12500m"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                  "current": {"averageUtilization": 41, "averageValue": "41m"}}}],
              "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}
        }))
        .unwrap();
        let s = hpa_sample(&h);
        assert_eq!(s.metrics.len(), 2);
        assert!(s.metrics[0]
            .name
            .starts_with("external metric sls_ingress_qps(&LabelSelector{"));
        assert_eq!((s.metrics[0].current, s.metrics[0].target), (12.5, 10.0));
        assert_eq!(
            s.metrics[1].name,
            "cpu resource utilization (percentage of request)"
        );
        assert_eq!(
            (
                s.metrics[1].current,
                s.metrics[1].target,
                s.metrics[1].unit.as_str()
            ),
            (41.0, 80.0, "%")
        );
        assert!(scaling_active(&h));
    }
}
