//! The gateway's admin listener: `/healthz`, `/ready` and the Prometheus
//! text exposition of the gateway's counters on `/metrics`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::Inner;

pub(super) fn admin(inner: &Inner, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(inner),
        ),
        "/healthz" | "/ready" => (StatusCode::OK, "text/plain", "ok".to_owned()),
        // Envoy's admin: the process exits (and kubelet restarts it).
        "/quitquitquit" if req.method() == hyper::Method::POST => {
            inner.quit.send_replace(true);
            (StatusCode::OK, "text/plain", "OK\n".to_owned())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_owned()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// Prometheus label value escaping.
fn esc(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

fn metrics_text(inner: &Inner) -> String {
    use std::fmt::Write as _;
    let st = inner.stats();
    let mut o = String::with_capacity(4096);
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        &mut o,
        "gateway_requests_total",
        "counter",
        "Requests received by the gateway.",
    );
    let _ = writeln!(o, "gateway_requests_total {}", st.requests_total);
    head(
        &mut o,
        "gateway_in_flight",
        "gauge",
        "Requests received and not yet answered.",
    );
    let _ = writeln!(o, "gateway_in_flight {}", st.in_flight);
    head(
        &mut o,
        "process_cpu_seconds_total",
        "counter",
        "CPU time the gateway has spent, in seconds (its capacity model).",
    );
    let _ = writeln!(
        o,
        "process_cpu_seconds_total {}",
        st.cpu_busy_ns as f64 / 1e9
    );
    head(
        &mut o,
        "process_resident_memory_bytes",
        "gauge",
        "Memory of the gateway (its capacity model).",
    );
    let _ = writeln!(o, "process_resident_memory_bytes {}", st.memory_bytes);
    head(
        &mut o,
        "gateway_no_route_requests_total",
        "counter",
        "Requests that matched no HTTPRoute (answered 404).",
    );
    let _ = writeln!(o, "gateway_no_route_requests_total {}", st.no_route_total);
    head(
        &mut o,
        "gateway_route_requests_total",
        "counter",
        "Requests per HTTPRoute by response status class.",
    );
    for r in &st.routes {
        let route = esc(&r.route);
        for (class, n) in [
            ("2xx", r.responses_2xx),
            ("3xx", r.responses_3xx),
            ("4xx", r.responses_4xx),
            ("5xx", r.responses_5xx),
        ] {
            let _ = writeln!(
                o,
                "gateway_route_requests_total{{route=\"{route}\",code_class=\"{class}\"}} {n}"
            );
        }
    }
    head(
        &mut o,
        "gateway_upstream_requests_total",
        "counter",
        "Requests forwarded to each pod.",
    );
    for p in &st.pods {
        let _ = writeln!(
            o,
            "gateway_upstream_requests_total{{pod=\"{}\"}} {}",
            esc(&p.pod),
            p.requests_total
        );
    }
    head(
        &mut o,
        "gateway_upstream_in_flight",
        "gauge",
        "Requests forwarded to each pod and not yet answered.",
    );
    for p in &st.pods {
        let _ = writeln!(
            o,
            "gateway_upstream_in_flight{{pod=\"{}\"}} {}",
            esc(&p.pod),
            p.in_flight
        );
    }
    head(
        &mut o,
        "gateway_upstream_errors_total",
        "counter",
        "Upstream failures per pod (connect/reset or timeout).",
    );
    for p in &st.pods {
        let _ = writeln!(
            o,
            "gateway_upstream_errors_total{{pod=\"{}\"}} {}",
            esc(&p.pod),
            p.upstream_errors
        );
    }
    head(
        &mut o,
        "gateway_upstream_timeouts_total",
        "counter",
        "Upstream requests that timed out (answered 504).",
    );
    let _ = writeln!(
        o,
        "gateway_upstream_timeouts_total {}",
        st.upstream_timeouts
    );
    head(
        &mut o,
        "gateway_service_endpoints",
        "gauge",
        "Ready endpoints per backend Service and port.",
    );
    let services = inner.services.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys: Vec<_> = services.values().collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    for s in keys {
        let n = s.endpoints.read().unwrap_or_else(|e| e.into_inner()).len();
        let (svc, port) = s.key.rsplit_once(':').unwrap_or((&s.key, ""));
        let _ = writeln!(
            o,
            "gateway_service_endpoints{{service=\"{}\",port=\"{port}\"}} {n}",
            esc(svc)
        );
    }
    o
}
