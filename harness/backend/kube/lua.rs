//! A Lua policy (`target.autoscaler`) on a real cluster, where no
//! controller runs it: the harness is the autoscaler. At each interval from
//! experiment t = 0 it builds what a call sees from the cluster (`metrics`):
//! the Deployment's spec.replicas and pods from the watches, CPU and memory
//! of the ready pods from the metrics API (metrics.k8s.io PodMetrics, as
//! the HPA reads them) as % of each pod's requests, request rates from the
//! cluster's Prometheus when it answers, else from the load engine, and
//! latency and errors from the load engine. It calls the script in its
//! sandbox and settles the result as the embedded cluster does
//! (`lua::policy::outcome`: the same clamp, events and status). A new size
//! goes to the Deployment's scale subresource with an events.k8s.io Event
//! like the HPA's; a failing call holds and posts a Warning. Its events are
//! recorded directly; their copies from the Events watch are dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::Store;
use kube::Client;

use super::controller::{self, Note};
use super::prometheus::PodRates;
use super::{api_message, convert, lock, Seen};
use crate::lua::policy::{LuaScaler, Metrics};
use crate::lua::Policy;
use crate::recorder::Event;

/// The field manager of the policy's scale writes, apart from the run's
/// apply, so managedFields say who resized the Deployment.
pub const LUA_MANAGER: &str = "autoscale-harness-lua";

/// The policy and what it last decided, shared between its task and the
/// recording loop (which feeds it the load engine's samples and records
/// its status).
pub struct PolicyRun {
    pub scaler: LuaScaler,
    /// The size the last call wanted; none before the first.
    pub desired: Option<i32>,
}

pub type Shared = Arc<Mutex<PolicyRun>>;

/// The policy's task: one call per interval until the run ends (the task
/// is aborted then).
pub struct Driver {
    pub client: Client,
    /// The run namespace, where the Deployment is.
    pub ns: String,
    pub deployment: String,
    pub policy: Shared,
    pub deploy: Store<Deployment>,
    pub pods: Store<Pod>,
    pub seen: Arc<Mutex<Seen>>,
    pub rates: Arc<Mutex<PodRates>>,
    /// Unix seconds at experiment t = 0, and the same instant on tokio's clock.
    pub t0: f64,
    pub start: tokio::time::Instant,
}

impl Driver {
    pub async fn run(self) {
        let interval = lock(&self.policy).scaler.policy().interval;
        let mut k = 1u32;
        loop {
            tokio::time::sleep_until(self.start + interval * k).await;
            let events = self.call().await;
            lock(&self.seen).own_events.extend(events);
            // A call that outlasted its interval (a slow API server) skips
            // the instants it missed instead of running them back to back.
            let done = self.start.elapsed().as_secs_f64() / interval.as_secs_f64();
            k = k.max(done.floor() as u32) + 1;
        }
    }

    /// One call at the present instant, acted on; its events.
    async fn call(&self) -> Vec<Event> {
        let at = jiff::Timestamp::now();
        let now = at.as_millisecond() as f64 / 1000.0 - self.t0;
        // The Deployment was Available at t = 0; while a relist refills the
        // store there is nothing to size, and the next interval calls again.
        let Some(spec) = self
            .deploy
            .state()
            .first()
            .and_then(|d| d.spec.as_ref()?.replicas)
        else {
            return Vec::new();
        };
        let pods: Vec<Pod> = self.pods.state().iter().map(|p| (**p).clone()).collect();
        let usage = lock(&self.seen).usage.clone();
        let rates = {
            let r = lock(&self.rates);
            // Failing now: nil, not zero.
            (r.answered && r.error.is_none()).then(|| r.qps.clone())
        };
        let mut o = {
            let mut p = lock(&self.policy);
            let policy = p.scaler.policy();
            let load_qps = p.scaler.ledger().rate(now, policy.interval.as_secs_f64());
            let m = metrics(now, spec, &pods, &usage, rates.as_ref(), load_qps, policy);
            let (r, logs) = p.scaler.call(m);
            let o = p.scaler.settle(now, spec, r, logs);
            p.desired = Some(o.desired);
            o
        };
        if let Some(n) = o.new_size {
            if let Err(e) =
                controller::scale(&self.client, &self.ns, &self.deployment, n, LUA_MANAGER).await
            {
                // As the HPA says it: the size asked for, and why it is not so.
                if let Some(ev) = o.events.iter_mut().find(|e| e.is_rescale()) {
                    ev.type_ = "Warning".into();
                    ev.reason = "FailedRescale".into();
                    ev.message = format!("{}; error: {}", ev.message, api_message(&e));
                    (ev.from_replicas, ev.to_replicas) = (None, None);
                }
            }
        }
        let regarding = controller::reference("apps/v1", "Deployment", &self.deployment, &self.ns);
        for ev in &mut o.events {
            ev.cluster_time = Some(at.to_string());
            // The script's log lines are the run's record, not the cluster's.
            if ev.reason == "PolicyLog" {
                continue;
            }
            let note = Note {
                type_: &ev.type_,
                reason: &ev.reason,
                action: if ev.reason == "FailedPolicy" {
                    "RunPolicy"
                } else {
                    "Scale"
                },
                note: &ev.message,
            };
            if let Err(e) =
                controller::post(&self.client, &self.ns, regarding.clone(), note, at).await
            {
                // It happened; only `kubectl describe` will not show it.
                ev.message
                    .push_str(&format!(" (its Event could not be posted: {e})"));
            }
        }
        o.events
    }
}

/// The sum of a pod's container requests of `resource`, in the unit
/// `parse` gives, when it has some.
fn requests(p: &Pod, resource: &str, parse: fn(&str) -> Option<f64>) -> Option<f64> {
    let total: f64 = p
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
        .filter_map(|q| parse(&q.0))
        .sum();
    (total > 0.0).then_some(total)
}

/// What a call sees at experiment time `now` on a Deployment of
/// `spec_replicas` with `pods` (its pods, as the watch has them):
/// - CPU and memory of the ready pods from `usage` (pod → millicores,
///   bytes: the metrics API's last answer), as % of each pod's requests,
///   averaged; `nil` without an answer or without requests;
/// - request rates from Prometheus (`pod_qps`, when it has answered and has
///   a series for a ready pod: the route's rate is their sum), else from the
///   load engine (`load_qps`: requests completed per second over the
///   interval), shared by the ready pods.
pub fn metrics(
    now: f64,
    spec_replicas: i32,
    pods: &[Pod],
    usage: &BTreeMap<String, (f64, u64)>,
    pod_qps: Option<&BTreeMap<String, f64>>,
    load_qps: Option<f64>,
    policy: &Policy,
) -> Metrics {
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| !convert::is_terminating(p))
        .collect();
    let ready: Vec<&Pod> = live
        .iter()
        .copied()
        .filter(|p| convert::is_ready(p))
        .collect();
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let milli = |q: &str| {
        crate::autoscaler::parse_quantity_milli(q)
            .ok()
            .map(|m| m as f64)
    };
    let bytes = |q: &str| crate::autoscaler::parse_quantity_f64(q).ok();
    let measured: Vec<(&Pod, (f64, u64))> = ready
        .iter()
        .filter_map(|p| Some((*p, *usage.get(&name(p))?)))
        .collect();
    let pct = |resource: &str, parse: fn(&str) -> Option<f64>, used: fn((f64, u64)) -> f64| {
        mean(
            measured
                .iter()
                .filter_map(|(p, u)| Some(used(*u) / requests(p, resource, parse)? * 100.0))
                .collect(),
        )
    };
    let n_ready = ready.len() as f64;
    let prometheus = pod_qps.and_then(|q| {
        let rates: Vec<f64> = ready
            .iter()
            .filter_map(|p| q.get(&name(p)).copied())
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>())
    });
    let qps = prometheus.or(load_qps);
    Metrics {
        now,
        cpu: pct("cpu", milli, |u| u.0),
        memory: pct("memory", bytes, |u| u.1 as f64),
        memory_bytes: mean(measured.iter().map(|(_, u)| u.1 as f64).collect()),
        qps,
        qps_per_pod: qps.filter(|_| n_ready > 0.0).map(|q| q / n_ready),
        replicas: spec_replicas,
        current: live.len() as i32,
        ready: ready.len() as i32,
        min: policy.min,
        max: policy.max,
        interval: policy.interval.as_secs_f64(),
    }
}

/// How a run on this backend reads each metric, for `--dry-run`.
pub fn describe(p: &Policy, deployment: &str) -> String {
    format!(
        "# not applied: the Lua policy {name} (target.autoscaler); the harness runs it every {every} from t = {every}, \
         within [{min}, {max}], on Deployment {deployment}: CPU and memory of its ready pods from metrics.k8s.io PodMetrics \
         (% of the pods' requests), request rates from kube.prometheus (else the load engine), latency and errors from \
         the load engine; a new size is PATCHed to deployments/{deployment}/scale (field manager {LUA_MANAGER}) and \
         posted as an events.k8s.io/v1 Event (reportingController {rc})\n",
        name = p.name,
        every = crate::scenario::fmt_dur(p.interval),
        min = p.min,
        max = p.max,
        rc = controller::REPORTING_CONTROLLER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pod(name: &str, ready: bool, cpu_req: Option<&str>) -> Pod {
        let mut resources = serde_json::json!({});
        if let Some(r) = cpu_req {
            resources = serde_json::json!({"requests": {"cpu": r, "memory": "64Mi"}});
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "httpbin", "resources": resources}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    fn policy() -> Policy {
        Policy {
            name: "p.lua".into(),
            source: String::new(),
            interval: Duration::from_secs(15),
            min: 1,
            max: 10,
        }
    }

    #[test]
    fn cpu_and_memory_of_the_ready_pods_as_a_share_of_their_requests() {
        let pods = [
            pod("a", true, Some("100m")),
            pod("b", true, Some("200m")),
            pod("c", false, Some("100m")),
        ];
        let usage = BTreeMap::from([
            ("a".to_string(), (90.0, 32 * 1024 * 1024)),
            ("b".to_string(), (100.0, 64 * 1024 * 1024)),
            // Not ready: not counted, as the HPA does not count it.
            ("c".to_string(), (500.0, 0)),
        ]);
        let m = metrics(30.0, 3, &pods, &usage, None, Some(12.0), &policy());
        assert_eq!(m.cpu, Some((90.0 + 50.0) / 2.0));
        assert_eq!(m.memory, Some((50.0 + 100.0) / 2.0));
        assert_eq!(m.memory_bytes, Some(48.0 * 1024.0 * 1024.0));
        assert_eq!((m.replicas, m.current, m.ready), (3, 3, 2));
        assert_eq!((m.qps, m.qps_per_pod), (Some(12.0), Some(6.0)));
        assert_eq!((m.now, m.min, m.max, m.interval), (30.0, 1, 10, 15.0));
    }

    #[test]
    fn no_metrics_api_answer_or_no_request_is_nil() {
        let pods = [pod("a", true, None), pod("b", true, Some("100m"))];
        let m = metrics(15.0, 2, &pods, &BTreeMap::new(), None, None, &policy());
        assert_eq!((m.cpu, m.memory, m.memory_bytes), (None, None, None));
        assert_eq!((m.qps, m.qps_per_pod), (None, None));
        // A pod without a CPU request has no utilization.
        let usage = BTreeMap::from([("a".to_string(), (50.0, 1))]);
        let m = metrics(15.0, 2, &pods, &usage, None, None, &policy());
        assert_eq!(m.cpu, None);
    }

    #[test]
    fn prometheus_rates_when_it_has_the_pods_else_the_load_engine() {
        let pods = [pod("a", true, Some("100m")), pod("b", true, Some("100m"))];
        let none = BTreeMap::new();
        let rates = BTreeMap::from([("a".to_string(), 4.0), ("b".to_string(), 6.0)]);
        let m = metrics(15.0, 2, &pods, &none, Some(&rates), Some(99.0), &policy());
        assert_eq!((m.qps, m.qps_per_pod), (Some(10.0), Some(5.0)));
        let other = BTreeMap::from([("elsewhere".to_string(), 4.0)]);
        let m = metrics(15.0, 2, &pods, &none, Some(&other), Some(8.0), &policy());
        assert_eq!((m.qps, m.qps_per_pod), (Some(8.0), Some(4.0)));
    }
}
