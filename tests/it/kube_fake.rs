//! The kube backend against an in-process fake of the Kubernetes API: a
//! small hyper server speaking the API's JSON (version, namespaces,
//! server-side apply, list and watch, Events, a Deployment's scale
//! subresource, a metrics API that is absent unless a test serves
//! PodMetrics). It also answers the load at `/get`, standing in for the
//! gateway. A scripted "controller" rescales the Deployment and emits
//! SuccessfulRescale events, and the HPA's first watch fails with 410 Gone,
//! which the harness must survive by relisting.
// The machine reservation (common::shared) is held for a whole test on
// purpose, awaits included; no task in a test's runtime ever takes it.
#![allow(clippy::await_holding_lock)]
use crate::common;
use common::show;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use autoscale_harness::recorder::{load_run, RunData};

type Body = BoxBody<Bytes, Infallible>;

#[derive(Default)]
struct State {
    /// `METHOD path?query` of every request, in order.
    log: Vec<String>,
    /// Collection path → name → object.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    rv: u64,
    /// Collection path, label selector (`k=v,...`, empty for all), stream.
    watchers: Vec<(String, String, mpsc::UnboundedSender<Bytes>)>,
    lists: HashMap<String, usize>,
    /// The HPA's first watch answers 410 Gone.
    hpa_gone_sent: bool,
    /// Pods never start: their image cannot be pulled.
    pull_fails: bool,
    /// Answer every request with 401.
    deny: bool,
    /// When the Deployment was last applied.
    applied_at: Option<jiff::Timestamp>,
    /// The namespace the harness created, as sent.
    created_namespace: Value,
    /// Heartbeat patches of the run's namespace.
    heartbeats: usize,
    /// A Prometheus answers through the service proxy.
    prometheus: bool,
    /// The queries it was asked.
    prometheus_queries: Vec<String>,
    /// `METHOD path?query` and body of every PATCH and POST, in order.
    bodies: Vec<(String, Value)>,
    /// The cluster has no CronHorizontalPodAutoscaler CRD (no
    /// kubernetes-cronhpa-controller).
    no_cron_crd: bool,
    /// The metrics API (metrics-server) serves PodMetrics: every pod uses
    /// this much CPU (a quantity). Absent (404) when `None`.
    pod_cpu: Option<String>,
    /// How many lists of PodMetrics the metrics API answers before it
    /// fails with 503 (an outage mid-run); unlimited when `None`.
    pod_metrics_lists: Option<usize>,
    /// After those lists the metrics API stalls (accepts the request and
    /// never answers) instead of failing.
    pod_metrics_stall: bool,
    /// The containers of the pods the Deployment controller makes: the
    /// applied Deployment's template's.
    containers: Value,
    /// Creating a namespace takes this long (it exists when answered).
    namespace_delay: Duration,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn full(status: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    full(
        StatusCode::from_u16(code).unwrap(),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl State {
    /// Stores an object and tells the watchers of its collection.
    fn put(&mut self, coll: &str, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.rv));
        }
        let known = self
            .objects
            .entry(coll.to_string())
            .or_default()
            .insert(name, obj.clone())
            .is_some();
        let line = format!(
            "{}\n",
            json!({"type": if known { "MODIFIED" } else { "ADDED" }, "object": obj})
        );
        self.watchers.retain(|(c, sel, tx)| {
            c != coll || !selects(sel, &obj) || tx.send(Bytes::from(line.clone())).is_ok()
        });
        obj
    }

    fn pods(&mut self, ns: &str, n: usize) {
        let coll = format!("/api/v1/namespaces/{ns}/pods");
        let existing = self.objects.get(&coll).map_or(0, |m| m.len());
        for i in existing..n {
            let status = if self.pull_fails {
                json!({"phase": "Pending", "containerStatuses": [{"name": "httpbin", "image": "kennethreitz/httpbin",
                    "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff",
                      "message": "Back-off pulling image \"kennethreitz/httpbin\""}}}]})
            } else {
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
            };
            let containers = if self.containers.is_array() {
                self.containers.clone()
            } else {
                json!([{"name": "httpbin", "image": "kennethreitz/httpbin"}])
            };
            self.put(
                &coll,
                json!({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": format!("httpbin-deploy-abc-{i}"), "namespace": ns,
                               "labels": {"app": "httpbin"}},
                  "spec": {"containers": containers},
                  "status": status}),
            );
        }
    }

    /// What the cluster's controllers do after an apply.
    fn react(&mut self, coll: &str, ns: &str, obj: &mut Value) {
        if coll.ends_with("/deployments") {
            let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let ok = if self.pull_fails { "False" } else { "True" };
            obj["status"] = json!({"replicas": n, "readyReplicas": n,
                "conditions": [{"type": "Available", "status": ok}]});
            self.containers = obj["spec"]["template"]["spec"]["containers"].clone();
            self.pods(ns, n as usize);
        }
        if coll.ends_with("/cronhorizontalpodautoscalers") && obj["status"].is_null() {
            // kubernetes-cronhpa-controller submits each job.
            let conds: Vec<Value> = obj["spec"]["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|j| json!({"name": j["name"], "jobId": format!("id-{}", j["name"].as_str().unwrap_or_default()),
                    "schedule": j["schedule"], "targetSize": j["targetSize"], "state": "Submitted",
                    "lastProbeTime": now(), "message": ""}))
                .collect();
            obj["status"] = json!({"conditions": conds});
        }
        if coll.ends_with("/horizontalpodautoscalers") {
            obj["status"] = json!({"currentReplicas": 2, "desiredReplicas": 2,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 12, "averageValue": "12m"}}}],
                "conditions": [
                  {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                  {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]});
        }
    }

    /// The scripted Deployment controller: the new spec and its pods.
    fn scale_deployment(&mut self, to: i64) {
        let Some(ns) = self.namespace() else { return };
        let dcoll = format!("/apis/apps/v1/namespaces/{ns}/deployments");
        if let Some(mut d) = self.first(&dcoll) {
            d["spec"]["replicas"] = json!(to);
            d["status"]["replicas"] = json!(to);
            self.put(&dcoll, d);
        }
        self.pods(&ns, to as usize);
    }

    /// The scripted HPA controller's status after a rescale at `at`, as the
    /// real one writes it: currentReplicas is the spec before the rescale.
    fn hpa_status(&mut self, from: i64, to: i64, at: &str) {
        let Some(ns) = self.namespace() else { return };
        let hcoll = format!("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers");
        if let Some(mut h) = self.first(&hcoll) {
            h["status"]["currentReplicas"] = json!(from);
            h["status"]["desiredReplicas"] = json!(to);
            h["status"]["lastScaleTime"] = json!(at);
            self.put(&hcoll, h);
        }
    }

    /// The only object of a collection (the run has one of each).
    fn first(&self, coll: &str) -> Option<Value> {
        self.objects.get(coll)?.values().next().cloned()
    }

    /// The HPA controller's SuccessfulRescale event, stamped `at`.
    fn rescale_event(&mut self, to: i64, reason: &str, at: &str) {
        let Some(ns) = self.namespace() else { return };
        let hcoll = format!("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers");
        let hpa = self
            .first(&hcoll)
            .and_then(|h| h["metadata"]["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.rv += 1;
        let ev = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{hpa}.{}", self.rv), "namespace": ns},
            "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": hpa, "namespace": ns},
            "reason": "SuccessfulRescale", "type": "Normal",
            "message": format!("New size: {to}; reason: {reason}"),
            "source": {"component": "horizontal-pod-autoscaler"},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1});
        self.put(&format!("/api/v1/namespaces/{ns}/events"), ev);
    }

    fn namespace(&self) -> Option<String> {
        self.objects
            .get("/api/v1/namespaces")
            .and_then(|m| m.keys().next().cloned())
    }

    /// What Envoy Gateway creates in its own namespace before any run: the
    /// paper Gateway's proxy Deployment `envoy-paper` (2 ready pods) under
    /// HPA `envoy-paper` (from EnvoyProxy `paper`'s envoyHpa), and beside
    /// it the other Gateway's proxy, with an HPA of its own here so that its
    /// Events would show if the harness took them.
    fn gateway_tier(&mut self) {
        for (name, gateway, replicas) in [("envoy-paper", "paper", 2), (OTHER, "gateway", 1)] {
            let labels = proxy_labels(gateway);
            self.put(
                &format!("/apis/apps/v1/namespaces/{EG}/deployments"),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": EG, "labels": labels},
                  "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                      {"name": "envoy", "image": "envoyproxy/envoy:distroless-v1.35.0",
                       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                      {"name": "shutdown-manager", "image": "envoyproxy/gateway:v1.5.0",
                       "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}]}}},
                  "status": {"replicas": replicas, "readyReplicas": replicas,
                    "conditions": [{"type": "Available", "status": "True"}]}}),
            );
            self.put(
                &format!("/apis/autoscaling/v2/namespaces/{EG}/horizontalpodautoscalers"),
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": name, "namespace": EG, "labels": labels},
                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": replicas, "maxReplicas": 3, "metrics": [
                      {"type": "Pods", "pods": {"metric": {"name": "envoy_downstream_rq_per_second"},
                        "target": {"type": "AverageValue", "averageValue": "20"}}},
                      {"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]},
                  "status": {"currentReplicas": replicas, "desiredReplicas": replicas,
                    "currentMetrics": [{"type": "Pods", "pods": {"metric": {"name": "envoy_downstream_rq_per_second"},
                      "current": {"averageValue": "0"}}}],
                    "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}}),
            );
            self.proxy_pods(name, gateway, replicas);
        }
    }

    /// Proxy pods `<deployment>-7d4f9-<i>` up to `n` (none removed: the
    /// scale-in leaves the extra pod, which is enough for the harness).
    fn proxy_pods(&mut self, deployment: &str, gateway: &str, n: i64) {
        let coll = format!("/api/v1/namespaces/{EG}/pods");
        for i in 0..n {
            let name = format!("{deployment}-7d4f9-{i}");
            if self
                .objects
                .get(&coll)
                .is_some_and(|m| m.contains_key(&name))
            {
                continue;
            }
            self.put(
                &coll,
                json!({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "namespace": EG, "labels": proxy_labels(gateway)},
                  "spec": {"containers": [{"name": "envoy", "image": "envoyproxy/envoy:distroless-v1.35.0"}]},
                  "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
            );
        }
    }

    /// Envoy Gateway's HPA controller at work on `envoy-paper`: the
    /// Deployment's new size and pods, the HPA's status, its Event.
    fn rescale_gateway(&mut self, from: i64, to: i64, at: &str) {
        let dcoll = format!("/apis/apps/v1/namespaces/{EG}/deployments");
        if let Some(mut d) = self
            .objects
            .get(&dcoll)
            .and_then(|m| m.get("envoy-paper"))
            .cloned()
        {
            d["spec"]["replicas"] = json!(to);
            d["status"]["replicas"] = json!(to);
            d["status"]["readyReplicas"] = json!(to);
            self.put(&dcoll, d);
        }
        self.proxy_pods("envoy-paper", "paper", to);
        let hcoll = format!("/apis/autoscaling/v2/namespaces/{EG}/horizontalpodautoscalers");
        if let Some(mut h) = self
            .objects
            .get(&hcoll)
            .and_then(|m| m.get("envoy-paper"))
            .cloned()
        {
            h["status"]["currentReplicas"] = json!(from);
            h["status"]["desiredReplicas"] = json!(to);
            h["status"]["lastScaleTime"] = json!(at);
            self.put(&hcoll, h);
        }
        self.event_in(EG, "envoy-paper", to, at);
    }

    /// A SuccessfulRescale Event of HPA `hpa` in `ns`.
    fn event_in(&mut self, ns: &str, hpa: &str, to: i64, at: &str) {
        self.rv += 1;
        let ev = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{hpa}.{}", self.rv), "namespace": ns},
            "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": hpa, "namespace": ns},
            "reason": "SuccessfulRescale", "type": "Normal",
            "message": format!("New size: {to}; reason: pods metric envoy_downstream_rq_per_second above target"),
            "source": {"component": "horizontal-pod-autoscaler"},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1});
        self.put(&format!("/api/v1/namespaces/{ns}/events"), ev);
    }
}

/// Envoy Gateway's namespace, where it creates the proxies and their HPAs.
const EG: &str = "envoy-gateway-system";
/// The other Gateway's proxy Deployment (hashed name, as Envoy Gateway
/// names it when EnvoyProxy sets none).
const OTHER: &str = "envoy-default-gateway-3d5f1e0a";

/// The labels Envoy Gateway v1.5.0 puts on a Gateway's proxy Deployment,
/// its selector and its pods (internal/infrastructure/kubernetes/proxy/
/// testdata/deployments/default.yaml).
fn proxy_labels(gateway: &str) -> Value {
    json!({"app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
           "app.kubernetes.io/name": "envoy", "gateway.envoyproxy.io/owning-gateway-name": gateway,
           "gateway.envoyproxy.io/owning-gateway-namespace": "default"})
}

/// Whether `obj`'s labels satisfy an equality selector `k=v,...`.
fn selects(sel: &str, obj: &Value) -> bool {
    sel.split(',').filter(|kv| !kv.is_empty()).all(|kv| {
        kv.split_once('=')
            .is_some_and(|(k, v)| obj["metadata"]["labels"][k].as_str() == Some(v))
    })
}

/// `into` with `from` merged in, maps key by key (what server-side apply of
/// a partial object does to the fields it names; lists are replaced).
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// The CronHorizontalPodAutoscalers of a namespace.
fn cron_coll(ns: &str) -> String {
    format!(
        "/apis/autoscaling.alibabacloud.com/v1beta1/namespaces/{ns}/cronhorizontalpodautoscalers"
    )
}

/// The resource collections the fake serves; a path one segment below one
/// of them names an object.
const COLLECTIONS: [&str; 8] = [
    "deployments",
    "horizontalpodautoscalers",
    "pods",
    "events",
    "namespaces",
    "services",
    "httproutes",
    "cronhorizontalpodautoscalers",
];

fn kind_of(coll: &str) -> &'static str {
    match coll.rsplit('/').next().unwrap_or_default() {
        "deployments" => "DeploymentList",
        "horizontalpodautoscalers" => "HorizontalPodAutoscalerList",
        "pods" => "PodList",
        "events" => "EventList",
        "namespaces" => "NamespaceList",
        "services" => "ServiceList",
        _ => "List",
    }
}

fn query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = v
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/");
            (k.to_string(), v)
        })
        .collect()
}

async fn handle(st: Shared, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = req.uri().query().unwrap_or_default().to_string();
    lock(&st).log.push(format!("{method} {path}?{q}"));
    if lock(&st).deny && path != "/get" {
        return Ok(status(401, "Unauthorized", "Unauthorized"));
    }
    if path == "/get" {
        return Ok(full(StatusCode::OK, &json!({"url": "/get"})));
    }
    if path == "/version" {
        return Ok(full(
            StatusCode::OK,
            &json!({"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "x",
                    "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22",
                    "compiler": "gc", "platform": "linux/amd64"}),
        ));
    }
    if path.contains("/services/prometheus-server:80/proxy/") {
        let mut s = lock(&st);
        if !s.prometheus {
            return Ok(status(
                404,
                "NotFound",
                "services \"prometheus-server\" not found",
            ));
        }
        s.prometheus_queries.push(q.clone());
        // The pods of the namespace the query names (`namespace="NS"`).
        let promql = url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let ns = promql
            .split("namespace=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        let pods = format!("/api/v1/namespaces/{ns}/pods");
        let result: Vec<Value> = s
            .objects
            .get(&pods)
            .into_iter()
            .flat_map(|m| m.keys())
            .map(|p| json!({"metric": {"pod": p}, "value": [1.0, "2.5"]}))
            .collect();
        return Ok(full(
            StatusCode::OK,
            &json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
        ));
    }
    if let Some(rest) = path.strip_prefix("/apis/metrics.k8s.io/") {
        let stalled = {
            let s = lock(&st);
            s.pod_metrics_stall && s.pod_metrics_lists == Some(0)
        };
        if stalled {
            return std::future::pending().await;
        }
        let mut s = lock(&st);
        let Some(cpu) = s.pod_cpu.clone() else {
            return Ok(status(
                404,
                "NotFound",
                "the server could not find\nthe requested resource",
            ));
        };
        if let Some(left) = s.pod_metrics_lists.as_mut() {
            if *left == 0 {
                return Ok(status(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                ));
            }
            *left -= 1;
        }
        // `v1beta1/namespaces/NS/pods`: each pod's usage, as metrics-server
        // reports it.
        let ns = rest.split('/').nth(2).unwrap_or_default();
        let items: Vec<Value> = s
            .objects
            .get(&format!("/api/v1/namespaces/{ns}/pods"))
            .into_iter()
            .flat_map(|m| m.values())
            .map(|p| {
                let containers: Vec<Value> = p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| json!({"name": c["name"], "usage": {"cpu": cpu, "memory": "20Mi"}}))
                    .collect();
                json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                       "metadata": {"name": p["metadata"]["name"], "namespace": ns},
                       "timestamp": now(), "window": "15s", "containers": containers})
            })
            .collect();
        return Ok(full(
            StatusCode::OK,
            &json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetricsList",
                    "metadata": {}, "items": items}),
        ));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let params = query(&q);
    if method == "PATCH" || method == "POST" {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        lock(&st).bodies.push((format!("{method} {path}?{q}"), v));
    }
    // No kubernetes-cronhpa-controller: its API group is not served.
    if path.contains("/cronhorizontalpodautoscalers") && lock(&st).no_cron_crd {
        return Ok(status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    // A Deployment's scale subresource (autoscaling/v1 Scale).
    if let Some(dpath) = path.strip_suffix("/scale") {
        let (coll, name) = dpath.rsplit_once('/').unwrap();
        let mut s = lock(&st);
        let Some(d) = s.objects.get(coll).and_then(|m| m.get(name)).cloned() else {
            return Ok(status(
                404,
                "NotFound",
                &format!("deployments \"{name}\" not found"),
            ));
        };
        let mut n = d["spec"]["replicas"].as_i64().unwrap_or(1);
        if method == "PATCH" {
            let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
            n = patch["spec"]["replicas"].as_i64().unwrap_or(n);
            s.scale_deployment(n);
        }
        return Ok(full(
            StatusCode::OK,
            &json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": d["metadata"]["namespace"]},
                "spec": {"replicas": n}, "status": {"replicas": n, "selector": "app=httpbin"}}),
        ));
    }
    // events.k8s.io/v1: stored, and seen through core/v1 as well, as the
    // API server serves one Event through both.
    if let Some(ns) = path
        .strip_prefix("/apis/events.k8s.io/v1/namespaces/")
        .and_then(|r| r.strip_suffix("/events"))
        .filter(|_| method == "POST")
    {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let core = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": v["metadata"]["name"], "namespace": ns},
            "involvedObject": v["regarding"], "reason": v["reason"], "message": v["note"],
            "type": v["type"], "eventTime": v["eventTime"], "action": v["action"],
            "reportingComponent": v["reportingController"],
            "reportingInstance": v["reportingInstance"]});
        let mut s = lock(&st);
        let v = s.put(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"), v);
        s.put(&format!("/api/v1/namespaces/{ns}/events"), core);
        return Ok(full(StatusCode::CREATED, &v));
    }
    // Namespaces.
    if path == "/api/v1/namespaces" && method == "POST" {
        let delay = lock(&st).namespace_delay;
        tokio::time::sleep(delay).await;
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
        v["metadata"]["creationTimestamp"] = json!(now());
        lock(&st).created_namespace = v.clone();
        let v = lock(&st).put("/api/v1/namespaces", v);
        return Ok(full(StatusCode::CREATED, &v));
    }
    if let Some(ns) = path
        .strip_prefix("/api/v1/namespaces/")
        .filter(|p| !p.contains('/'))
    {
        if method == "DELETE" {
            let mut s = lock(&st);
            let v = s
                .objects
                .get_mut("/api/v1/namespaces")
                .and_then(|m| m.remove(ns));
            return Ok(match v {
                Some(v) => full(StatusCode::OK, &v),
                None => status(404, "NotFound", &format!("namespaces \"{ns}\" not found")),
            });
        }
    }
    // The run's heartbeat: a merge patch of the namespace's annotations.
    if let Some(ns) = path
        .strip_prefix("/api/v1/namespaces/")
        .filter(|p| method == "PATCH" && !p.contains('/'))
    {
        let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut s = lock(&st);
        let Some(mut v) = s
            .objects
            .get("/api/v1/namespaces")
            .and_then(|m| m.get(ns))
            .cloned()
        else {
            return Ok(status(404, "NotFound", "no such namespace"));
        };
        for (k, x) in patch["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            v["metadata"]["annotations"][k] = x.clone();
        }
        s.heartbeats += 1;
        let v = s.put("/api/v1/namespaces", v);
        return Ok(full(StatusCode::OK, &v));
    }
    // Server-side apply.
    if method == "PATCH" {
        let (coll, name) = path.rsplit_once('/').unwrap();
        let ns = coll
            .split('/')
            .skip_while(|s| *s != "namespaces")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["metadata"]["name"].as_str() != Some(name) {
            return Ok(status(
                400,
                "BadRequest",
                "name in body does not match the URL",
            ));
        }
        let mut s = lock(&st);
        if coll.ends_with("/deployments") {
            s.applied_at = Some(jiff::Timestamp::now());
        }
        // Fields of another manager's apply stay (server-side apply).
        if let Some(old) = s.objects.get(coll).and_then(|m| m.get(name)).cloned() {
            let mut merged = old;
            merge(&mut merged, &v);
            v = merged;
        }
        s.react(coll, &ns, &mut v);
        let v = s.put(coll, v);
        return Ok(full(StatusCode::OK, &v));
    }
    if method != "GET" {
        return Ok(status(405, "MethodNotAllowed", "not in the fake"));
    }
    // One object: `<collection>/<name>`.
    if let Some((parent, name)) = path.rsplit_once('/').filter(|(parent, name)| {
        !COLLECTIONS.contains(name)
            && COLLECTIONS.contains(&parent.rsplit('/').next().unwrap_or_default())
    }) {
        let s = lock(&st);
        return Ok(match s.objects.get(parent).and_then(|m| m.get(name)) {
            Some(v) => full(StatusCode::OK, v),
            None => status(404, "NotFound", &format!("\"{name}\" not found")),
        });
    }
    let coll = path.clone();
    let selector = params.get("labelSelector").cloned().unwrap_or_default();
    let field_name = params
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_string));
    if params.get("watch").map(String::as_str) == Some("true") {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        {
            let mut s = lock(&st);
            if coll.ends_with("/horizontalpodautoscalers") && !s.hpa_gone_sent {
                s.hpa_gone_sent = true;
                let line = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "metadata": {}, "status": "Failure", "message": "too old resource version: 1 (99)",
                    "reason": "Expired", "code": 410}});
                let _ = tx.send(Bytes::from(format!("{line}\n")));
                drop(tx);
            } else {
                s.watchers.push((coll.clone(), selector.clone(), tx));
            }
        }
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            let b = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap());
    }
    let mut s = lock(&st);
    *s.lists.entry(coll.clone()).or_default() += 1;
    let items: Vec<Value> = s
        .objects
        .get(&coll)
        .map(|m| {
            m.values()
                .filter(|o| {
                    field_name
                        .as_deref()
                        .is_none_or(|n| o["metadata"]["name"] == n)
                        && selects(&selector, o)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(full(
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": kind_of(&coll),
                "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
    ))
}

/// Starts the fake; returns its port.
async fn serve(st: Shared) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |r| handle(st.clone(), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    port
}

fn kubeconfig(dir: &Path, port: u16) -> String {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: u\n  user:\n    token: t0ken\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\n\
             current-context: fake\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

fn scenario(dir: &Path, port: u16, ready_timeout: &str, duration: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let p = dir.join("kube-fake.yaml");
    std::fs::write(
        &p,
        format!(
            "name: kube-fake\nduration: {duration}\nsample_interval: 500ms\nmanifests:\n  - {root}/manifests/httpbin.yaml\n  \
             - {root}/manifests/hpa-paper.yaml\n  - {root}/manifests/httproute.yaml\n\
             target:\n  route: httpbin\n  hpa: httpbin\n  replicas: 2\n  url: http://127.0.0.1:{port}\n\
             kube:\n  ready_timeout: {ready_timeout}\n\
             load:\n  stages:\n    - {{ rate: 5, for: 8s }}\n    - {{ rate: 0, for: 12s }}\n\
             expect:\n  - scale_out: {{ from: 2, to: 3 }}\n  - scale_in: {{ to: 2, within: 12s }}\n  \
             - max_replicas: 3\n  - error_ratio: {{ below: 0.01 }}\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

async fn harness(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(90), child)
        .await
        .expect("the harness finishes within 90 s")
        .expect("the harness runs")
}

/// `kube_run`, with each line of its output as it came.
async fn kube_run_lines(
    scen: &str,
    kc: &str,
    out: &Path,
) -> (std::process::ExitStatus, Vec<(std::time::Instant, String)>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .args(["experiment", scen, "--backend", "kube", "--kubeconfig", kc])
        .args(["--no-progress", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the harness runs");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let read = async {
        let mut lines = Vec::new();
        while let Ok(Some(l)) = stdout.next_line().await {
            lines.push((std::time::Instant::now(), l));
        }
        let status = child.wait().await.expect("the harness ends");
        (status, lines)
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("the harness finishes within 90 s")
}

/// `kube_run` as a child to signal, its output piped.
fn spawn_kube_run(scen: &str, kc: &str, out: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .args(["experiment", scen, "--backend", "kube", "--kubeconfig", kc])
        .args(["--no-progress", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the harness runs")
}

/// `experiment SCENARIO --backend kube --kubeconfig KC --out OUT`.
async fn kube_run(scen: &str, kc: &str, out: &Path) -> std::process::Output {
    harness(&[
        "experiment",
        scen,
        "--backend",
        "kube",
        "--kubeconfig",
        kc,
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_watches_records_and_cleans_up() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    lock(&st).prometheus = true;
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = scenario(dir.path(), port, "20s", "40s");
    let out = dir.path().join("run");
    // The scripted controllers, once the harness watches Events: a
    // scale-out whose Deployment update and HPA status arrive first and
    // whose Event arrives 30 s late (the Events watch idle until then), and
    // a scale-in whose Deployment update comes first, its Event 1 s later
    // and the HPA status 2 s after that.
    let script = {
        let st = st.clone();
        tokio::spawn(async move {
            loop {
                if lock(&st)
                    .watchers
                    .iter()
                    .any(|(c, _, _)| c.ends_with("/events"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(4)).await;
            let out_at = now();
            lock(&st).scale_deployment(3);
            lock(&st).hpa_status(2, 3, &out_at);
            tokio::time::sleep(Duration::from_secs(8)).await;
            let in_at = now();
            lock(&st).scale_deployment(2);
            tokio::time::sleep(Duration::from_secs(1)).await;
            lock(&st).rescale_event(2, "All metrics below target", &in_at);
            tokio::time::sleep(Duration::from_secs(2)).await;
            lock(&st).hpa_status(3, 2, &in_at);
            tokio::time::sleep(Duration::from_secs(19)).await;
            let reason = "cpu resource utilization (percentage of request) above target";
            lock(&st).rescale_event(3, reason, &out_at);
            std::time::Instant::now()
        })
    };
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    let late_sent = script.await.expect("the script ran to its end");
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let s = lock(&st);
    // One namespace, created then deleted; the objects applied in manifest order.
    let creates: Vec<&String> = s
        .log
        .iter()
        .filter(|l| l.starts_with("POST /api/v1/namespaces"))
        .collect();
    assert_eq!(creates.len(), 1, "{:#?}", s.log);
    let created = &s.created_namespace;
    assert!(
        created["metadata"]["annotations"]["autoscale-harness/heartbeat"].is_string(),
        "{created:#}"
    );
    let deletes: Vec<&String> = s
        .log
        .iter()
        .filter(|l| l.starts_with("DELETE /api/v1/namespaces/autoscale-kube-fake-"))
        .collect();
    assert_eq!(deletes.len(), 1, "{:#?}", s.log);
    assert!(s.heartbeats >= 1, "a 40 s run beats every 20 s");
    let applies: Vec<&String> = s
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH ") && l.contains("fieldManager="))
        .collect();
    let kinds: Vec<&str> = applies
        .iter()
        .map(|l| l.split('?').next().unwrap().rsplit('/').nth(1).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "deployments",
            "services",
            "horizontalpodautoscalers",
            "httproutes"
        ],
        "{applies:#?}"
    );
    assert!(
        applies
            .iter()
            .all(|l| l.contains("fieldManager=autoscale-harness") && l.contains("force=true")),
        "{applies:#?}"
    );
    // The HPA watch failed with 410 once; the harness listed again.
    let hpa_lists = s
        .lists
        .iter()
        .filter(|(c, _)| c.ends_with("/horizontalpodautoscalers"))
        .map(|(_, n)| *n)
        .sum::<usize>();
    assert!(
        hpa_lists >= 2,
        "the HPA was listed {hpa_lists} times: {:#?}",
        s.log
    );
    drop(s);
    // The events, at cluster timestamps, in events.jsonl; the verdict passed.
    let run = load_run(&out).unwrap();
    // In cluster time; the late one was recorded last.
    let mut rescales: Vec<_> = run.events.iter().filter(|e| e.is_rescale()).collect();
    rescales.sort_by(|a, b| a.t.total_cmp(&b.t));
    let sizes: Vec<(Option<i32>, Option<i32>)> = rescales
        .iter()
        .map(|e| (e.from_replicas, e.to_replicas))
        .collect();
    assert_eq!(
        sizes,
        [(Some(2), Some(3)), (Some(3), Some(2))],
        "{:#?}",
        run.events
    );
    // The Events watch stayed open through 30 s of silence, longer than
    // any timeout the harness sets (connect 10 s, requests 20 s), and the
    // late event came through at once.
    let event_watches = lock(&st)
        .log
        .iter()
        .filter(|l| l.contains("/events?") && l.contains("watch=true"))
        .count();
    assert_eq!(event_watches, 1, "{:#?}", lock(&st).log);
    let (seen, _) = lines
        .iter()
        .find(|(_, l)| l.contains("SuccessfulRescale") && l.contains("New size: 3"))
        .unwrap_or_else(|| panic!("the late event is printed: {lines:#?}"));
    let delay = seen.saturating_duration_since(late_sent);
    assert!(delay < Duration::from_secs(1), "delivered after {delay:?}");
    // Each event carries the cluster's timestamp; t = 0 is the ready moment.
    assert!(run
        .events
        .iter()
        .filter(|e| e.is_rescale())
        .all(|e| e.cluster_time.is_some()));
    assert!(
        run.meta.hpa_name.starts_with("autoscale-kube-fake-"),
        "{}",
        run.meta.hpa_name
    );
    // Per-pod rates from Prometheus, asked about the run's namespace.
    assert!(run.meta.pod_qps_unobservable.is_none());
    assert!(
        run.samples
            .iter()
            .any(|x| x.pods.len() == 3 && x.pods.iter().all(|p| p.qps == 2.5)),
        "per-pod QPS recorded"
    );
    let queries = lock(&st).prometheus_queries.clone();
    assert!(
        queries
            .first()
            .is_some_and(|q| q.contains("autoscale-kube-fake-")),
        "{queries:?}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Cluster time (UTC)"));
    let no_metrics = run.events.iter().find(|e| e.reason == "NoPodMetrics");
    assert!(
        no_metrics.is_some_and(|e| !e.message.contains('\n')),
        "{no_metrics:?}"
    );
    // "Started" is t = 0, after the objects were applied, not the process start.
    let started: jiff::Timestamp = run.meta.started_at.parse().unwrap();
    let applied = lock(&st).applied_at.expect("the Deployment was applied");
    assert!(
        started >= applied,
        "started {started}, Deployment applied {applied}"
    );
    assert_eq!(run.meta.backend, "kube");
    assert!(run
        .samples
        .iter()
        .any(|x| x.replicas.ready == 3 && x.hpa.as_ref().is_some_and(|h| h.name == "httpbin")));
    assert!(
        run.samples.iter().map(|x| x.completed).sum::<u64>() >= 35,
        "the load reached the gateway"
    );
}

/// A shipped scenario moved onto the fake: its manifests, target and HPA,
/// with a short load and expectations of `seq`'s first and last rescale.
fn shipped_on_fake(dir: &Path, name: &str, port: u16, seq: &[i64]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(format!("scenarios/{name}.yaml"))).unwrap();
    let mut v: serde_json::Value = serde_norway::from_str(&text).unwrap();
    for m in v["manifests"].as_array_mut().unwrap() {
        let abs = root.join("scenarios").join(m.as_str().unwrap());
        *m = json!(abs.display().to_string());
    }
    v["duration"] = json!("24s");
    v["sample_interval"] = json!("500ms");
    v["target"]["url"] = json!(format!("http://127.0.0.1:{port}"));
    v["kube"] = json!({"ready_timeout": "20s"});
    v["load"]["stages"] = json!([{"rate": 5, "for": "8s"}, {"rate": 0, "for": "16s"}]);
    let top = seq.iter().max().unwrap();
    v["expect"] = json!([
        {"scale_out": {"from": seq[0], "to": seq[1]}},
        {"scale_in": {"to": seq[seq.len() - 1], "within": "16s"}},
        {"max_replicas": top},
    ]);
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, serde_norway::to_string(&v).unwrap()).unwrap();
    p.display().to_string()
}

/// The real control plane's runs of ack-qps (1→2→3→4→3→2→1) and ramp-kind
/// (2→3→2), each rescale delivered in another order of Deployment update,
/// HPA status and Event, one Event 6 s late: the sizes are the cluster's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_scenarios_record_the_clusters_sizes_in_any_order_of_delivery() {
    let _g = crate::common::shared();
    let runs = [
        ("ack-qps", vec![1, 2, 3, 4, 3, 2, 1]),
        ("ramp-kind", vec![2, 3, 2]),
    ];
    let runs = runs.map(|(name, seq)| async move {
        let st: Shared = Default::default();
        let port = serve(st.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let kc = kubeconfig(dir.path(), port);
        let scen = shipped_on_fake(dir.path(), name, port, &seq);
        let out = dir.path().join("run");
        let script = {
            let (st, seq) = (st.clone(), seq.clone());
            tokio::spawn(async move {
                while !lock(&st)
                    .watchers
                    .iter()
                    .any(|(c, _, _)| c.ends_with("/events"))
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let orders = ["dse", "des", "sde", "sed", "eds", "esd"];
                let mut late = None;
                for (i, w) in seq.windows(2).enumerate() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let (from, to) = (w[0], w[1]);
                    let at = now();
                    for step in orders[i % orders.len()].chars() {
                        match step {
                            'd' => lock(&st).scale_deployment(to),
                            's' => lock(&st).hpa_status(from, to, &at),
                            _ if i == 1 => late = Some((to, at.clone())),
                            _ => lock(&st).rescale_event(to, "x", &at),
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(6)).await;
                if let Some((to, at)) = late {
                    lock(&st).rescale_event(to, "x", &at);
                }
            })
        };
        let o = kube_run(&scen, &kc, &out).await;
        script.await.unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
        let run = load_run(&out).unwrap();
        let mut rescales: Vec<_> = run.events.iter().filter(|e| e.is_rescale()).collect();
        rescales.sort_by(|a, b| a.t.total_cmp(&b.t));
        let got: Vec<_> = rescales
            .iter()
            .map(|e| (e.from_replicas.unwrap_or(-1), e.to_replicas.unwrap_or(-1)))
            .collect();
        let want: Vec<_> = seq.windows(2).map(|w| (w[0] as i32, w[1] as i32)).collect();
        assert_eq!(got, want, "{name}");
    });
    futures::future::join_all(runs).await;
}

/// paper-kind: the HPA and the Deployment it scales are Envoy Gateway's, in
/// its namespace, beside another Gateway's proxy. The harness watches them
/// there (pods by the Deployment's selector, only the Events about them),
/// reads the proxies' per-pod QPS from Prometheus for that namespace,
/// records the 2→3→2 from that namespace's Events, and changes nothing
/// there: at the end it deletes its own namespace only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_an_hpa_in_another_namespace_and_leaves_it_alone() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    {
        let mut s = lock(&st);
        s.prometheus = true;
        s.gateway_tier();
    }
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = shipped_on_fake(dir.path(), "paper-kind", port, &[2, 3, 2]);
    let out = dir.path().join("run");
    let script = {
        let st = st.clone();
        tokio::spawn(async move {
            let events = format!("/api/v1/namespaces/{EG}/events");
            while !lock(&st).watchers.iter().any(|(c, _, _)| *c == events) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let at = now();
            // The other Gateway's HPA rescales too: not this run's story.
            lock(&st).event_in(EG, OTHER, 3, &at);
            lock(&st).rescale_gateway(2, 3, &at);
            tokio::time::sleep(Duration::from_secs(2)).await;
            let at = now();
            lock(&st).rescale_gateway(3, 2, &at);
        })
    };
    let o = kube_run(&scen, &kc, &out).await;
    script.await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    let run = load_run(&out).unwrap();
    assert_eq!(run.meta.hpa_name, format!("{EG}/envoy-paper"));
    assert_eq!((run.meta.min_replicas, run.meta.max_replicas), (2, 3));
    let mut rescales: Vec<_> = run.events.iter().filter(|e| e.is_rescale()).collect();
    rescales.sort_by(|a, b| a.t.total_cmp(&b.t));
    let got: Vec<_> = rescales
        .iter()
        .map(|e| (e.from_replicas, e.to_replicas, e.object.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(2), Some(3), "HorizontalPodAutoscaler/envoy-paper"),
            (Some(3), Some(2), "HorizontalPodAutoscaler/envoy-paper")
        ],
        "{:#?}",
        run.events
    );
    assert!(
        run.events.iter().all(|e| !e.object.contains(OTHER)),
        "{:#?}",
        run.events
    );
    // The proxy pods, by the Deployment's selector, with their QPS from
    // Prometheus; never the other Gateway's proxy.
    assert!(
        run.samples.iter().any(|x| x.pods.len() == 3
            && x.pods
                .iter()
                .all(|p| p.name.starts_with("envoy-paper-") && p.qps == 2.5)),
        "per-pod QPS of the gateway tier recorded"
    );
    assert!(run
        .samples
        .iter()
        .all(|x| x.pods.iter().all(|p| !p.name.starts_with(OTHER))));
    assert!(run.samples.iter().any(|x| x.replicas.spec == 3));
    assert!(run.meta.pod_qps_unobservable.is_none());

    let s = lock(&st);
    let queries = &s.prometheus_queries;
    assert!(
        !queries.is_empty() && queries.iter().all(|q| q.contains(EG)),
        "{queries:?}"
    );
    assert!(
        s.log.iter().any(
            |l| l.starts_with(&format!("GET /api/v1/namespaces/{EG}/pods?"))
                && l.contains("owning-gateway-name%3Dpaper")
        ),
        "{:#?}",
        s.log
    );
    // Nothing in Envoy Gateway's namespace was written or deleted, and its
    // objects are all still there.
    let touched: Vec<&String> = s
        .log
        .iter()
        .filter(|l| !l.starts_with("GET ") && l.contains(&format!("/namespaces/{EG}")))
        .collect();
    assert!(touched.is_empty(), "{touched:#?}");
    for coll in [
        format!("/apis/apps/v1/namespaces/{EG}/deployments"),
        format!("/apis/autoscaling/v2/namespaces/{EG}/horizontalpodautoscalers"),
    ] {
        let names: Vec<&String> = s.objects[&coll].keys().collect();
        assert_eq!(names, [OTHER, "envoy-paper"], "{coll}");
    }
    // The run's own namespace got the manifests and was deleted.
    let applies: Vec<&str> = s
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH ") && l.contains("fieldManager="))
        .map(|l| l.split('?').next().unwrap())
        .collect();
    assert_eq!(applies.len(), 3, "{applies:#?}");
    assert!(
        applies
            .iter()
            .all(|l| l.contains("/namespaces/autoscale-paper-kind-")),
        "{applies:#?}"
    );
    assert!(
        s.log
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/autoscale-paper-kind-")),
        "{:#?}",
        s.log
    );
}

/// An HPA the scenario expects in the cluster that is not there: exit 3,
/// saying what should have created it, before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_in_cluster_hpa_exits_3_before_anything_is_created() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = shipped_on_fake(dir.path(), "paper-kind", port, &[2, 3, 2]);
    let o = kube_run(&scen, &kc, &dir.path().join("run")).await;
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("HorizontalPodAutoscaler {EG}/envoy-paper"))
            && err.contains("is not in the cluster")
            && err.contains("Envoy Gateway"),
        "{err}"
    );
    let log = lock(&st).log.clone();
    assert!(log.iter().all(|l| l.starts_with("GET ")), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_143_cleans_up_and_says_per_pod_load_was_not_observable() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = scenario(dir.path(), port, "20s", "20s");
    let out = dir.path().join("run");
    let child = spawn_kube_run(&scen, &kc, &out);
    // Recording: the load has reached the gateway.
    for _ in 0..200 {
        if lock(&st)
            .log
            .iter()
            .filter(|l| l.starts_with("GET /get"))
            .count()
            >= 10
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let o = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stops soon after SIGTERM")
        .unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", show(&o));
    assert!(
        lock(&st)
            .log
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/autoscale-kube-fake-")),
        "the namespace is deleted"
    );
    let run = load_run(&out).unwrap();
    assert!(run.meta.interrupted);
    let why = run.meta.pod_qps_unobservable.clone().unwrap_or_default();
    assert!(
        why.contains("prometheus-server") && why.contains("not found"),
        "{why}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Per-pod load is not observable on this cluster"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_the_namespace_is_created_removes_it_and_exits_130() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    lock(&st).namespace_delay = Duration::from_secs(2);
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = scenario(dir.path(), port, "20s", "20s");
    let out = dir.path().join("run");
    let child = spawn_kube_run(&scen, &kc, &out);
    let asked = || {
        lock(&st)
            .log
            .iter()
            .any(|l| l.starts_with("POST /api/v1/namespaces?"))
    };
    for _ in 0..200 {
        if asked() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(asked(), "the harness asks for its namespace");
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let o = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stops soon after Ctrl-C")
        .unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("stopped while the kube backend opened; removed what it made"),
        "{}",
        show(&o)
    );
    let log = lock(&st).log.clone();
    let created = lock(&st).created_namespace["metadata"]["name"]
        .as_str()
        .expect("the namespace was created")
        .to_string();
    assert!(
        log.contains(&format!("DELETE /api/v1/namespaces/{created}?")),
        "{log:#?}"
    );
    // Nothing was applied in it, and no load was sent.
    assert!(
        log.iter()
            .all(|l| !l.contains("/deployments") && !l.starts_with("GET /get")),
        "{log:#?}"
    );
    let run = load_run(&out).unwrap();
    assert!(run.meta.interrupted && run.samples.is_empty());
    assert!(
        run.events.iter().any(|e| e.reason == "Interrupted"),
        "{:#?}",
        run.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_backoff_fails_clearly_and_still_cleans_up() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    lock(&st).pull_fails = true;
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = scenario(dir.path(), port, "3s", "20s");
    let out = dir.path().join("run");
    let o = kube_run(&scen, &kc, &out).await;
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ImagePullBackOff") && err.contains("kennethreitz/httpbin"),
        "{err}"
    );
    assert!(
        lock(&st)
            .log
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/")),
        "the namespace is deleted"
    );
    // No load was sent.
    assert!(!lock(&st).log.iter().any(|l| l.starts_with("GET /get")));
    // The record is partial and on experiment time from the start of the
    // ready wait, not on Unix time; it says why it ends there.
    let run = load_run(&out).unwrap();
    assert!(run.meta.interrupted);
    let why = run.events.iter().find(|e| e.reason == "SetupFailed");
    assert!(
        why.is_some_and(|e| e.message.contains("ImagePullBackOff")),
        "{:#?}",
        run.events
    );
    assert!(
        run.events.iter().all(|e| (0.0..600.0).contains(&e.t)),
        "{:#?}",
        run.events
    );
    assert!(out.join("report.html").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_refused_cluster_exits_3_before_any_load() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kc = kubeconfig(dir.path(), closed);
    let scen = scenario(dir.path(), closed, "5s", "20s");
    let o = kube_run(&scen, &kc, &dir.path().join("a")).await;
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("cannot reach the cluster at http://127.0.0.1:"),
        "{}",
        show(&o)
    );
    // The run directory says why it holds no samples.
    let run = load_run(&dir.path().join("a")).unwrap();
    assert!(run.meta.interrupted && run.samples.is_empty());
    assert!(
        run.events
            .iter()
            .any(|e| e.reason == "SetupFailed" && e.message.contains("cannot reach the cluster")),
        "{:#?}",
        run.events
    );

    let st: Shared = Default::default();
    lock(&st).deny = true;
    let port = serve(st.clone()).await;
    let kc = kubeconfig(dir.path(), port);
    let scen = scenario(dir.path(), port, "5s", "20s");
    let o = kube_run(&scen, &kc, &dir.path().join("b")).await;
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the credentials"),
        "{}",
        show(&o)
    );
    let log = lock(&st).log.clone();
    assert!(
        log.iter()
            .all(|l| !l.starts_with("POST") && !l.starts_with("GET /get")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_what_runs_left_and_keeps_live_runs() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let fresh = jiff::Timestamp::now().to_string();
    let stale = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)).to_string();
    let label = json!({"app.kubernetes.io/managed-by": "autoscale-harness"});
    for (n, notes, phase) in [
        (
            "autoscale-ramp-aaaaaa",
            json!({"autoscale-harness/heartbeat": stale}),
            "Active",
        ),
        ("autoscale-ramp-bbbbbb", json!({}), "Active"),
        (
            "autoscale-ramp-livexx",
            json!({"autoscale-harness/heartbeat": fresh, "autoscale-harness/owner": "pid 42 on ci"}),
            "Active",
        ),
        ("autoscale-ramp-goingx", json!({}), "Terminating"),
    ] {
        lock(&st).put(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n,
                   "labels": label, "annotations": notes}, "status": {"phase": phase}}),
        );
    }
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let o = harness(&["cleanup", "--kubeconfig", &kc, "--dry-run"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "would delete autoscale-ramp-aaaaaa (left by a run that stopped; last heartbeat 10m ago)",
        "would delete autoscale-ramp-bbbbbb (left by a run; no heartbeat)",
        "kept autoscale-ramp-livexx: a run is still in progress (pid 42 on ci",
        "autoscale-ramp-goingx: already terminating",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    assert!(!lock(&st).log.iter().any(|l| l.starts_with("DELETE")));
    let deletes = |st: &Shared| -> Vec<String> {
        lock(st)
            .log
            .iter()
            .filter_map(|l| l.strip_prefix("DELETE /api/v1/namespaces/"))
            .map(|l| l.trim_end_matches('?').to_string())
            .collect()
    };
    let o = harness(&["cleanup", "--kubeconfig", &kc]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let log = lock(&st).log.clone();
    assert!(
        log.iter()
            .any(|l| l.contains("labelSelector=app.kubernetes.io")),
        "{log:#?}"
    );
    assert_eq!(
        deletes(&st),
        ["autoscale-ramp-aaaaaa", "autoscale-ramp-bbbbbb"]
    );
    let o = harness(&["cleanup", "--kubeconfig", &kc, "--include-live"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        deletes(&st).last().map(String::as_str),
        Some("autoscale-ramp-livexx")
    );
}

#[test]
fn dry_run_prints_the_objects_in_order_without_a_cluster() {
    let _g = crate::common::shared();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["experiment", "ack-qps", "--backend", "kube", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let y = String::from_utf8_lossy(&o.stdout);
    let kinds: Vec<&str> = y.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "HTTPRoute"
        ],
        "{y}"
    );
    // Moved into the run namespace; the route still names the gateway's
    // namespace and the External selector follows the route id.
    assert!(y.contains("namespace: autoscale-ack-qps-xxxxxx"), "{y}");
    assert!(
        y.contains("route: autoscale-ack-qps-xxxxxx-httpbin-svc-8080"),
        "{y}"
    );
    assert!(!y.contains("default-httpbin-svc-8080"), "{y}");
}

// Scheduled scaling (issue 14) on kube: the harness as the schedule
// controller, the cluster's kubernetes-cronhpa-controller, and a cluster
// without it.

impl State {
    /// kubernetes-cronhpa-controller ran job `job` of the run's CronHPA:
    /// its condition becomes `Succeed` at `at` with `message`, the
    /// Deployment is scaled to `to`, and the controller's Event repeats the
    /// condition (cronmanager.go JobResultHandler).
    fn cron_fired(&mut self, job: &str, to: i64, message: &str, at: &str) {
        let Some(ns) = self.namespace() else { return };
        let coll = cron_coll(&ns);
        let Some(mut c) = self.first(&coll) else {
            return;
        };
        let name = c["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for cond in c["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if cond["name"] == job {
                cond["state"] = json!("Succeed");
                cond["lastProbeTime"] = json!(at);
                cond["message"] = json!(message);
            }
        }
        self.put(&coll, c);
        self.scale_deployment(to);
        self.rv += 1;
        let ev = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{}", self.rv), "namespace": ns},
            "involvedObject": {"kind": "CronHorizontalPodAutoscaler", "name": name, "namespace": ns,
                               "apiVersion": "autoscaling.alibabacloud.com/v1beta1"},
            "reason": "Succeed", "type": "Normal", "message": message,
            "source": {"component": "CronHorizontalPodAutoscaler"},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1});
        self.put(&format!("/api/v1/namespaces/{ns}/events"), ev);
    }
}

/// The `fieldManager` of a logged request.
fn manager(l: &str) -> Option<&str> {
    l.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("fieldManager="))
}

/// A scenario on the fake with a CronHPA that raises HPA `httpbin`
/// (hpa-paper.yaml: 2-3, currentReplicas 2 in the fake) to 3 every 2 s.
fn schedule_scenario(dir: &Path, port: u16, controller: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let cron = dir.join("cronhpa.yaml");
    std::fs::write(
        &cron,
        "apiVersion: autoscaling.alibabacloud.com/v1beta1\nkind: CronHorizontalPodAutoscaler\n\
         metadata:\n  name: httpbin-schedule\n  namespace: default\nspec:\n  scaleTargetRef:\n    \
         apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: httpbin\n  jobs:\n    \
         - name: up\n      schedule: \"@every 2s\"\n      targetSize: 3\n",
    )
    .unwrap();
    let p = dir.join("kube-schedule.yaml");
    std::fs::write(
        &p,
        format!(
            "name: kube-schedule\nduration: 7s\nsample_interval: 500ms\nmanifests:\n  - {root}/manifests/httpbin.yaml\n  \
             - {root}/manifests/hpa-paper.yaml\n  - {root}/manifests/httproute.yaml\n  - {}\n\
             target:\n  route: httpbin\n  hpa: httpbin\n  replicas: 2\n  url: http://127.0.0.1:{port}\n\
             kube:\n  ready_timeout: 20s\nschedule:\n  controller: {controller}\n\
             load:\n  stages:\n    - {{ rate: 2, for: 7s }}\n\
             expect:\n  - replicas: {{ during: [5s, 7s], is: 3 }}\n  - error_ratio: {{ below: 0.01 }}\n",
            cron.display()
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_harness_patches_the_hpa_and_the_scale_and_posts_events() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = schedule_scenario(dir.path(), port, "harness");
    let out = dir.path().join("run");
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        text.iter().any(|l| l.contains("run by the harness")),
        "the headline says who runs the schedule: {text:#?}"
    );
    assert!(
        text.iter()
            .any(|l| l.contains("experiment t = 0 is") && l.contains("[UTC]")),
        "t = 0 on the schedule's clock is printed: {text:#?}"
    );
    let s = lock(&st);
    // The CronHPA is not applied: the cluster may not know it.
    assert!(
        !s.log
            .iter()
            .any(|l| l.contains("cronhorizontalpodautoscalers")),
        "{:#?}",
        s.log
    );
    // The HPA's range by server-side apply under the schedule's own field
    // manager, with only min and max (the run's apply keeps the rest).
    let hpa_patches: Vec<&(String, Value)> = s
        .bodies
        .iter()
        .filter(|(l, _)| l.contains("/horizontalpodautoscalers/httpbin?"))
        .collect();
    let (first, rest) = hpa_patches.split_first().expect("the HPA was applied");
    assert_eq!(manager(&first.0), Some("autoscale-harness"), "{first:?}");
    let sched: Vec<&&(String, Value)> = rest
        .iter()
        .filter(|(l, _)| {
            manager(l) == Some("autoscale-harness-schedule") && l.contains("force=true")
        })
        .collect();
    assert!(
        sched.len() >= 2,
        "every firing writes the range: {hpa_patches:#?}"
    );
    assert_eq!(
        sched[0].1["spec"],
        json!({"minReplicas": 3, "maxReplicas": 3}),
        "{:#}",
        sched[0].1
    );
    // The run's fields are still there (the fake keeps objects after the
    // namespace is deleted).
    let hpa = s
        .objects
        .iter()
        .find(|(c, _)| c.ends_with("/horizontalpodautoscalers"))
        .and_then(|(_, m)| m.get("httpbin"))
        .cloned()
        .unwrap();
    assert!(hpa["spec"]["metrics"].is_array(), "{hpa:#}");
    // The Deployment's scale subresource.
    let scales: Vec<&(String, Value)> = s
        .bodies
        .iter()
        .filter(|(l, _)| {
            l.starts_with("PATCH ") && l.contains("/deployments/httpbin-deploy/scale?")
        })
        .collect();
    assert!(!scales.is_empty(), "{:#?}", s.log);
    assert_eq!(scales[0].1, json!({"spec": {"replicas": 3}}));
    // An events.k8s.io Event per firing, about the HPA.
    let posted: Vec<&Value> = s
        .bodies
        .iter()
        .filter(|(l, _)| l.starts_with("POST /apis/events.k8s.io/v1/namespaces/"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(posted.len(), sched.len(), "{posted:#?}");
    let e = posted[0];
    assert_eq!(e["reportingController"], "autoscale-harness");
    assert_eq!(e["action"], "Scale");
    assert_eq!(e["reason"], "Succeed");
    assert_eq!(e["type"], "Normal");
    assert_eq!(e["regarding"]["kind"], "HorizontalPodAutoscaler");
    assert_eq!(e["regarding"]["name"], "httpbin");
    assert!(
        e["reportingInstance"].is_string() && e["eventTime"].is_string(),
        "{e:#}"
    );
    assert_eq!(
        e["note"],
        "cron hpa job up executed successfully. current replicas:2, desired replicas:3."
    );
    let n_posted = posted.len();
    drop(s);
    // Recorded once per firing (the Event's copy through the Events watch
    // is not recorded again), the first one scaling 2 → 3.
    let run = load_run(&out).unwrap();
    let firings: Vec<_> = run.events.iter().filter(|e| e.is_firing()).collect();
    assert_eq!(firings.len(), n_posted, "{:#?}", run.events);
    assert_eq!(
        firings[0].object,
        "CronHorizontalPodAutoscaler/httpbin-schedule"
    );
    assert_eq!(
        (firings[0].from_replicas, firings[0].to_replicas),
        (Some(2), Some(3))
    );
    assert!((firings[0].t - 2.0).abs() < 1.0, "{:?}", firings[0]);
    assert!(firings[0].cluster_time.is_some());
    // The HPA's range as the watch saw it.
    assert!(
        run.samples
            .iter()
            .any(|x| x.hpa.as_ref().is_some_and(|h| h.min_replicas == Some(3))),
        "the range is recorded"
    );
    // run.json: who ran it, and t = 0 on its clock (the run's start).
    let m = run
        .meta
        .schedule
        .as_ref()
        .expect("run.json has the schedule");
    assert_eq!(m.controller, "harness");
    let t0: jiff::Zoned = m.clock_start.parse().unwrap();
    let started: jiff::Timestamp = run.meta.started_at.parse().unwrap();
    let gap = (t0.timestamp().as_millisecond() - started.as_millisecond()).abs();
    assert!(gap < 50, "clock_start {t0} vs started_at {started}");
    assert_eq!(m.jobs[0].fires_at, [2.0, 4.0, 6.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_cluster_applies_the_cronhpa_and_records_its_status() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = schedule_scenario(dir.path(), port, "cluster");
    let out = dir.path().join("run");
    // The cluster's controller: once the harness watches the CronHPA, the
    // job runs 3 s later.
    let script = {
        let st = st.clone();
        tokio::spawn(async move {
            loop {
                let watching = lock(&st)
                    .watchers
                    .iter()
                    .any(|(c, _, _)| c.ends_with("/cronhorizontalpodautoscalers"));
                if watching {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let msg =
                "cron hpa job up executed successfully. current replicas:2, desired replicas:3.";
            lock(&st).cron_fired("up", 3, msg, &now());
        })
    };
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    script.await.unwrap();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let s = lock(&st);
    let applied: Vec<&String> = s
        .log
        .iter()
        .filter(|l| {
            l.starts_with("PATCH ") && l.contains("/cronhorizontalpodautoscalers/httpbin-schedule?")
        })
        .collect();
    assert_eq!(applied.len(), 1, "{:#?}", s.log);
    assert!(
        applied[0].contains("/namespaces/autoscale-kube-schedule-"),
        "{applied:?}"
    );
    assert_eq!(
        manager(applied[0]),
        Some("autoscale-harness"),
        "{applied:?}"
    );
    // The harness changes nothing itself.
    assert!(!s
        .log
        .iter()
        .any(|l| l.contains("/scale?") || l.contains("events.k8s.io")));
    drop(s);
    let run = load_run(&out).unwrap();
    let cron: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.object == "CronHorizontalPodAutoscaler/httpbin-schedule")
        .collect();
    let reasons: Vec<&str> = cron.iter().map(|e| e.reason.as_str()).collect();
    // Submitted when applied, then the run: once, though the controller's
    // Event said it too.
    assert_eq!(reasons, ["Submitted", "Succeed"], "{:#?}", run.events);
    let ran = cron[1];
    assert_eq!(ran.source, "CronHorizontalPodAutoscaler");
    assert_eq!((ran.from_replicas, ran.to_replicas), (Some(2), Some(3)));
    assert!(ran.t > 0.0 && ran.cluster_time.is_some(), "{ran:?}");
    let m = run.meta.schedule.as_ref().unwrap();
    assert_eq!(m.controller, "cluster");
    assert!(m.jobs.iter().all(|j| j.fires_at.is_empty()));
    assert!(m.clock_start.ends_with("[UTC]"), "{}", m.clock_start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_cluster_without_the_crd_exits_3_naming_it() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    lock(&st).no_cron_crd = true;
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = schedule_scenario(dir.path(), port, "harness");
    let out = dir.path().join("run");
    // The flag overrides the scenario's `harness`.
    let o = harness(&[
        "experiment",
        &scen,
        "--backend",
        "kube",
        "--kubeconfig",
        &kc,
        "--no-progress",
        "--schedule-controller",
        "cluster",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cronhorizontalpodautoscalers.autoscaling.alibabacloud.com")
            && err.contains("manifests/kind/cronhpa-controller.yaml")
            && err.contains("--schedule-controller harness"),
        "{err}"
    );
    // Nothing is left behind.
    let s = lock(&st);
    assert!(
        s.log
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/autoscale-kube-schedule-")),
        "{:#?}",
        s.log
    );
    drop(s);
    let run = load_run(&out).unwrap();
    assert!(run.events.iter().any(|e| e.reason == "SetupFailed"));
    assert_eq!(run.meta.schedule.unwrap().controller, "cluster");
}

#[test]
fn schedule_dry_run_applies_the_cronhpa_only_for_the_cluster_and_off_leaves_it_out() {
    let _g = crate::common::shared();
    let dry = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["experiment", "schedule", "--backend", "kube", "--dry-run"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let kind = "kind: CronHorizontalPodAutoscaler";
    let y = dry(&[]);
    assert!(!y.contains(kind), "{y}");
    assert!(y.contains("# not applied: CronHorizontalPodAutoscaler/httpbin-schedule (schedule.controller: harness"), "{y}");
    let y = dry(&["--schedule-controller", "cluster"]);
    assert!(
        y.contains(kind) && y.contains("namespace: autoscale-schedule-xxxxxx"),
        "{y}"
    );
    let y = dry(&["--schedule-controller", "off"]);
    assert!(
        !y.contains(kind) && y.contains("(schedule.controller: off)"),
        "{y}"
    );
}

/// `--schedule-controller off` on the embedded backends: the same run
/// without the schedule, the metric-only baseline.
#[test]
fn schedule_off_on_sim_is_the_metric_only_baseline() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "experiment",
            "schedule",
            "--backend",
            "sim",
            "--no-progress",
        ])
        .args([
            "--schedule-controller",
            "off",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // Schedule 7's floor never comes: its expectations fail.
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("schedule: off"),
        "{}",
        show(&o)
    );
    let run = load_run(&out).unwrap();
    assert!(run.meta.schedule.is_none());
    assert!(!run.events.iter().any(|e| e.is_firing()));
}

// Lua policies (issue 15) on kube: the harness is the Deployment's
// autoscaler.

/// A scenario on the fake whose Deployment is scaled by the Lua policy
/// `policy` (written beside it as p.lua) every 2 s within [2, 4].
fn lua_scenario(dir: &Path, port: u16, policy: &str) -> String {
    lua_scenario_for(dir, port, policy, 7)
}

fn lua_scenario_for(dir: &Path, port: u16, policy: &str, seconds: u32) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(dir.join("p.lua"), policy).unwrap();
    let p = dir.join("kube-lua.yaml");
    std::fs::write(
        &p,
        format!(
            "name: kube-lua\nduration: {seconds}s\nsample_interval: 500ms\nmanifests:\n  - {root}/manifests/httpbin.yaml\n  \
             - {root}/manifests/httproute.yaml\n\
             target:\n  route: httpbin\n  replicas: 2\n  url: http://127.0.0.1:{port}\n  \
             autoscaler: {{ lua: p.lua, interval: 2s, min: 2, max: 4 }}\n\
             local:\n  controller:\n    sync_period: 1s\n\
             kube:\n  ready_timeout: 20s\n\
             load:\n  stages:\n    - {{ rate: 4, for: {seconds}s }}\n\
             expect:\n  - error_ratio: {{ below: 0.01 }}\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// The bodies of the PATCHes and POSTs whose request line contains `part`.
fn bodies(st: &Shared, part: &str) -> Vec<(String, Value)> {
    lock(st)
        .bodies
        .iter()
        .filter(|(l, _)| l.contains(part))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_policy_scales_the_deployment_through_its_scale_subresource_and_posts_events() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    // 95m of the pods' 100m request: 95 %.
    lock(&st).pod_cpu = Some("95m".into());
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let policy = "local cpu = get_cpu_usage()\nif cpu > 80 then\n  scale_up_instances(5)\n  log('cpu ' .. cpu .. '% above 80')\nend\n";
    let scen = lua_scenario(dir.path(), port, policy);
    let out = dir.path().join("run");
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    // No HPA: the harness is the autoscaler.
    assert!(
        !lock(&st)
            .log
            .iter()
            .any(|l| l.contains("horizontalpodautoscalers")),
        "{:#?}",
        lock(&st).log
    );
    // 2 + 5 clamped to max 4, once: the later calls ask for 4 + 5 → 4.
    let scales = bodies(&st, "/deployments/httpbin-deploy/scale?");
    assert_eq!(scales.len(), 1, "{scales:#?}");
    assert!(scales[0].0.starts_with("PATCH "), "{scales:?}");
    assert_eq!(manager(&scales[0].0), Some("autoscale-harness-lua"));
    assert_eq!(scales[0].1, json!({"spec": {"replicas": 4}}));
    let posted = bodies(&st, "POST /apis/events.k8s.io/v1/namespaces/");
    assert_eq!(posted.len(), 1, "{posted:#?}");
    let e = &posted[0].1;
    assert_eq!(e["reportingController"], "autoscale-harness");
    assert_eq!(e["type"], "Normal");
    assert_eq!(e["reason"], "SuccessfulRescale");
    assert_eq!(e["action"], "Scale");
    assert_eq!(e["regarding"]["kind"], "Deployment");
    assert_eq!(e["regarding"]["name"], "httpbin-deploy");
    assert_eq!(e["note"], "New size: 4; reason: cpu 95.0% above 80");
    // Recorded once (the Event's copy through the Events watch is not
    // recorded again), with its sizes, like the local path's.
    let run = load_run(&out).unwrap();
    let rescales: Vec<_> = run.events.iter().filter(|e| e.is_rescale()).collect();
    assert_eq!(rescales.len(), 1, "{:#?}", run.events);
    let r = rescales[0];
    assert_eq!(
        (
            r.object.as_str(),
            r.source.as_str(),
            r.message.as_str(),
            r.from_replicas,
            r.to_replicas
        ),
        (
            "Deployment/httpbin-deploy",
            "lua-policy",
            "New size: 4; reason: cpu 95.0% above 80",
            Some(2),
            Some(4)
        )
    );
    assert!((r.t - 2.0).abs() < 1.0 && r.cluster_time.is_some(), "{r:?}");
    // The calls after it held, logging.
    assert!(
        run.events
            .iter()
            .any(|e| e.reason == "PolicyLog" && e.message == "cpu 95.0% above 80"),
        "{:#?}",
        run.events
    );
    // The policy in place of the HPA, in run.json and in every sample.
    assert_eq!(run.meta.hpa_name, "lua:p.lua");
    assert_eq!((run.meta.min_replicas, run.meta.max_replicas), (2, 4));
    assert!(run
        .samples
        .iter()
        .all(|x| x.hpa.as_ref().is_some_and(|h| h.name == "lua:p.lua")));
    assert!(
        run.samples
            .iter()
            .any(|x| x.replicas.spec == 4 && x.replicas.desired == 4 && x.replicas.ready == 4),
        "the new size is observed"
    );
    let cond = run
        .samples
        .last()
        .and_then(|x| x.hpa.as_ref())
        .map(|h| h.conditions.clone())
        .unwrap_or_default();
    assert!(
        cond.iter()
            .any(|c| c.type_ == "ScalingActive" && c.status == "True"),
        "{cond:?}"
    );
    assert!(!run.events.iter().any(|e| e.reason == "NoPodMetrics"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_policy_that_fails_holds_with_a_warning_naming_its_line_and_the_run_goes_on() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    lock(&st).pod_cpu = Some("50m".into());
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let policy = "local x = nil\nif x > 1 then scale_up_instances() end\n";
    let scen = lua_scenario(dir.path(), port, policy);
    let out = dir.path().join("run");
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    assert!(bodies(&st, "/scale?").is_empty(), "the size holds");
    let posted = bodies(&st, "POST /apis/events.k8s.io/v1/namespaces/");
    assert!(!posted.is_empty());
    let want = "p.lua:2: attempt to compare number with nil; holding at 2";
    for (_, e) in &posted {
        assert_eq!(
            (
                e["type"].as_str(),
                e["reason"].as_str(),
                e["note"].as_str(),
                e["regarding"]["name"].as_str()
            ),
            (
                Some("Warning"),
                Some("FailedPolicy"),
                Some(want),
                Some("httpbin-deploy")
            ),
            "{e:#}"
        );
    }
    // Each call once in the record, with the same text as on local.
    let run = load_run(&out).unwrap();
    let warnings: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.reason == "FailedPolicy")
        .collect();
    assert_eq!(warnings.len(), posted.len(), "{:#?}", run.events);
    assert!(warnings
        .iter()
        .all(|w| w.type_ == "Warning" && w.message == want));
    assert!(
        warnings.len() >= 2,
        "called at 2 s, 4 s and 6 s: {warnings:#?}"
    );
    assert_eq!(run.samples.len(), 14, "the run went on to its end");
    assert!(run.samples.iter().all(|x| x.replicas.spec == 2));
    let last = run.samples.last().and_then(|x| x.hpa.clone()).unwrap();
    assert_eq!(last.conditions[0].reason, "FailedPolicy");
}

/// The run's one event of `reason`.
fn the_one<'a>(run: &'a RunData, reason: &str) -> &'a autoscale_harness::recorder::Event {
    let found: Vec<_> = run.events.iter().filter(|e| e.reason == reason).collect();
    assert_eq!(found.len(), 1, "one {reason}: {:#?}", run.events);
    found[0]
}

/// Runs `policy` on the fake to its end (exit 0): the run and the lines the
/// policy logged.
async fn lua_run_logs(st: &Shared, policy: &str, seconds: u32) -> (RunData, Vec<String>) {
    let port = serve(st.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port);
    let scen = lua_scenario_for(dir.path(), port, policy, seconds);
    let out = dir.path().join("run");
    let (status, lines) = kube_run_lines(&scen, &kc, &out).await;
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let run = load_run(&out).unwrap();
    let logs = run
        .events
        .iter()
        .filter(|e| e.reason == "PolicyLog")
        .map(|e| e.message.clone())
        .collect();
    (run, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_policy_without_the_metrics_api_reads_nil_cpu_with_one_warning() {
    let _g = crate::common::shared();
    let st: Shared = Default::default();
    let policy = "log('cpu ' .. tostring(get_cpu_usage()) .. ' memory ' .. tostring(get_memory_usage()) .. ' ready ' .. get_ready_replicas())\n";
    let (run, logs) = lua_run_logs(&st, policy, 7).await;
    assert!(
        logs.len() >= 2 && logs.iter().all(|l| *l == "cpu nil memory nil ready 2"),
        "{logs:#?}"
    );
    let warned = the_one(&run, "NoPodMetrics");
    assert!(
        warned.message.contains("get_cpu_usage()"),
        "{}",
        warned.message
    );
    // Log lines are the run's record; nothing was posted or scaled.
    assert!(bodies(&st, "events.k8s.io").is_empty());
    assert!(bodies(&st, "/scale?").is_empty());
}

/// A run whose metrics API answers one list of 50m of CPU (of a 100m
/// request) and then fails with 503, or stalls: the policy's first reading
/// is 50 %, its last nil (a gap, not the last answer held).
async fn metrics_outage_run(stall: bool, seconds: u32) -> RunData {
    let st: Shared = Default::default();
    {
        let mut s = lock(&st);
        s.pod_cpu = Some("50m".into());
        s.pod_metrics_lists = Some(1);
        s.pod_metrics_stall = stall;
    }
    let policy = "log('cpu ' .. tostring(get_cpu_usage()))\n";
    let (run, logs) = lua_run_logs(&st, policy, seconds).await;
    assert_eq!(
        logs.first().map(|l| l.as_str()),
        Some("cpu 50.0"),
        "{logs:#?}"
    );
    assert_eq!(
        logs.last().map(|l| l.as_str()),
        Some("cpu nil"),
        "{logs:#?}"
    );
    run
}

/// The metrics API answers once, then fails: CPU is a gap from then on
/// (nil to the policy, no utilization in the samples), not the last
/// answer held, and the outage is told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_api_outage_mid_run_is_a_gap_not_the_last_readings() {
    let _g = crate::common::shared();
    // The second poll, 5 s after the first, fails.
    let run = metrics_outage_run(false, 7).await;
    let warned = the_one(&run, "NoPodMetrics");
    assert!(
        warned
            .message
            .contains("until the metrics API answers again")
            && warned.message.contains("unable to handle the request"),
        "{}",
        warned.message
    );
    let utilization =
        |x: &autoscale_harness::recorder::Sample| x.pods.iter().find_map(|p| p.cpu_utilization);
    assert!(
        utilization(&run.samples[0]).is_some(),
        "{:?}",
        run.samples[0]
    );
    let last = run.samples.last().unwrap();
    assert!(utilization(last).is_none(), "{last:?}");
    assert!(!run.events.iter().any(|e| e.reason == "PodMetricsAvailable"));
}

/// The metrics API answers once, then stalls: the poll gives up after one
/// poll period, and CPU is a gap from then on, as when it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_metrics_api_is_a_gap_after_one_poll_period() {
    let _g = crate::common::shared();
    // Polls at about 0 and 5 s; the second times out at about 10 s, well
    // within the run (the request timeout of other calls, 20 s, would
    // outlast it).
    let run = metrics_outage_run(true, 14).await;
    let warned = the_one(&run, "NoPodMetrics");
    assert!(warned.t <= 11.5, "{warned:?}");
}

#[test]
fn lua_dry_run_shows_the_policy_and_applies_no_hpa() {
    let _g = crate::common::shared();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["experiment", "lua-kind", "--backend", "kube", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let y = String::from_utf8_lossy(&o.stdout);
    let kinds: Vec<&str> = y.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    assert_eq!(
        kinds,
        ["Namespace", "Deployment", "Service", "HTTPRoute"],
        "{y}"
    );
    assert!(
        y.contains("# not applied: the Lua policy ../policies/cpu.lua (target.autoscaler)")
            && y.contains("deployments/httpbin-deploy/scale")
            && y.contains("metrics.k8s.io"),
        "{y}"
    );
}
