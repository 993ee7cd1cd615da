//! The gateway's request path: pick a rule's backend Service and one of its
//! ready endpoints (round robin or least request), forward the request, and
//! keep the pod's in-flight count up until the response body is done.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::http::uri::PathAndQuery;
use hyper::{HeaderMap, Request, Response, StatusCode, Uri, Version};

use super::routes::RuleTarget;
use super::upstream::{Upstream, UpstreamBody, UpstreamError};
use super::{Inner, LbPolicy, LiveEndpoint, PodCounters, ServiceSlot};
use crate::fine_timer;

type ProxyBody = Either<CountedBody, Full<Bytes>>;

fn local_reply(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *r.status_mut() = status;
    if !body.is_empty() {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    r
}

/// Keeps the pod's in-flight count up until the response body is done.
pub(super) struct InFlight(pub(super) Arc<PodCounters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes one off a gauge when the request is answered, however it ends.
pub(super) struct Gauge<'a>(pub(super) &'a std::sync::atomic::AtomicU64);

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upstream body streamed through, holding the in-flight guard.
pub(super) struct CountedBody {
    inner: UpstreamBody,
    _guard: InFlight,
}

impl Body for CountedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// Names built once: a `&str` name is parsed (and hashed) on every lookup,
// which was a visible share of the gateway's own CPU per request.
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers (RFC 9110 §7.6.1, and the legacy ones proxies drop),
/// and Transfer-Encoding: framing is re-done by hyper on each hop.
fn is_hop_by_hop(n: &HeaderName) -> bool {
    n == CONNECTION
        || n == TE
        || n == TRAILER
        || n == UPGRADE
        || n == PROXY_AUTHENTICATE
        || n == PROXY_AUTHORIZATION
        || n == TRANSFER_ENCODING
        || n == KEEP_ALIVE
        || n == PROXY_CONNECTION
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages carry none: one pass over the names, no lookups.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    if let Some(c) = h.get(CONNECTION) {
        // Headers named in Connection are hop-by-hop too.
        let named: Vec<HeaderName> = c
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|n| HeaderName::try_from(n.trim()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    let present: Vec<HeaderName> = h.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    for n in present {
        h.remove(n);
    }
}

fn pick_endpoint(eps: &[LiveEndpoint], slot: &ServiceSlot, policy: LbPolicy) -> usize {
    let n = slot.next.fetch_add(1, Ordering::Relaxed);
    let len = eps.len() as u64;
    match policy {
        LbPolicy::RoundRobin => (n % len) as usize,
        LbPolicy::LeastRequest => {
            if len == 1 {
                return 0;
            }
            // Two distinct pseudo-random candidates from the counter.
            let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let a = (h >> 32) % len;
            let b = (a + 1 + (h & 0xFFFF_FFFF) % (len - 1)) % len;
            let load = |i: u64| eps[i as usize].counters.in_flight.load(Ordering::Relaxed);
            (if load(b) < load(a) { b } else { a }) as usize
        }
    }
}

/// One of the rule's ready endpoints, with the request counted as sent to
/// its pod (in flight until the guard drops); or the gateway's own answer
/// when there is none.
pub(super) fn choose_endpoint(
    inner: &Inner,
    target: &RuleTarget,
) -> Result<(InFlight, Arc<Upstream>), (StatusCode, &'static str)> {
    // Spec: a rule whose backends are all invalid/zero-weight answers 500.
    let Some(slot) = target.pick() else {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "no valid backend"));
    };
    let eps = slot
        .endpoints
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if eps.is_empty() {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"));
    }
    let ep = &eps[pick_endpoint(&eps, slot, inner.opts.lb_policy)];
    let pc = ep.counters.clone();
    pc.requests.fetch_add(1, Ordering::Relaxed);
    pc.in_flight.fetch_add(1, Ordering::Relaxed);
    Ok((InFlight(pc), ep.upstream.clone()))
}

pub(super) async fn proxy(
    inner: Arc<Inner>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    inner.requests_total.fetch_add(1, Ordering::Relaxed);
    inner.in_flight.fetch_add(1, Ordering::Relaxed);
    let _in_flight = Gauge(&inner.in_flight);
    if let Some(slots) = &inner.slots {
        // The instance's own work (parsing, routing) before it forwards.
        let (_, done) = slots.reserve();
        if done > tokio::time::Instant::now() {
            fine_timer::sleep_until(done).await;
        }
    }
    let table = inner
        .table
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(entry) = table.find(&req) else {
        inner.no_route.fetch_add(1, Ordering::Relaxed);
        return local_reply(StatusCode::NOT_FOUND, "");
    };
    let target = entry.target.clone();
    drop(table);
    let rc = &target.counters;
    rc.requests.fetch_add(1, Ordering::Relaxed);
    let resp = forward(&inner, &target, req, peer).await;
    rc.record(resp.status());
    resp
}

async fn forward(
    inner: &Inner,
    target: &RuleTarget,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    let (guard, upstream) = match choose_endpoint(inner, target) {
        Ok(chosen) => chosen,
        Err((status, body)) => return local_reply(status, body),
    };

    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key(HOST) {
        // HTTP/2 carries the host in :authority; HTTP/1.1 upstreams need Host.
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(HOST, v);
        }
    }
    if !parts.headers.contains_key(HOST) {
        // An HTTP/1.0 request without one: the endpoint's, as a client would.
        if let Ok(v) = HeaderValue::try_from(upstream.addr().to_string()) {
            parts.headers.insert(HOST, v);
        }
    }
    // Origin form: the connection is to the endpoint already.
    parts.uri = Uri::from(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    let xff = match parts
        .headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
        parts.headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    parts
        .headers
        .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));

    let timeout = target.timeout.unwrap_or(inner.opts.upstream_timeout);
    match upstream
        .send(Request::from_parts(parts, body), timeout)
        .await
    {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(
                parts,
                Either::Left(CountedBody {
                    inner: body,
                    _guard: guard,
                }),
            )
        }
        Err(UpstreamError::Reset) => {
            guard.0.errors.fetch_add(1, Ordering::Relaxed);
            inner.upstream_errors.fetch_add(1, Ordering::Relaxed);
            local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers",
            )
        }
        Err(UpstreamError::Timeout) => {
            guard.0.errors.fetch_add(1, Ordering::Relaxed);
            inner.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
            local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::super::tests::{ep, pod, route, ROUTE_YAML, T};
    use super::super::{Endpoint, Gateway, GatewayOptions};
    use super::*;
    use crate::backend::local::pod::http::http_get;
    use crate::backend::local::pod::{PodHandle, PodModel, PodSpecKind};

    #[tokio::test]
    async fn weighted_backends_and_upstream_failures() {
        let r = route(
            r#"
metadata: { name: split, namespace: ns1 }
spec:
  rules:
    - backendRefs:
        - { name: a, port: 80, weight: 3 }
        - { name: b, port: 80, weight: 1 }
        - { name: c, port: 80, weight: 0 }
"#,
        );
        let opts = GatewayOptions {
            upstream_timeout: Duration::from_millis(200),
            ..GatewayOptions::default()
        };
        let gw = Gateway::start(&[r], opts).await.unwrap();
        let (pa, pb) = (pod("a-0").await, pod("b-0").await);
        gw.set_endpoints("ns1/a", 80, vec![ep(&pa)]).unwrap();
        gw.set_endpoints("ns1/b", 80, vec![ep(&pb)]).unwrap();
        let mut counts = HashMap::new();
        for _ in 0..8 {
            let (_, h, _) = http_get(gw.addr(), "/get", None, T).await.unwrap();
            *counts
                .entry(h["x-pod"].to_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        assert_eq!((counts["a-0"], counts["b-0"]), (6, 2));

        // Upstream timeout → 504 (delay 1 s > 200 ms).
        gw.set_endpoints("ns1/a", 80, vec![ep(&pa)]).unwrap();
        gw.set_endpoints("ns1/b", 80, vec![ep(&pa)]).unwrap();
        let (s, _, b) = http_get(gw.addr(), "/delay/1", None, T).await.unwrap();
        assert_eq!(
            (s.as_u16(), &b[..]),
            (504, &b"upstream request timeout"[..])
        );

        // Dead endpoint → 503, counted as upstream error.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dead_ep = Endpoint {
            pod: "dead-0".into(),
            addr: dead,
        };
        gw.set_endpoints("ns1/a", 80, vec![dead_ep.clone()])
            .unwrap();
        gw.set_endpoints("ns1/b", 80, vec![dead_ep]).unwrap();
        assert_eq!(http_get(gw.addr(), "/get", None, T).await.unwrap().0, 503);
        let st = gw.stats();
        assert_eq!((st.upstream_errors, st.upstream_timeouts), (1, 1));
        let dead = st.pods.iter().find(|p| p.pod == "dead-0").unwrap();
        assert_eq!((dead.upstream_errors, dead.in_flight), (1, 0));

        // Non-loopback endpoints are refused.
        let far = Endpoint {
            pod: "x".into(),
            addr: "10.0.0.1:80".parse().unwrap(),
        };
        assert!(gw.set_endpoints("ns1/a", 80, vec![far]).is_err());
        gw.shutdown().await;
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Debug"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "close"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-debug", "1"),
            ("accept", "*/*"),
            ("x-pod", "a"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h.append("x-pod", HeaderValue::from_static("b"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        left.sort();
        assert_eq!(left, [("accept", "*/*"), ("x-pod", "a"), ("x-pod", "b")]);
        // Nothing to strip: the map is left as it was.
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    /// Rough throughput of gateway + pod on loopback; run with
    /// `cargo test --release -- --ignored --nocapture throughput`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn throughput() {
        let gw = Gateway::start(&[route(ROUTE_YAML)], GatewayOptions::default())
            .await
            .unwrap();
        let m = PodModel {
            concurrency: 64,
            service_time: Duration::from_micros(600),
            cpu_per_request: Duration::from_micros(600),
            memory_base_bytes: 0,
            memory_per_inflight_bytes: 0,
        };
        let mut pods = Vec::new();
        for i in 0..4 {
            pods.push(
                PodHandle::start(&format!("p{i}"), &PodSpecKind::Builtin(m.clone()), 1.0)
                    .await
                    .unwrap(),
            );
        }
        gw.set_endpoints("httpbin-svc", 8080, pods.iter().map(ep).collect())
            .unwrap();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let uri: Uri = format!("http://{}/get", gw.addr()).parse().unwrap();
        let dur = Duration::from_secs(3);
        let t0 = std::time::Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (c, u) = (client.clone(), uri.clone());
            set.spawn(async move {
                let mut n = 0u64;
                while t0.elapsed() < dur {
                    let req = Request::get(u.clone())
                        .header(HOST, "httpbin.example.com")
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let r = c.request(req).await.unwrap();
                    assert_eq!(r.status(), 200);
                    http_body_util::BodyExt::collect(r.into_body())
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            });
        }
        let mut total = 0;
        while let Some(n) = set.join_next().await {
            total += n.unwrap();
        }
        eprintln!(
            "throughput: {:.0} req/s",
            total as f64 / t0.elapsed().as_secs_f64()
        );
    }
}
