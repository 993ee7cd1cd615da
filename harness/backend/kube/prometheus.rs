//! Per-pod request rates from the cluster's Prometheus, reached through the
//! API server's service proxy, so Fig. 8 and `pod_qps` work on a real
//! cluster. Pods cannot be asked directly (httpbin exports no metrics; on
//! kind the rate is Envoy's per-endpoint counter joined to the pod by IP,
//! see manifests/kind/README.md). Without a Prometheus the run says per-pod
//! load is not observable instead of drawing zeros.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use serde::Deserialize;

use crate::scenario::Prometheus;

/// Prometheus's own scrape and rule interval on the kind setup.
const EVERY: Duration = Duration::from_secs(15);

/// What the poller has learnt so far.
#[derive(Debug, Default, Clone)]
pub struct PodRates {
    /// Pod name → requests per second, from the last answer.
    pub qps: BTreeMap<String, f64>,
    /// Whether any query has been answered.
    pub answered: bool,
    /// Why the last query failed, one line; `None` once one is answered.
    pub error: Option<String>,
}

/// The API server path that proxies `query` to the Prometheus service, with
/// `$namespace` in the query replaced by the run's namespace.
pub fn query_path(p: &Prometheus, run_ns: &str) -> String {
    let (ns, name, port) = p.parts();
    let query = p.query.replace("$namespace", run_ns);
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &query)
        .finish();
    let svc = match port {
        Some(port) => format!("{name}:{port}"),
        None => name.to_string(),
    };
    format!("/api/v1/namespaces/{ns}/services/{svc}/proxy/api/v1/query?{q}")
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// [unix time, "value"]
    value: (f64, String),
}

/// Pod → rate from an instant-vector answer; series without a `pod` label
/// or with a value that is not a finite number are skipped.
pub fn parse(body: &str) -> Result<BTreeMap<String, f64>, String> {
    let a: Answer =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if a.status != "success" {
        return Err(a.error.unwrap_or(a.status));
    }
    let data = a.data.ok_or("an answer without data")?;
    if data.result_type != "vector" {
        return Err(format!(
            "the query gives a {}, not an instant vector",
            data.result_type
        ));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|s| {
            let v: f64 = s.value.1.parse().ok().filter(|v: &f64| v.is_finite())?;
            Some((s.metric.get("pod")?.clone(), v))
        })
        .collect())
}

/// Polls every `EVERY` into `rates` until aborted.
pub async fn poll(client: Client, path: String, rates: Arc<Mutex<PodRates>>) {
    loop {
        let req = hyper::Request::get(path.as_str()).body(Vec::new());
        let got = match req {
            Ok(r) => client
                .request_text(r)
                .await
                .map_err(|e| super::api_message(&e))
                .and_then(|b| parse(&b)),
            Err(e) => Err(e.to_string()),
        };
        {
            let mut r = super::lock(&rates);
            match got {
                Ok(qps) => {
                    r.qps = qps;
                    r.answered = true;
                    r.error = None;
                }
                // The rates are kept for the samples, whose per-pod rate
                // has no "unknown" (zeros would read as no traffic); the
                // outage's events bracket them, and a Lua policy reads nil.
                Err(e) => r.error = Some(crate::recorder::one_line(&e)),
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_through_the_service_proxy_with_the_run_namespace() {
        let p = Prometheus::default();
        let path = query_path(&p, "autoscale-ramp-abc123");
        assert!(
            path.starts_with(
                "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query?query="
            ),
            "{path}"
        );
        assert!(path.contains("autoscale-ramp-abc123"), "{path}");
        assert!(!path.contains(' ') && !path.contains('"'), "{path}");
    }

    #[test]
    fn the_default_query_reads_series_the_kind_setup_records() {
        // Both kinds of scale target: pods behind the gateway and the
        // gateway's own proxies (manifests/kind/values/prometheus.yaml).
        let rules = include_str!("../../../manifests/kind/values/prometheus.yaml");
        let q = Prometheus::default().query;
        for series in [
            "pod:envoy_endpoint_rq:rate1m",
            "pod:envoy_downstream_rq:rate1m",
        ] {
            assert!(q.contains(series), "{q}");
            assert!(rules.contains(&format!("record: {series}")), "{series}");
        }
    }

    #[test]
    fn answers_become_rates_per_pod() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a"},"value":[1.0,"2.5"]},
            {"metric":{"pod":"b"},"value":[1.0,"NaN"]},
            {"metric":{},"value":[1.0,"7"]}]}}"#;
        assert_eq!(parse(body).unwrap(), BTreeMap::from([("a".into(), 2.5)]));
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(parse(bad).unwrap_err(), "parse error at char 3");
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse(matrix).unwrap_err().contains("matrix"));
    }
}
