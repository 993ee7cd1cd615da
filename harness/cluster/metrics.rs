//! The embedded metrics pipeline: scrapes cumulative counters (pod CPU busy
//! time, gateway requests per pod and per route) every scrape interval and
//! answers the HPA's metric queries over a window, as metrics-server,
//! Prometheus `rate()` and prometheus-adapter would.
//!
//! QPS metrics: a Pods metric, an External metric or an Object metric on an
//! HTTPRoute whose name contains `qps` or `requests_per_second` reads the
//! gateway's request rate (per pod, per route matched by the selector against
//! the HTTPRoute's labels, or for the named route). Other custom metric names
//! are answered with the adapter's "not found" error, as a real adapter would.

use std::collections::{BTreeMap, HashMap, VecDeque};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::autoscaler::{ContainerUsage, Millis, PodMetricValue, PodResourceMetric};

/// One scrape of one counter set.
#[derive(Debug, Clone, Copy)]
struct Point {
    t: f64,
    cpu_ns: u64,
    requests: u64,
    memory: u64,
}

#[derive(Debug, Default)]
pub struct History {
    pods: HashMap<String, VecDeque<Point>>,
    routes: HashMap<String, VecDeque<(f64, u64)>>,
    keep: f64,
}

/// A pod's counters at a scrape (cumulative; `cpu_ns` in nanoseconds of
/// experiment time: the driver converts a real pod's CPU with its clock).
pub struct PodCounters {
    pub name: String,
    pub cpu_ns: u64,
    pub requests: u64,
    pub memory: u64,
}

impl History {
    pub fn new(keep: f64) -> Self {
        Self {
            keep,
            ..Default::default()
        }
    }

    /// Records one scrape at cluster time `t` (experiment seconds). Pods and
    /// routes not present are dropped from the history.
    pub fn scrape(&mut self, t: f64, pods: Vec<PodCounters>, routes: Vec<(String, u64)>) {
        let keep = self.keep;
        let live: std::collections::HashSet<String> = pods.iter().map(|p| p.name.clone()).collect();
        self.pods.retain(|k, _| live.contains(k));
        for p in pods {
            let q = self.pods.entry(p.name).or_default();
            q.push_back(Point {
                t,
                cpu_ns: p.cpu_ns,
                requests: p.requests,
                memory: p.memory,
            });
            while q.front().is_some_and(|f| f.t < t - keep) {
                q.pop_front();
            }
        }
        for (r, n) in routes {
            let q = self.routes.entry(r).or_default();
            q.push_back((t, n));
            while q.front().is_some_and(|f| f.0 < t - keep) {
                q.pop_front();
            }
        }
    }

    /// The newest point and the oldest one inside `window` before it.
    fn span<T: Copy>(q: &VecDeque<T>, window: f64, t: impl Fn(&T) -> f64) -> Option<(T, T)> {
        let last = *q.back()?;
        let first = *q.iter().find(|p| t(p) >= t(&last) - window - 1e-9)?;
        (t(&last) > t(&first)).then_some((first, last))
    }
}

/// What the HPA reads at one sync: a frozen view so the controller runs
/// without holding the cluster lock.
pub struct Snapshot {
    pub cpu: Vec<PodResourceMetric>,
    pub memory: Vec<PodResourceMetric>,
    /// Per-pod request rate, requests per experiment-second.
    pub pod_qps: BTreeMap<String, f64>,
    /// Route `namespace/name` → (labels, request rate).
    pub route_qps: Vec<(String, BTreeMap<String, String>, f64)>,
}

pub struct Windows {
    pub rate: f64,
    pub resource: f64,
    /// Container name the usage is reported under.
    pub container: String,
}

impl Snapshot {
    pub fn build(h: &History, w: &Windows, routes: &[(String, BTreeMap<String, String>)]) -> Self {
        let mut cpu = Vec::new();
        let mut memory = Vec::new();
        let mut pod_qps = BTreeMap::new();
        for (name, q) in &h.pods {
            if let Some((a, b)) = History::span(q, w.resource, |p| p.t) {
                let dt = b.t - a.t;
                // CPU seconds over experiment seconds (counters are in experiment time).
                let cores = (b.cpu_ns.saturating_sub(a.cpu_ns)) as f64 / 1e9 / dt;
                let ts: Millis = (b.t * 1000.0).round() as Millis;
                let win: Millis = (dt * 1000.0).round() as Millis;
                cpu.push(PodResourceMetric {
                    pod: name.clone(),
                    timestamp: ts,
                    window: win,
                    containers: vec![ContainerUsage {
                        name: w.container.clone(),
                        usage: [("cpu".to_string(), (cores * 1000.0).round() as i64)].into(),
                    }],
                });
                memory.push(PodResourceMetric {
                    pod: name.clone(),
                    timestamp: ts,
                    window: win,
                    containers: vec![ContainerUsage {
                        name: w.container.clone(),
                        usage: [("memory".to_string(), (b.memory as i64).saturating_mul(1000))]
                            .into(),
                    }],
                });
            }
            if let Some((a, b)) = History::span(q, w.rate, |p| p.t) {
                pod_qps.insert(
                    name.clone(),
                    b.requests.saturating_sub(a.requests) as f64 / (b.t - a.t),
                );
            }
        }
        cpu.sort_by(|a, b| a.pod.cmp(&b.pod));
        memory.sort_by(|a, b| a.pod.cmp(&b.pod));
        let route_qps = routes
            .iter()
            .filter_map(|(name, labels)| {
                let q = h.routes.get(name)?;
                let (a, b) = History::span(q, w.rate, |p| p.0)?;
                Some((
                    name.clone(),
                    labels.clone(),
                    b.1.saturating_sub(a.1) as f64 / (b.0 - a.0),
                ))
            })
            .collect();
        Snapshot {
            cpu,
            memory,
            pod_qps,
            route_qps,
        }
    }
}

pub fn is_qps_metric(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("qps") || n.contains("requests_per_second")
}

/// matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).
pub fn selector_matches(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = sel else { return true };
    let ml_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let me_ok = sel.match_expressions.iter().flatten().all(|e| {
        let vals = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| vals.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !vals.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    ml_ok && me_ok
}

fn milli(x: f64) -> i64 {
    (x * 1000.0).round() as i64
}

impl crate::autoscaler::MetricsSource for Snapshot {
    fn resource_metrics(&self, resource: &str) -> Result<Vec<PodResourceMetric>, String> {
        let v = match resource {
            "cpu" => &self.cpu,
            "memory" => &self.memory,
            other => return Err(format!("no metrics known for resource {other}")),
        };
        if v.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        Ok(v.clone())
    }

    fn pods_metric(
        &self,
        metric: &str,
        _selector: Option<&LabelSelector>,
    ) -> Result<Vec<PodMetricValue>, String> {
        if !is_qps_metric(metric) {
            return Err(format!(
                "the server could not find the metric {metric} for pods"
            ));
        }
        if self.pod_qps.is_empty() {
            return Err(format!("no metrics returned for {metric}"));
        }
        Ok(self
            .pod_qps
            .iter()
            .map(|(p, q)| PodMetricValue {
                pod: p.clone(),
                value: milli(*q),
            })
            .collect())
    }

    fn object_metric(
        &self,
        metric: &str,
        object: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
        _selector: Option<&LabelSelector>,
    ) -> Result<i64, String> {
        if !is_qps_metric(metric) || object.kind != "HTTPRoute" {
            return Err(format!(
                "the server could not find the metric {metric} for {} {}",
                object.kind, object.name
            ));
        }
        self.route_qps
            .iter()
            .find(|(n, _, _)| n.rsplit('/').next() == Some(object.name.as_str()))
            .map(|(_, _, q)| milli(*q))
            .ok_or_else(|| format!("no metrics returned for HTTPRoute {}", object.name))
    }

    fn external_metric(
        &self,
        metric: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<i64>, String> {
        if !is_qps_metric(metric) {
            return Err(format!(
                "the server could not find the requested resource ({metric})"
            ));
        }
        let v: Vec<i64> = self
            .route_qps
            .iter()
            .filter(|(_, labels, _)| selector_matches(selector, labels))
            .map(|(_, _, q)| milli(*q))
            .collect();
        if v.is_empty() {
            return Err(format!(
                "no metrics returned from external metrics API for {metric}"
            ));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaler::MetricsSource;

    #[test]
    fn rates_and_cpu_over_their_windows() {
        let mut h = History::new(120.0);
        for i in 0..=6u64 {
            let t = i as f64 * 15.0;
            h.scrape(
                t,
                vec![PodCounters {
                    name: "p".into(),
                    // 30 req/s; 100 ms of CPU per second = 10% of a core.
                    cpu_ns: i * 15 * 100_000_000,
                    requests: i * 15 * 30,
                    memory: 1 << 20,
                }],
                vec![("default/r".into(), i * 15 * 60)],
            );
        }
        let labels: BTreeMap<String, String> = [("route".to_string(), "x".to_string())].into();
        let s = Snapshot::build(
            &h,
            &Windows {
                rate: 60.0,
                resource: 30.0,
                container: "c".into(),
            },
            &[("default/r".into(), labels)],
        );
        let pm = s.pods_metric("http_requests_per_second", None).unwrap();
        assert_eq!((pm[0].pod.as_str(), pm[0].value), ("p", 30_000));
        assert_eq!(s.cpu[0].containers[0].usage["cpu"], 100);
        assert_eq!(s.cpu[0].window, 30_000);
        assert_eq!(
            s.external_metric("sls_ingress_qps", None).unwrap(),
            vec![60_000]
        );
        let sel = LabelSelector {
            match_labels: Some([("route".to_string(), "y".to_string())].into()),
            ..Default::default()
        };
        assert!(s.external_metric("sls_ingress_qps", Some(&sel)).is_err());
        assert!(s.pods_metric("memory_pressure", None).is_err());
    }
}
