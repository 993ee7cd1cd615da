//! Replays every vector of `tests/fixtures/hpa/vectors.json` (upstream Kubernetes HPA
//! tests plus derived cases) against the port and reports every failing vector by id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use autoscale_harness::autoscaler as hpa;
use hpa::{
    CalcConfig, ContainerInfo, ContainerUsage, ControllerConfig, FeatureGates, HpaController,
    MetricsSource, Millis, PodInfo, PodMetric, PodMetricValue, PodMetricsInfo, PodPhase,
    PodResourceMetric, ReadyCondition, Recommendation, ScaleEvent, ScaleInfo, ScalingRules,
    Tolerances,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Map, Value};

const NAMESPACE: &str = "test-namespace";

/// The repository's copy of the vectors (see tests/fixtures/hpa/README.md).
fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hpa/vectors.json")
}

// ---------------------------------------------------------------- JSON helpers

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| f(v) as i64)
}

fn i32_(v: &Value) -> i32 {
    i(v) as i32
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// Seconds relative to now → Millis; `-1e11` is Go's zero time.
fn t(v: &Value) -> Millis {
    let secs = f(v);
    if secs <= -1e11 {
        hpa::GO_ZERO_TIME
    } else {
        (secs * 1000.0).round() as Millis
    }
}

fn secs(v: &Value) -> Millis {
    (f(v) * 1000.0).round() as Millis
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

// ---------------------------------------------------------------- conversions

fn pods(v: &Value) -> Vec<PodInfo> {
    arr(v)
        .iter()
        .map(|p| PodInfo {
            name: s(&p["name"]),
            phase: match p["phase"].as_str() {
                Some("Pending") => PodPhase::Pending,
                Some("Running") => PodPhase::Running,
                Some("Succeeded") => PodPhase::Succeeded,
                Some("Failed") => PodPhase::Failed,
                _ => PodPhase::Unknown,
            },
            deletion_timestamp_set: p["deletion_timestamp_set"].as_bool().unwrap_or(false),
            start_time: (!p["start_time_s"].is_null()).then(|| t(&p["start_time_s"])),
            ready: (!p["ready_condition"].is_null()).then(|| ReadyCondition {
                status: match p["ready_condition"]["status"].as_str() {
                    Some("True") => hpa::ConditionStatus::True,
                    Some("False") => hpa::ConditionStatus::False,
                    _ => hpa::ConditionStatus::Unknown,
                },
                last_transition: t(&p["ready_condition"]["last_transition_time_s"]),
            }),
            containers: arr(&p["containers"])
                .iter()
                .map(|c| ContainerInfo {
                    name: s(&c["name"]),
                    requests: milli_map(&c["requests"]),
                })
                .collect(),
            pod_requests: None,
            labels: None,
        })
        .collect()
}

fn milli_map(v: &Value) -> BTreeMap<String, i64> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), i(v))).collect())
        .unwrap_or_default()
}

fn resource_metrics(v: &Value) -> Vec<PodResourceMetric> {
    arr(v)
        .iter()
        .map(|m| PodResourceMetric {
            pod: s(&m["pod"]),
            timestamp: t(&m["timestamp_s"]),
            window: secs(&m["window_s"]),
            containers: arr(&m["containers"])
                .iter()
                .map(|c| ContainerUsage {
                    name: s(&c["name"]),
                    usage: milli_map(&c["usage"]),
                })
                .collect(),
        })
        .collect()
}

fn pod_values(v: &Value) -> Vec<PodMetricValue> {
    arr(v)
        .iter()
        .map(|m| PodMetricValue {
            pod: s(&m["pod"]),
            value: i(&m["value_milli"]),
        })
        .collect()
}

fn tolerances(v: &Value) -> Tolerances {
    Tolerances {
        scale_up: f(&v["scale_up"]),
        scale_down: f(&v["scale_down"]),
    }
}

fn calc(v: &Value) -> CalcConfig {
    CalcConfig {
        cpu_initialization_period: secs(&v["cpu_initialization_period_s"]),
        initial_readiness_delay: secs(&v["initial_readiness_delay_s"]),
        pod_level_resources: true,
    }
}

fn selector(v: &Value) -> Option<LabelSelector> {
    (!v.is_null()).then(|| serde_json::from_value(v.clone()).unwrap_or_default())
}

fn object_ref(v: &Value) -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: v["apiVersion"].as_str().map(str::to_string),
        kind: s(&v["kind"]),
        name: s(&v["name"]),
    }
}

/// Vector `Rules` (snake_case, numeric tolerance) → autoscaling/v2 JSON.
fn rules_json(v: &Value) -> Value {
    let mut out = Map::new();
    if let Some(w) = v.get("stabilization_window_seconds") {
        out.insert("stabilizationWindowSeconds".into(), w.clone());
    }
    if let Some(p) = v.get("select_policy") {
        out.insert("selectPolicy".into(), p.clone());
    }
    if let Some(ps) = v.get("policies") {
        let ps: Vec<Value> = arr(ps)
            .iter()
            .map(|p| json!({"type": p["type"], "value": p["value"], "periodSeconds": p["period_seconds"]}))
            .collect();
        out.insert("policies".into(), Value::Array(ps));
    }
    if let Some(tol) = v.get("tolerance") {
        out.insert("tolerance".into(), Value::String(format!("{}", f(tol))));
    }
    Value::Object(out)
}

fn rules(v: &Value) -> Option<HPAScalingRules> {
    (!v.is_null()).then(|| serde_json::from_value(rules_json(v)).unwrap_or_default())
}

fn scale_events(v: &Value) -> Vec<ScaleEvent> {
    arr(v)
        .iter()
        .map(|e| ScaleEvent {
            replica_change: i32_(&e["change"]),
            timestamp: t(&e["time_s"]),
            outdated: e["outdated"].as_bool().unwrap_or(false),
        })
        .collect()
}

fn recommendations(v: &Value) -> Vec<Recommendation> {
    arr(v)
        .iter()
        .map(|r| Recommendation {
            replicas: i32_(&r["replicas"]),
            timestamp: t(&r["time_s"]),
        })
        .collect()
}

/// Vector metric specs use `value_milli` / `averageValue_milli`: make them Quantities.
fn quantities(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "value_milli" => {
                        out.insert("value".into(), json!(format!("{}m", i(v))));
                    }
                    "averageValue_milli" => {
                        out.insert("averageValue".into(), json!(format!("{}m", i(v))));
                    }
                    _ => {
                        out.insert(k.clone(), quantities(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(quantities).collect()),
        other => other.clone(),
    }
}

fn hpa_object(v: &Value) -> Result<HorizontalPodAutoscaler, String> {
    let behavior = if v["behavior"].is_null() {
        Value::Null
    } else {
        let mut b = Map::new();
        if let Some(up) = v["behavior"].get("scaleUp") {
            b.insert("scaleUp".into(), rules_json(up));
        }
        if let Some(down) = v["behavior"].get("scaleDown") {
            b.insert("scaleDown".into(), rules_json(down));
        }
        Value::Object(b)
    };
    let conditions: Vec<Value> = arr(&v["status"]["conditions"])
        .iter()
        .map(|c| json!({"type": c["type"], "status": c["status"], "reason": c["reason"]}))
        .collect();
    let obj = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "test-hpa", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "test-deployment"},
            "minReplicas": v["min_replicas"],
            "maxReplicas": v["max_replicas"],
            "metrics": quantities(&v["metrics"]),
            "behavior": behavior,
        },
        "status": {
            "currentReplicas": v["status"]["current_replicas"],
            "desiredReplicas": v["status"]["desired_replicas"],
            "conditions": conditions,
        },
    });
    serde_json::from_value(obj).map_err(|e| format!("cannot build HPA object: {e}"))
}

// ---------------------------------------------------------------- metrics source

struct FakeMetrics {
    errors: Map<String, Value>,
    resource: Vec<PodResourceMetric>,
    pods: Vec<PodMetricValue>,
    object: Option<i64>,
    external: Vec<i64>,
}

impl FakeMetrics {
    fn err(&self, key: &str) -> Option<String> {
        self.errors.get(key).map(s)
    }
}

impl MetricsSource for FakeMetrics {
    fn resource_metrics(&self, _resource: &str) -> Result<Vec<PodResourceMetric>, String> {
        self.err("resource").map_or(Ok(self.resource.clone()), Err)
    }
    fn pods_metric(
        &self,
        _metric: &str,
        _selector: Option<&LabelSelector>,
    ) -> Result<Vec<PodMetricValue>, String> {
        self.err("pods").map_or(Ok(self.pods.clone()), Err)
    }
    fn object_metric(
        &self,
        _metric: &str,
        _object: &CrossVersionObjectReference,
        _selector: Option<&LabelSelector>,
    ) -> Result<i64, String> {
        if let Some(e) = self.err("object") {
            return Err(e);
        }
        self.object
            .ok_or_else(|| "no object metric value".to_string())
    }
    fn external_metric(
        &self,
        _metric: &str,
        _selector: Option<&LabelSelector>,
    ) -> Result<Vec<i64>, String> {
        self.err("external").map_or(Ok(self.external.clone()), Err)
    }
}

// ---------------------------------------------------------------- per kind

fn run_reconcile(inp: &Value, exp: &Value) -> Result<(), String> {
    let cc = &inp["controller_config"];
    let config = ControllerConfig {
        // sync_period_s only says when the caller reconciles; the loops
        // of the cluster core schedule that (`local.controller.sync_period`).
        tolerance: f(&cc["tolerance"]),
        cpu_initialization_period: secs(&cc["cpu_initialization_period_s"]),
        initial_readiness_delay: secs(&cc["initial_readiness_delay_s"]),
        downscale_stabilization_window: secs(&cc["downscale_stabilization_window_s"]),
        scale_up_limit_factor: f(&cc["legacy_scale_up_limit_factor"]),
        scale_up_limit_minimum: f(&cc["legacy_scale_up_limit_minimum"]),
        feature_gates: FeatureGates {
            configurable_tolerance: cc["feature_gates"]["HPAConfigurableTolerance"]
                .as_bool()
                .unwrap_or(true),
            scale_to_zero: cc["feature_gates"]["HPAScaleToZero"]
                .as_bool()
                .unwrap_or(false),
            pod_level_resources: true,
        },
    };
    let hpa_obj = hpa_object(&inp["hpa"])?;
    let errors = inp["metric_errors"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let metrics = FakeMetrics {
        errors: errors.clone(),
        resource: resource_metrics(&inp["resource_metrics"]),
        pods: pod_values(&inp["pod_metric_values"]),
        object: inp["object_metric_value_milli"].as_i64(),
        external: arr(&inp["external_metric_values_milli"])
            .iter()
            .map(i)
            .collect(),
    };
    let scale = match errors.get("scale_get") {
        Some(e) => Err(s(e)),
        None => Ok(ScaleInfo {
            spec_replicas: i32_(&inp["scale"]["spec_replicas"]),
            status_replicas: i32_(&inp["scale"]["status_replicas"]),
            selector: s(&inp["scale"]["selector"]),
        }),
    };
    let mut controller = HpaController::new(config);
    if !inp["recommendations_history"].is_null() {
        controller.recommendations = Some(recommendations(&inp["recommendations_history"]));
    }
    let update_err = errors.get("scale_update").map(s);
    let mut writes = Vec::new();
    let mut update = |n: i32| {
        writes.push(n);
        update_err.clone().map_or(Ok(()), Err)
    };
    let rec = controller.reconcile(
        &hpa_obj,
        scale,
        &pods(&inp["pods"]),
        &metrics,
        0,
        &mut update,
    );

    let mut problems = Vec::new();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(e);
        }
    };
    note(check(
        "desired_replicas",
        rec.desired_replicas,
        i32_(&exp["desired_replicas"]),
    ));
    note(check(
        "scale_updated",
        rec.rescaled,
        exp["scale_updated"].as_bool().unwrap_or(false),
    ));
    note(check(
        "status.desiredReplicas",
        rec.status.desired_replicas,
        i32_(&exp["status_desired_replicas"]),
    ));
    let got: Vec<(String, String, String)> = rec
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect();
    let want: Vec<(String, String, String)> = arr(&exp["conditions"])
        .iter()
        .map(|c| (s(&c["type"]), s(&c["status"]), s(&c["reason"])))
        .collect();
    note(check("conditions", got, want));
    if let Some(util) = exp.get("status_cpu_utilization_percent") {
        let got = rec.status.current_metrics.iter().flatten().find_map(|m| {
            m.resource
                .as_ref()
                .filter(|r| r.name == "cpu")
                .and_then(|r| r.current.average_utilization)
        });
        note(check("status cpu utilization", got, Some(i32_(util))));
    }
    if let Some(ev) = exp.get("event") {
        let found = rec
            .events
            .iter()
            .any(|e| e.reason == s(&ev["reason"]) && e.message == s(&ev["message"]));
        if !found {
            problems.push(format!("event {ev} not among {:?}", rec.events));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (events: {:?})",
            problems.join("; "),
            rec.events
        ))
    }
}

fn run_vector(kind: &str, inp: &Value, exp: &Value) -> Result<(), String> {
    match kind {
        "replica_calc.resource_utilization" => {
            let r = hpa::get_resource_replicas(
                i32_(&inp["current_replicas"]),
                i32_(&inp["target_utilization_percent"]),
                &s(&inp["resource"]),
                &s(&inp["container"]),
                tolerances(&inp["tolerance"]),
                &calc(&inp["config"]),
                &pods(&inp["pods"]),
                Ok(resource_metrics(&inp["resource_metrics"])),
                0,
            );
            match (r, exp.get("error_contains")) {
                (Err(e), Some(want)) if e.contains(&s(want)) => Ok(()),
                (Err(e), _) => Err(format!("unexpected error: {e}")),
                (Ok(r), Some(want)) => Err(format!("expected error {want}, got {r:?}")),
                (Ok(r), None) => {
                    check("replicas", r.replicas, i32_(&exp["replicas"]))?;
                    check(
                        "utilization",
                        r.utilization,
                        i32_(&exp["utilization_percent"]),
                    )?;
                    check(
                        "raw average",
                        r.raw_average,
                        i(&exp["raw_average_value_milli"]),
                    )
                }
            }
        }
        "replica_calc.pods_average_value" => {
            let (r, u) = hpa::get_metric_replicas(
                i32_(&inp["current_replicas"]),
                i(&inp["target_average_value_milli"]),
                "qps",
                tolerances(&inp["tolerance"]),
                &calc(&inp["config"]),
                &pods(&inp["pods"]),
                Ok(pod_values(&inp["pod_metric_values"])),
                0,
            )?;
            check("replicas", r, i32_(&exp["replicas"]))?;
            check("usage", u, i(&exp["usage_average_milli"]))
        }
        "replica_calc.object_value" => {
            let (r, u) = hpa::get_object_metric_replicas(
                i32_(&inp["spec_replicas"]),
                i(&inp["target_value_milli"]),
                "qps",
                tolerances(&inp["tolerance"]),
                NAMESPACE,
                &object_ref(&inp["described_object"]),
                &pods(&inp["pods"]),
                Ok(i(&inp["object_metric_value_milli"])),
            )?;
            check("replicas", r, i32_(&exp["replicas"]))?;
            check("usage", u, i(&exp["usage_milli"]))
        }
        "replica_calc.object_average_value" => {
            let (r, u) = hpa::get_object_per_pod_metric_replicas(
                i32_(&inp["status_replicas"]),
                i(&inp["target_average_value_milli"]),
                "qps",
                tolerances(&inp["tolerance"]),
                NAMESPACE,
                &object_ref(&json!({"kind": "Deployment", "name": "some-deployment"})),
                Ok(i(&inp["object_metric_value_milli"])),
            )?;
            check("replicas", r, i32_(&exp["replicas"]))?;
            check("usage", u, i(&exp["usage_average_milli"]))
        }
        "replica_calc.external_value" => {
            let sel = selector(&inp["metric_selector"]);
            let (r, u) = hpa::get_external_metric_replicas(
                i32_(&inp["spec_replicas"]),
                i(&inp["target_value_milli"]),
                "qps",
                tolerances(&inp["tolerance"]),
                NAMESPACE,
                sel.as_ref(),
                &pods(&inp["pods"]),
                Ok(arr(&inp["external_metric_values_milli"])
                    .iter()
                    .map(i)
                    .collect()),
            )?;
            check("replicas", r, i32_(&exp["replicas"]))?;
            check("usage", u, i(&exp["usage_milli"]))
        }
        "replica_calc.external_average_value" => {
            let sel = selector(&inp["metric_selector"]);
            let (r, u) = hpa::get_external_per_pod_metric_replicas(
                i32_(&inp["status_replicas"]),
                i(&inp["target_average_value_milli"]),
                "qps",
                tolerances(&inp["tolerance"]),
                NAMESPACE,
                sel.as_ref(),
                Ok(arr(&inp["external_metric_values_milli"])
                    .iter()
                    .map(i)
                    .collect()),
            )?;
            check("replicas", r, i32_(&exp["replicas"]))?;
            check("usage", u, i(&exp["usage_average_milli"]))
        }
        "group_pods" => {
            let metrics: PodMetricsInfo = arr(&inp["pod_metrics"])
                .iter()
                .map(|m| {
                    (
                        s(&m["pod"]),
                        PodMetric {
                            value: i(&m["value_milli"]),
                            timestamp: t(&m["timestamp_s"]),
                            window: secs(&m["window_s"]),
                        },
                    )
                })
                .collect();
            let g = hpa::group_pods(
                &pods(&inp["pods"]),
                &metrics,
                &s(&inp["resource"]),
                &calc(&inp["config"]),
                0,
            );
            let names = |v: &Value| arr(v).iter().map(s).collect::<Vec<_>>();
            check(
                "ready",
                g.ready_pod_count as i64,
                i(&exp["ready_pod_count"]),
            )?;
            check(
                "unready",
                g.unready.into_iter().collect(),
                names(&exp["unready"]),
            )?;
            check(
                "missing",
                g.missing.into_iter().collect(),
                names(&exp["missing"]),
            )?;
            check(
                "ignored",
                g.ignored.into_iter().collect(),
                names(&exp["ignored"]),
            )
        }
        "behavior.rate_limit" => {
            let up = ScalingRules::scale_up_from(rules(&inp["scale_up_rules"]).as_ref());
            let down = ScalingRules::scale_down_from(rules(&inp["scale_down_rules"]).as_ref(), 300);
            let l = hpa::convert_desired_replicas_with_behavior_rate(
                i32_(&inp["current_replicas"]),
                i32_(&inp["desired_replicas"]),
                i32_(&inp["min_replicas"]),
                i32_(&inp["max_replicas"]),
                &up,
                &down,
                &scale_events(&inp["scale_up_events"]),
                &scale_events(&inp["scale_down_events"]),
                0,
            );
            check("replicas", l.replicas, i32_(&exp["replicas"]))?;
            check("reason", l.reason.to_string(), s(&exp["reason"]))
        }
        "behavior.limit_function" => {
            let r = rules(&inp["rules"]);
            let current = i32_(&inp["current_replicas"]);
            let up_events = scale_events(&inp["scale_up_events"]);
            let down_events = scale_events(&inp["scale_down_events"]);
            let limit = if s(&inp["function"]).contains("ScaleUp") {
                let rules = ScalingRules::scale_up_from(r.as_ref());
                hpa::calculate_scale_up_limit_with_scaling_rules(
                    current,
                    &up_events,
                    &down_events,
                    &rules,
                    0,
                )
            } else {
                let rules = ScalingRules::scale_down_from(r.as_ref(), 300);
                hpa::calculate_scale_down_limit_with_behaviors(
                    current,
                    &up_events,
                    &down_events,
                    &rules,
                    0,
                )
            };
            check("limit", limit, i32_(&exp["limit"]))
        }
        "behavior.stabilization" => {
            let mut recs = recommendations(&inp["recommendations"]);
            let st = hpa::stabilize_recommendation_with_behaviors(
                &mut recs,
                i32_(&inp["current_replicas"]),
                i32_(&inp["desired_replicas"]),
                i32_(&inp["scale_up_stabilization_window_s"]),
                i32_(&inp["scale_down_stabilization_window_s"]),
                0,
            );
            check("replicas", st.replicas, i32_(&exp["replicas"]))?;
            if !exp["stored_recommendation_values"].is_null() {
                let got: Vec<i32> = recs.iter().map(|r| r.replicas).collect();
                let want: Vec<i32> = arr(&exp["stored_recommendation_values"])
                    .iter()
                    .map(i32_)
                    .collect();
                check("stored recommendations", got, want)?;
            }
            Ok(())
        }
        "behavior.store_scale_event" => {
            let mut events = scale_events(&inp["previous_events"]);
            let before = hpa::get_replicas_change_per_period(60, &events, 0);
            check(
                "changed in last 60s",
                before,
                i32_(&exp["replicas_changed_in_last_60s_before_store"]),
            )?;
            let r = rules(&inp["behavior_rules_for_direction"])
                .map(|r| ScalingRules::scale_up_from(Some(&r)));
            hpa::store_scale_event(&mut events, r.as_ref(), i32_(&inp["replica_change"]), 0);
            let got: Vec<(i32, bool)> = events
                .iter()
                .map(|e| (e.replica_change, e.outdated))
                .collect();
            let want: Vec<(i32, bool)> = arr(&exp["events_after_store"])
                .iter()
                .map(|e| (i32_(&e["change"]), e["outdated"].as_bool().unwrap_or(false)))
                .collect();
            check("events after store", got, want)
        }
        "legacy.stabilization" => {
            let mut recs = recommendations(&inp["recommendations"]);
            let r = hpa::stabilize_recommendation(
                &mut recs,
                i32_(&inp["desired_replicas"]),
                secs(&inp["downscale_stabilization_window_s"]),
                0,
            );
            check("replicas", r, i32_(&exp["replicas"]))?;
            check(
                "stored count",
                recs.len() as i64,
                i(&exp["stored_recommendation_count"]),
            )
        }
        "legacy.rules" => {
            let l = hpa::convert_desired_replicas_with_rules(
                i32_(&inp["current_replicas"]),
                i32_(&inp["desired_replicas"]),
                i32_(&inp["min_replicas"]),
                i32_(&inp["max_replicas"]),
                f(&inp["scale_up_limit_factor"]),
                f(&inp["scale_up_limit_minimum"]),
            );
            check("replicas", l.replicas, i32_(&exp["replicas"]))?;
            check("reason", l.reason.to_string(), s(&exp["reason"]))
        }
        "controller.reconcile" => run_reconcile(inp, exp),
        other => Err(format!("unknown vector kind {other}")),
    }
}

#[test]
fn hpa_conformance_vectors() {
    let _g = crate::common::shared();
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    let all: Vec<Value> = arr(&doc["vectors"])
        .into_iter()
        .chain(arr(&doc["derived_vectors"]))
        .collect();
    assert!(!all.is_empty(), "no vectors in {}", path.display());

    let mut failures = Vec::new();
    for v in &all {
        let id = s(&v["id"]);
        let kind = s(&v["kind"]);
        let outcome = std::panic::catch_unwind(|| run_vector(&kind, &v["inputs"], &v["expected"]))
            .unwrap_or_else(|_| Err("panicked".to_string()));
        if let Err(e) = outcome {
            failures.push(format!("{id} [{kind}]: {e}"));
        }
    }
    let passed = all.len() - failures.len();
    println!("hpa vectors: {passed} passed, {} failed", failures.len());
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} HPA vectors failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
