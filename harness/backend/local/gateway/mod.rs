//! The local backend's gateway: a real reverse proxy on 127.0.0.1 configured
//! from Gateway API HTTPRoutes, balancing over the ready pods of each Service.
//!
//! Hot path: one `RwLock` read + `Arc` clone for the route table, one for the
//! chosen Service's endpoint list, atomics for counters. Endpoint updates swap
//! a whole new list, so readers never wait on writers for long.
//!
//! Behaviour mirrors Envoy where the spec leaves room: no route → 404, no
//! ready endpoint → 503 `no healthy upstream`, upstream connect/reset → 503,
//! upstream timeout → 504. `parentRefs` are not checked: every route given
//! to the gateway is attached to it.
//!
//! This module holds the [`Gateway`] handle, its options, the shared state
//! and the traffic counters behind [`GatewayStats`]. The HTTPRoute
//! compilation lives in `routes`, the request path in `proxy`, the admin
//! listener and its Prometheus text in `admin`.

mod admin;
mod plain;
mod proxy;
mod routes;
mod upstream;

pub use routes::RouteError;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use gateway_api::apis::standard::httproutes::HttpRoute;
use hyper::StatusCode;
use tokio::net::TcpListener;

use super::pod::http::{spawn_conn_server, spawn_server, ServerHandle};
use super::slots::Slots;
use routes::{compile, RouteTable};
use upstream::Upstream;

/// Gateway settings. Durations are real time.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayOptions {
    /// Time to wait for upstream response headers before answering 504.
    pub upstream_timeout: Duration,
    pub lb_policy: LbPolicy,
    /// Speed factor N of the experiment: HTTPRoute rule `timeouts` (experiment
    /// time) are divided by it. 1.0 = real time.
    pub time_scale: f64,
    /// How long `shutdown` lets in-flight requests finish.
    pub shutdown_grace: Duration,
    /// A gateway instance's own capacity (the gateway tier); `None` for
    /// the built-in gateway, which costs nothing.
    pub capacity: Option<Capacity>,
}

/// What a gateway instance can do: each request waits for one of
/// `concurrency` workers, holds it for `service_time` and costs
/// `cpu_per_request` of CPU, before it is forwarded. Durations are real time.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub concurrency: usize,
    pub service_time: Duration,
    pub cpu_per_request: Duration,
    pub memory_base_bytes: u64,
}

/// Memory one request in flight adds, as the built-in pods report it.
const MEMORY_PER_INFLIGHT: u64 = 64 << 10;

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            upstream_timeout: Duration::from_secs(15),
            lb_policy: LbPolicy::RoundRobin,
            time_scale: 1.0,
            shutdown_grace: Duration::from_secs(5),
            capacity: None,
        }
    }
}

/// How a Service's ready endpoints share its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    /// Power of two choices on the gateway's in-flight count per pod.
    LeastRequest,
}

/// One ready endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub pod: String,
    pub addr: SocketAddr,
}

/// Cumulative counters; the caller computes rates over its own windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Every request the gateway answered or is answering.
    pub requests_total: u64,
    /// Received and not yet answered.
    pub in_flight: u64,
    /// CPU the instance has spent (its capacity model; 0 without one).
    pub cpu_busy_ns: u64,
    /// Model memory: a base plus a share per request in flight.
    pub memory_bytes: u64,
    /// Requests that matched no route (answered 404).
    pub no_route_total: u64,
    /// Upstream connect/reset failures (answered 503).
    pub upstream_errors: u64,
    /// Upstream timeouts (answered 504).
    pub upstream_timeouts: u64,
    pub routes: Vec<RouteTraffic>,
    pub pods: Vec<PodTraffic>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTraffic {
    /// `namespace/name` of the HTTPRoute.
    pub route: String,
    pub requests_total: u64,
    pub responses_2xx: u64,
    pub responses_3xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodTraffic {
    pub pod: String,
    /// Requests forwarded to this pod.
    pub requests_total: u64,
    /// Forwarded and not yet fully answered.
    pub in_flight: u64,
    /// Connect/reset failures and timeouts on this pod.
    pub upstream_errors: u64,
}

/// A running gateway. Dropping it aborts both listeners.
pub struct Gateway {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    inner: Arc<Inner>,
    // Behind a lock so a gateway shared by the cluster's tasks can be shut down in place.
    server: tokio::sync::Mutex<ServerHandle>,
    admin: tokio::sync::Mutex<ServerHandle>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// Compiles `routes` as the gateway would, without listening: `validate`
/// runs it, so a route the local gateway cannot serve is refused before
/// any backend starts (sim and local then agree).
pub fn check_routes(routes: &[HttpRoute]) -> Result<(), RouteError> {
    compile(routes, &Inner::new(GatewayOptions::default())).map(|_| ())
}

impl Gateway {
    /// Validate `routes`, then listen on 127.0.0.1:0 (traffic) and another
    /// 127.0.0.1:0 (admin: `/metrics`, `/healthz`).
    pub async fn start(routes: &[HttpRoute], opts: GatewayOptions) -> anyhow::Result<Self> {
        Self::start_on(routes, opts, 0).await
    }

    /// [`Gateway::start`] with its traffic listener on 127.0.0.1:`port`
    /// (0: any free port); the admin listener still takes any free port.
    pub async fn start_on(
        routes: &[HttpRoute],
        opts: GatewayOptions,
        port: u16,
    ) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner::new(opts));
        inner.set_routes(routes)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("gateway: bind 127.0.0.1:{port}"))?;
        let admin_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("gateway admin: bind 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let i = inner.clone();
        let server = spawn_conn_server(listener, move |stream, peer, drain| {
            plain::serve(i.clone(), stream, peer, drain)
        });
        let i = inner.clone();
        let admin = spawn_server(admin_listener, move |req, _| {
            let resp = admin::admin(&i, &req);
            async move { resp }
        });
        Ok(Self {
            addr,
            admin_addr,
            inner,
            server: tokio::sync::Mutex::new(server),
            admin: tokio::sync::Mutex::new(admin),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Replace the route set (validated first; on error nothing changes).
    /// Counters of routes that keep their `namespace/name` carry on.
    pub fn set_routes(&self, routes: &[HttpRoute]) -> Result<(), RouteError> {
        self.inner.set_routes(routes)
    }

    /// Set the ready endpoints of Service `service` (`name`, meaning namespace
    /// `default`, or `namespace/name`) port `port`. Only loopback addresses
    /// are accepted. Services no route references yet are kept for later.
    pub fn set_endpoints(
        &self,
        service: &str,
        port: u16,
        endpoints: Vec<Endpoint>,
    ) -> anyhow::Result<()> {
        if let Some(bad) = endpoints.iter().find(|e| !e.addr.ip().is_loopback()) {
            anyhow::bail!(
                "endpoint {} of service {service}: {} is not a loopback address",
                bad.pod,
                bad.addr
            );
        }
        let slot = self
            .inner
            .service_slot(&service_key(service, "default", port));
        let mut eps = slot.endpoints.write().unwrap_or_else(|e| e.into_inner());
        // Endpoints that stay keep their idle connections.
        let live = endpoints
            .iter()
            .map(|e| LiveEndpoint {
                upstream: eps
                    .iter()
                    .find(|old| old.upstream.addr() == e.addr)
                    .map(|old| old.upstream.clone())
                    .unwrap_or_else(|| Arc::new(Upstream::new(e.addr))),
                counters: self.inner.pod_counters(&e.pod),
            })
            .collect();
        *eps = Arc::new(live);
        Ok(())
    }

    pub fn stats(&self) -> GatewayStats {
        self.inner.stats()
    }

    /// Resolves once `POST /quitquitquit` reached the admin listener (as
    /// Envoy's admin interface, which makes the process exit).
    pub async fn quit_requested(&self) {
        let mut rx = self.inner.quit.subscribe();
        let _ = rx.wait_for(|q| *q).await;
    }

    /// Stops at once, as a process that exits: connections are dropped,
    /// requests in flight are lost.
    pub async fn kill(&self) {
        self.server.lock().await.shutdown(Duration::ZERO).await;
        self.admin.lock().await.shutdown(Duration::ZERO).await;
    }

    /// Stop accepting, let in-flight requests finish (up to
    /// `shutdown_grace`), then close everything.
    pub async fn shutdown(&self) {
        self.shutdown_within(self.inner.opts.shutdown_grace).await;
    }

    /// [`Gateway::shutdown`] with another grace (a terminating instance's).
    pub async fn shutdown_within(&self, grace: Duration) {
        self.server.lock().await.shutdown(grace).await;
        self.admin.lock().await.shutdown(Duration::ZERO).await;
    }
}

// ---------------------------------------------------------------------------
// Shared state.

struct Inner {
    table: RwLock<Arc<RouteTable>>,
    /// Service slots outlive route updates, so endpoints set before a route
    /// references them are not lost.
    services: Mutex<HashMap<String, Arc<ServiceSlot>>>,
    /// Counters of every route ever configured (cumulative).
    route_counters: Mutex<Vec<Arc<RouteCounters>>>,
    /// Counters of every pod ever seen (cumulative), in first-seen order.
    pods: Mutex<Vec<Arc<PodCounters>>>,
    requests_total: AtomicU64,
    no_route: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_timeouts: AtomicU64,
    in_flight: AtomicU64,
    /// The instance's workers, when it has a capacity model.
    slots: Option<Slots>,
    quit: tokio::sync::watch::Sender<bool>,
    opts: GatewayOptions,
}

struct ServiceSlot {
    key: String,
    endpoints: RwLock<Arc<Vec<LiveEndpoint>>>,
    next: AtomicU64,
}

struct LiveEndpoint {
    upstream: Arc<Upstream>,
    counters: Arc<PodCounters>,
}

struct PodCounters {
    pod: String,
    requests: AtomicU64,
    in_flight: AtomicU64,
    errors: AtomicU64,
}

struct RouteCounters {
    route: String,
    requests: AtomicU64,
    /// Index 0 = 1xx … 4 = 5xx.
    by_class: [AtomicU64; 5],
}

impl RouteCounters {
    fn record(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }
}

fn service_key(service: &str, default_ns: &str, port: u16) -> String {
    if service.contains('/') {
        format!("{service}:{port}")
    } else {
        format!("{default_ns}/{service}:{port}")
    }
}

impl Inner {
    fn service_slot(&self, key: &str) -> Arc<ServiceSlot> {
        let mut m = self.services.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(ServiceSlot {
                    key: key.to_owned(),
                    endpoints: RwLock::new(Arc::new(Vec::new())),
                    next: AtomicU64::new(0),
                })
            })
            .clone()
    }

    fn pod_counters(&self, pod: &str) -> Arc<PodCounters> {
        let mut v = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = v.iter().find(|c| c.pod == pod) {
            return c.clone();
        }
        let c = Arc::new(PodCounters {
            pod: pod.to_owned(),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        v.push(c.clone());
        c
    }

    fn route_counters(&self, route: &str) -> Arc<RouteCounters> {
        let mut v = self
            .route_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = v.iter().find(|c| c.route == route) {
            return c.clone();
        }
        let c = Arc::new(RouteCounters {
            route: route.to_owned(),
            requests: AtomicU64::new(0),
            by_class: Default::default(),
        });
        v.push(c.clone());
        c
    }

    fn new(opts: GatewayOptions) -> Self {
        Inner {
            table: RwLock::new(Arc::new(RouteTable::default())),
            services: Mutex::new(HashMap::new()),
            route_counters: Mutex::new(Vec::new()),
            pods: Mutex::new(Vec::new()),
            requests_total: AtomicU64::new(0),
            no_route: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            upstream_timeouts: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            slots: opts
                .capacity
                .as_ref()
                .map(|c| Slots::new(c.concurrency, c.service_time, c.cpu_per_request)),
            quit: tokio::sync::watch::Sender::new(false),
            opts,
        }
    }

    fn set_routes(&self, routes: &[HttpRoute]) -> Result<(), RouteError> {
        let table = compile(routes, self)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(())
    }

    fn stats(&self) -> GatewayStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let routes = self
            .route_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|c| RouteTraffic {
                route: c.route.clone(),
                requests_total: l(&c.requests),
                responses_2xx: l(&c.by_class[1]),
                responses_3xx: l(&c.by_class[2]),
                responses_4xx: l(&c.by_class[3]),
                responses_5xx: l(&c.by_class[4]),
            })
            .collect();
        let pods = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|c| PodTraffic {
                pod: c.pod.clone(),
                requests_total: l(&c.requests),
                in_flight: l(&c.in_flight),
                upstream_errors: l(&c.errors),
            })
            .collect();
        let in_flight = l(&self.in_flight);
        let memory_bytes = self.opts.capacity.as_ref().map_or(0, |c| {
            c.memory_base_bytes
                .saturating_add(MEMORY_PER_INFLIGHT.saturating_mul(in_flight))
        });
        GatewayStats {
            requests_total: l(&self.requests_total),
            in_flight,
            cpu_busy_ns: self.slots.as_ref().map_or(0, Slots::cpu_busy_ns),
            memory_bytes,
            no_route_total: l(&self.no_route),
            upstream_errors: l(&self.upstream_errors),
            upstream_timeouts: l(&self.upstream_timeouts),
            routes,
            pods,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pod::http::http_get;
    use super::super::pod::{PodHandle, PodModel, PodSpecKind};
    use super::*;
    use hyper::header::CONTENT_TYPE;

    pub(super) const T: Duration = Duration::from_secs(5);

    pub(super) const ROUTE_YAML: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: httpbin, namespace: default, labels: { route: default-httpbin-svc-8080 } }
spec:
  parentRefs: [{ name: gateway }]
  hostnames: ["httpbin.example.com"]
  rules:
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: httpbin-svc, port: 8080 }]
"#;

    /// Every request to Service `up:80` (namespace `default`).
    pub(super) const CATCH_ALL: &str = r#"
metadata: { name: all, namespace: default }
spec:
  rules:
    - backendRefs: [{ name: up, port: 80 }]
"#;

    pub(super) fn route(yaml: &str) -> HttpRoute {
        serde_norway::from_str(yaml).unwrap()
    }

    pub(super) async fn pod(name: &str) -> PodHandle {
        let m = PodModel {
            concurrency: 8,
            service_time: Duration::ZERO,
            cpu_per_request: Duration::from_micros(100),
            memory_base_bytes: 0,
            memory_per_inflight_bytes: 0,
        };
        PodHandle::start(name, &PodSpecKind::Builtin(m), 1.0)
            .await
            .unwrap()
    }

    pub(super) fn ep(p: &PodHandle) -> Endpoint {
        Endpoint {
            pod: p.name().to_owned(),
            addr: p.addr(),
        }
    }

    #[tokio::test]
    async fn yaml_route_round_robin_and_counters() {
        let r = route(ROUTE_YAML);
        assert_eq!(r.metadata.name.as_deref(), Some("httpbin"));
        let gw = Gateway::start(&[r], GatewayOptions::default())
            .await
            .unwrap();
        let host = Some("httpbin.example.com:80");

        // No endpoints yet.
        let (s, _, b) = http_get(gw.addr(), "/get", host, T).await.unwrap();
        assert_eq!((s.as_u16(), &b[..]), (503, &b"no healthy upstream"[..]));
        // Host that no route accepts.
        assert_eq!(
            http_get(gw.addr(), "/get", Some("other.test"), T)
                .await
                .unwrap()
                .0,
            404
        );

        let (a, b2) = (pod("httpbin-a").await, pod("httpbin-b").await);
        gw.set_endpoints("httpbin-svc", 8080, vec![ep(&a), ep(&b2)])
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (s, h, body) = http_get(gw.addr(), "/get?z=1", host, T).await.unwrap();
            assert_eq!(s, 200);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["headers"]["X-Forwarded-For"], "127.0.0.1");
            assert_eq!(v["headers"]["Host"], "httpbin.example.com:80");
            seen.push(h["x-pod"].to_str().unwrap().to_owned());
        }
        assert_ne!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[1], seen[3]);
        assert_eq!(
            http_get(gw.addr(), "/status/500", host, T).await.unwrap().0,
            500
        );
        assert_eq!(
            http_get(gw.addr(), "/status/404", host, T).await.unwrap().0,
            404
        );

        let st = gw.stats();
        assert_eq!(st.requests_total, 8);
        assert_eq!(st.no_route_total, 1);
        let rt = &st.routes[0];
        assert_eq!(rt.route, "default/httpbin");
        assert_eq!(
            (
                rt.requests_total,
                rt.responses_2xx,
                rt.responses_4xx,
                rt.responses_5xx
            ),
            (7, 4, 1, 2)
        );
        let per_pod: Vec<_> = st
            .pods
            .iter()
            .map(|p| (p.pod.as_str(), p.requests_total, p.in_flight))
            .collect();
        assert_eq!(per_pod, vec![("httpbin-a", 3, 0), ("httpbin-b", 3, 0)]);

        let (s, h, m) = http_get(gw.admin_addr(), "/metrics", None, T)
            .await
            .unwrap();
        assert_eq!(s, 200);
        assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
        let m = String::from_utf8(m.to_vec()).unwrap();
        for line in [
            "# TYPE gateway_route_requests_total counter",
            r#"gateway_route_requests_total{route="default/httpbin",code_class="2xx"} 4"#,
            r#"gateway_route_requests_total{route="default/httpbin",code_class="5xx"} 2"#,
            r#"gateway_upstream_requests_total{pod="httpbin-a"} 3"#,
            r#"gateway_upstream_in_flight{pod="httpbin-b"} 0"#,
            r#"gateway_service_endpoints{service="default/httpbin-svc",port="8080"} 2"#,
            "gateway_no_route_requests_total 1",
        ] {
            assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
        }

        // Pod removed from endpoints and stopped: traffic goes to the other.
        gw.set_endpoints("httpbin-svc", 8080, vec![ep(&b2)])
            .unwrap();
        a.drain_and_stop(Duration::from_secs(1)).await;
        for _ in 0..3 {
            let (s, h, _) = http_get(gw.addr(), "/get", host, T).await.unwrap();
            assert_eq!(
                (s.as_u16(), h["x-pod"].to_str().unwrap()),
                (200, "httpbin-b")
            );
        }
        gw.shutdown().await;
        b2.drain_and_stop(Duration::from_secs(1)).await;
    }
}
