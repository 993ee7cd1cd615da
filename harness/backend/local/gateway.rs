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

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use gateway_api::apis::standard::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use super::pod::{spawn_server, ServerHandle};

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
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            upstream_timeout: Duration::from_secs(15),
            lb_policy: LbPolicy::RoundRobin,
            time_scale: 1.0,
            shutdown_grace: Duration::from_secs(5),
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

/// An HTTPRoute that cannot be served as written.
#[derive(Debug, thiserror::Error)]
#[error("HTTPRoute {route}: {field}: {message}")]
pub struct RouteError {
    /// `namespace/name`.
    pub route: String,
    /// Path of the offending field, e.g. `spec.rules[0].matches[1].path.type`.
    pub field: String,
    pub message: String,
}

/// Cumulative counters; the caller computes rates over its own windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Every request the gateway answered or is answering.
    pub requests_total: u64,
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

impl Gateway {
    /// Validate `routes`, then listen on 127.0.0.1:0 (traffic) and another
    /// 127.0.0.1:0 (admin: `/metrics`, `/healthz`).
    pub async fn start(routes: &[HttpRoute], opts: GatewayOptions) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            table: RwLock::new(Arc::new(RouteTable::default())),
            services: Mutex::new(HashMap::new()),
            route_counters: Mutex::new(Vec::new()),
            pods: Mutex::new(Vec::new()),
            client: {
                let mut conn = HttpConnector::new();
                conn.set_nodelay(true);
                conn.set_connect_timeout(Some(Duration::from_secs(2)));
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(conn)
            },
            requests_total: AtomicU64::new(0),
            no_route: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            upstream_timeouts: AtomicU64::new(0),
            opts,
        });
        inner.set_routes(routes)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("gateway: bind 127.0.0.1:0")?;
        let admin_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("gateway admin: bind 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let i = inner.clone();
        let server = spawn_server(listener, move |req, peer| proxy(i.clone(), req, peer));
        let i = inner.clone();
        let admin = spawn_server(admin_listener, move |req, _| {
            let resp = admin(&i, &req);
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
        let live = endpoints
            .iter()
            .map(|e| {
                Ok(LiveEndpoint {
                    authority: Authority::try_from(e.addr.to_string())
                        .with_context(|| format!("endpoint address {}", e.addr))?,
                    counters: self.inner.pod_counters(&e.pod),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let slot = self
            .inner
            .service_slot(&service_key(service, "default", port));
        *slot.endpoints.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
        Ok(())
    }

    pub fn stats(&self) -> GatewayStats {
        self.inner.stats()
    }

    /// Stop accepting, let in-flight requests finish (up to
    /// `shutdown_grace`), then close everything.
    pub async fn shutdown(&self) {
        let grace = self.inner.opts.shutdown_grace;
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
    client: Client<HttpConnector, Incoming>,
    requests_total: AtomicU64,
    no_route: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_timeouts: AtomicU64,
    opts: GatewayOptions,
}

struct ServiceSlot {
    key: String,
    endpoints: RwLock<Arc<Vec<LiveEndpoint>>>,
    next: AtomicU64,
}

struct LiveEndpoint {
    authority: Authority,
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
        GatewayStats {
            requests_total: l(&self.requests_total),
            no_route_total: l(&self.no_route),
            upstream_errors: l(&self.upstream_errors),
            upstream_timeouts: l(&self.upstream_timeouts),
            routes,
            pods,
        }
    }
}

// ---------------------------------------------------------------------------
// Route table.

#[derive(Default)]
struct RouteTable {
    routes: Vec<RouteInfo>,
    /// Every (rule, match) of every route, in Gateway API precedence order.
    entries: Vec<MatchEntry>,
}

struct RouteInfo {
    hostnames: Vec<HostPattern>,
}

enum HostPattern {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

struct MatchEntry {
    route: usize,
    path: PathMatch,
    method: Option<Method>,
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
    target: Arc<RuleTarget>,
}

enum PathMatch {
    Exact(String),
    /// Normalised without trailing '/'; "" matches everything.
    Prefix(String),
}

struct RuleTarget {
    counters: Arc<RouteCounters>,
    backends: Vec<(Arc<ServiceSlot>, u64)>,
    total_weight: u64,
    next: AtomicU64,
    timeout: Option<Duration>,
}

impl RuleTarget {
    /// Weighted choice, spread deterministically by a counter.
    fn pick(&self) -> Option<&ServiceSlot> {
        if self.total_weight == 0 {
            return None;
        }
        if self.backends.len() == 1 {
            return Some(&self.backends[0].0);
        }
        let mut x = self.next.fetch_add(1, Ordering::Relaxed) % self.total_weight;
        for (slot, w) in &self.backends {
            if x < *w {
                return Some(slot);
            }
            x -= w;
        }
        None
    }
}

fn compile(routes: &[HttpRoute], inner: &Inner) -> Result<RouteTable, RouteError> {
    struct Keyed {
        entry: MatchEntry,
        // Sort key per the Gateway API: exact path, longest prefix, method,
        // most headers, most query params; then oldest route, route name,
        // rule order, match order.
        key: (u8, usize, u8, usize, usize),
        created: Option<String>,
        name: String,
        order: (usize, usize),
    }
    let mut table = RouteTable::default();
    let mut keyed = Vec::new();
    for route in routes {
        let ns = route.metadata.namespace.as_deref().unwrap_or("default");
        let Some(name) = route.metadata.name.as_deref().filter(|n| !n.is_empty()) else {
            return Err(RouteError {
                route: format!("{ns}/<unnamed>"),
                field: "metadata.name".into(),
                message: "missing".into(),
            });
        };
        let rname = format!("{ns}/{name}");
        let err = |field: String, message: String| RouteError {
            route: rname.clone(),
            field,
            message,
        };
        let mut hostnames = Vec::new();
        for (i, h) in route.spec.hostnames.iter().flatten().enumerate() {
            hostnames.push(
                parse_hostname(h)
                    .map_err(|m| err(format!("spec.hostnames[{i}]"), format!("{h:?}: {m}")))?,
            );
        }
        let route_idx = table.routes.len();
        table.routes.push(RouteInfo { hostnames });
        let counters = inner.route_counters(&rname);
        let created = route
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string());
        for (ri, rule) in route.spec.rules.iter().flatten().enumerate() {
            let target = Arc::new(compile_target(rule, ri, ns, inner, &counters, &err)?);
            let default_match = [HttpRouteRulesMatches::default()];
            let matches = match rule.matches.as_deref() {
                Some(m) if !m.is_empty() => m,
                _ => &default_match,
            };
            for (mi, m) in matches.iter().enumerate() {
                let f = |s: &str| format!("spec.rules[{ri}].matches[{mi}].{s}");
                let path = match &m.path {
                    None => PathMatch::Prefix(String::new()),
                    Some(p) => {
                        let v = p.value.as_deref().unwrap_or("/");
                        if !v.starts_with('/') {
                            return Err(err(f("path.value"), format!("{v:?} must start with '/'")));
                        }
                        match p.r#type {
                            None | Some(HttpRouteRulesMatchesPathType::PathPrefix) => {
                                PathMatch::Prefix(v.trim_end_matches('/').to_owned())
                            }
                            Some(HttpRouteRulesMatchesPathType::Exact) => {
                                PathMatch::Exact(v.to_owned())
                            }
                            Some(HttpRouteRulesMatchesPathType::RegularExpression) => {
                                return Err(err(
                                    f("path.type"),
                                    "RegularExpression is not supported".into(),
                                ))
                            }
                        }
                    }
                };
                let mut headers = Vec::new();
                for (hi, h) in m.headers.iter().flatten().enumerate() {
                    if matches!(
                        h.r#type,
                        Some(HttpRouteRulesMatchesHeadersType::RegularExpression)
                    ) {
                        return Err(err(
                            f(&format!("headers[{hi}].type")),
                            "RegularExpression is not supported".into(),
                        ));
                    }
                    let n = HeaderName::try_from(h.name.as_str()).map_err(|e| {
                        err(
                            f(&format!("headers[{hi}].name")),
                            format!("{:?}: {e}", h.name),
                        )
                    })?;
                    let v = HeaderValue::try_from(h.value.as_str()).map_err(|e| {
                        err(
                            f(&format!("headers[{hi}].value")),
                            format!("{:?}: {e}", h.value),
                        )
                    })?;
                    headers.push((n, v));
                }
                let mut query = Vec::new();
                for (qi, q) in m.query_params.iter().flatten().enumerate() {
                    if matches!(
                        q.r#type,
                        Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression)
                    ) {
                        return Err(err(
                            f(&format!("queryParams[{qi}].type")),
                            "RegularExpression is not supported".into(),
                        ));
                    }
                    query.push((q.name.clone(), q.value.clone()));
                }
                let method = m.method.as_ref().map(method_of);
                let key = match &path {
                    PathMatch::Exact(p) => (1, p.len(), 0, 0, 0),
                    PathMatch::Prefix(p) => (0, p.len(), 0, 0, 0),
                };
                let key = (
                    key.0,
                    key.1,
                    u8::from(method.is_some()),
                    headers.len(),
                    query.len(),
                );
                keyed.push(Keyed {
                    entry: MatchEntry {
                        route: route_idx,
                        path,
                        method,
                        headers,
                        query,
                        target: target.clone(),
                    },
                    key,
                    created: created.clone(),
                    name: rname.clone(),
                    order: (ri, mi),
                });
            }
        }
    }
    keyed.sort_by(|a, b| {
        b.key
            .cmp(&a.key)
            // RFC 3339 strings in UTC sort chronologically; unset sorts last.
            .then_with(|| match (&a.created, &b.created) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.order.cmp(&b.order))
    });
    table.entries = keyed.into_iter().map(|k| k.entry).collect();
    Ok(table)
}

fn compile_target(
    rule: &HttpRouteRules,
    ri: usize,
    ns: &str,
    inner: &Inner,
    counters: &Arc<RouteCounters>,
    err: &dyn Fn(String, String) -> RouteError,
) -> Result<RuleTarget, RouteError> {
    if rule.filters.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(err(
            format!("spec.rules[{ri}].filters"),
            "filters are not supported by the local gateway".into(),
        ));
    }
    let mut timeout = None;
    if let Some(t) = &rule.timeouts {
        for (field, v) in [
            ("request", &t.request),
            ("backendRequest", &t.backend_request),
        ] {
            let Some(v) = v else { continue };
            let d: gateway_api::Duration = v.parse().map_err(|e| {
                err(
                    format!("spec.rules[{ri}].timeouts.{field}"),
                    format!("{v:?}: {e}"),
                )
            })?;
            let d = Duration::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            // Zero means "no timeout" in the Gateway API.
            if !d.is_zero() {
                let scale = inner.opts.time_scale;
                let d = if scale.is_finite() && scale > 0.0 {
                    // try_: an extreme scale must not overflow into a panic.
                    Duration::try_from_secs_f64(d.as_secs_f64() / scale).unwrap_or(Duration::MAX)
                } else {
                    d
                };
                timeout = Some(timeout.map_or(d, |t: Duration| t.min(d)));
            }
        }
    }
    let mut backends = Vec::new();
    for (bi, b) in rule.backend_refs.iter().flatten().enumerate() {
        let f = |s: &str| format!("spec.rules[{ri}].backendRefs[{bi}].{s}");
        if b.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(err(
                f("filters"),
                "filters are not supported by the local gateway".into(),
            ));
        }
        if b.group.as_deref().is_some_and(|g| !g.is_empty())
            || b.kind.as_deref().is_some_and(|k| k != "Service")
        {
            return Err(err(
                f("kind"),
                format!(
                    "only core Services are supported, got group {:?} kind {:?}",
                    b.group.as_deref().unwrap_or(""),
                    b.kind.as_deref().unwrap_or("Service")
                ),
            ));
        }
        let Some(port) = b.port else {
            return Err(err(f("port"), "required for a Service backend".into()));
        };
        let port = u16::try_from(port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| err(f("port"), format!("{port} is not a valid port")))?;
        let weight = b.weight.unwrap_or(1);
        let weight = u64::try_from(weight)
            .map_err(|_| err(f("weight"), format!("{weight} must not be negative")))?;
        let bns = b.namespace.as_deref().unwrap_or(ns);
        let slot = inner.service_slot(&service_key(&format!("{bns}/{}", b.name), ns, port));
        backends.push((slot, weight));
    }
    let total_weight = backends.iter().map(|b| b.1).sum();
    Ok(RuleTarget {
        counters: counters.clone(),
        backends,
        total_weight,
        next: AtomicU64::new(0),
        timeout,
    })
}

fn parse_hostname(h: &str) -> Result<HostPattern, &'static str> {
    let h = h.to_ascii_lowercase();
    let valid = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
    };
    if let Some(rest) = h.strip_prefix("*.") {
        if valid(rest) {
            return Ok(HostPattern::Suffix(format!(".{rest}")));
        }
    } else if valid(&h) {
        return Ok(HostPattern::Exact(h));
    }
    Err("not a valid hostname (a DNS name, optionally prefixed by \"*.\")")
}

fn method_of(m: &HttpRouteRulesMatchesMethod) -> Method {
    use HttpRouteRulesMatchesMethod as M;
    match m {
        M::Get => Method::GET,
        M::Head => Method::HEAD,
        M::Post => Method::POST,
        M::Put => Method::PUT,
        M::Delete => Method::DELETE,
        M::Connect => Method::CONNECT,
        M::Options => Method::OPTIONS,
        M::Trace => Method::TRACE,
        M::Patch => Method::PATCH,
    }
}

/// Host of a request without port: the URI authority (HTTP/2, absolute
/// form) or the Host header.
fn request_host<B>(req: &Request<B>) -> &str {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    // Strip ":port", leaving IPv6 literals like "[::1]" intact.
    match raw.rfind(':') {
        Some(i) if !raw[i..].contains(']') => &raw[..i],
        _ => raw,
    }
}

/// Hostname specificity per the Gateway API: exact beats wildcard, longer
/// beats shorter; routes without hostnames match anything, least specific.
fn host_score(route: &RouteInfo, host: &str) -> Option<(u8, usize)> {
    if route.hostnames.is_empty() {
        return Some((0, 0));
    }
    let mut best = None;
    for p in &route.hostnames {
        let s = match p {
            HostPattern::Exact(h) if h.eq_ignore_ascii_case(host) => (2, h.len()),
            HostPattern::Suffix(sfx)
                if host.len() > sfx.len()
                    && host.is_char_boundary(host.len() - sfx.len())
                    && host[host.len() - sfx.len()..].eq_ignore_ascii_case(sfx) =>
            {
                (1, sfx.len())
            }
            _ => continue,
        };
        best = best.max(Some(s));
    }
    best
}

impl MatchEntry {
    fn matches<B>(&self, req: &Request<B>, path: &str) -> bool {
        let path_ok = match &self.path {
            PathMatch::Exact(p) => path == p,
            // Element-wise prefix: "/foo" matches "/foo" and "/foo/x", not "/foobar".
            PathMatch::Prefix(p) => {
                path.starts_with(p.as_str())
                    && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
        };
        if !path_ok {
            return false;
        }
        if let Some(m) = &self.method {
            if req.method() != m {
                return false;
            }
        }
        if !self
            .headers
            .iter()
            .all(|(n, v)| req.headers().get(n) == Some(v))
        {
            return false;
        }
        self.query.iter().all(|(n, v)| {
            req.uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .find(|(k, _)| k == n)
                .is_some_and(|(_, val)| val == v)
        })
    }
}

impl RouteTable {
    /// Best entry for the request: most specific hostname first, then the
    /// (pre-sorted) match precedence.
    fn find<B>(&self, req: &Request<B>) -> Option<&MatchEntry> {
        let host = request_host(req);
        let path = req.uri().path();
        let mut best: Option<((u8, usize), &MatchEntry)> = None;
        for e in &self.entries {
            let Some(hs) = host_score(&self.routes[e.route], host) else {
                continue;
            };
            if best.as_ref().is_some_and(|(b, _)| hs <= *b) {
                continue;
            }
            if e.matches(req, path) {
                best = Some((hs, e));
            }
        }
        best.map(|b| b.1)
    }
}

// ---------------------------------------------------------------------------
// Proxy.

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
struct InFlight(Arc<PodCounters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upstream body streamed through, holding the in-flight guard.
struct CountedBody {
    inner: Incoming,
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

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
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
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    // Framing is re-done by hyper on each hop.
    h.remove(hyper::header::TRANSFER_ENCODING);
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

async fn proxy(inner: Arc<Inner>, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
    inner.requests_total.fetch_add(1, Ordering::Relaxed);
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
    // Spec: a rule whose backends are all invalid/zero-weight answers 500.
    let Some(slot) = target.pick() else {
        return local_reply(StatusCode::INTERNAL_SERVER_ERROR, "no valid backend");
    };
    let eps = slot
        .endpoints
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if eps.is_empty() {
        return local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream");
    }
    let ep = &eps[pick_endpoint(&eps, slot, inner.opts.lb_policy)];

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
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut up = hyper::http::uri::Parts::default();
    up.scheme = Some(Scheme::HTTP);
    up.authority = Some(ep.authority.clone());
    up.path_and_query = Some(pq);
    let Ok(uri) = Uri::from_parts(up) else {
        return local_reply(StatusCode::BAD_REQUEST, "bad request target");
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    let xff = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
        parts.headers.insert("x-forwarded-for", v);
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("http"));

    let pc = ep.counters.clone();
    drop(eps);
    pc.requests.fetch_add(1, Ordering::Relaxed);
    pc.in_flight.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight(pc);
    let timeout = target.timeout.unwrap_or(inner.opts.upstream_timeout);
    let result = tokio::time::timeout(
        timeout,
        inner.client.request(Request::from_parts(parts, body)),
    )
    .await;
    match result {
        Ok(Ok(resp)) => {
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
        Ok(Err(_)) => {
            guard.0.errors.fetch_add(1, Ordering::Relaxed);
            inner.upstream_errors.fetch_add(1, Ordering::Relaxed);
            local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers",
            )
        }
        Err(_) => {
            guard.0.errors.fetch_add(1, Ordering::Relaxed);
            inner.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
            local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
        }
    }
}

// ---------------------------------------------------------------------------
// Admin listener.

fn admin(inner: &Inner, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(inner),
        ),
        "/healthz" | "/ready" => (StatusCode::OK, "text/plain", "ok".to_owned()),
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

#[cfg(test)]
mod tests {
    use super::super::pod::{http_get, PodHandle, PodModel, PodSpecKind};
    use super::*;

    const T: Duration = Duration::from_secs(5);

    const ROUTE_YAML: &str = r#"
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

    fn route(yaml: &str) -> HttpRoute {
        serde_norway::from_str(yaml).unwrap()
    }

    async fn pod(name: &str) -> PodHandle {
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

    fn ep(p: &PodHandle) -> Endpoint {
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

    #[tokio::test]
    async fn routes_by_host_and_path_precedence() {
        let api = route(
            r#"
metadata: { name: api, namespace: default }
spec:
  hostnames: ["*.example.com"]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /anything/api } }]
      backendRefs: [{ name: api-svc, port: 80 }]
    - matches:
        - path: { type: Exact, value: /get }
          headers: [{ name: x-canary, value: "yes" }]
      backendRefs: [{ name: api-svc, port: 80 }]
"#,
        );
        let web = route(
            r#"
metadata: { name: web, namespace: default }
spec:
  rules:
    - backendRefs: [{ name: web-svc, port: 80 }]
"#,
        );
        let exact_host = route(
            r#"
metadata: { name: exact, namespace: default }
spec:
  hostnames: ["special.example.com"]
  rules:
    - matches: [{ path: { value: /anything }, method: POST }]
      backendRefs: [{ name: web-svc, port: 80 }]
"#,
        );
        let gw = Gateway::start(&[web, api, exact_host], GatewayOptions::default())
            .await
            .unwrap();
        let (pa, pw) = (pod("api-0").await, pod("web-0").await);
        gw.set_endpoints("api-svc", 80, vec![ep(&pa)]).unwrap();
        gw.set_endpoints("default/web-svc", 80, vec![ep(&pw)])
            .unwrap();
        let who = |path: &'static str, host: &'static str| {
            let a = gw.addr();
            async move {
                let (s, h, _) = http_get(a, path, Some(host), T).await.unwrap();
                assert_eq!(s, 200, "{host}{path}");
                h["x-pod"].to_str().unwrap().to_owned()
            }
        };
        assert_eq!(who("/anything/api/x", "a.example.com").await, "api-0");
        // Element-wise prefix: /anything/apix is not under /anything/api.
        assert_eq!(who("/anything/apix", "a.example.com").await, "web-0");
        assert_eq!(who("/anything/api", "other.test").await, "web-0");
        assert_eq!(who("/get", "a.example.com").await, "web-0");
        // Exact hostname route wins, but only for POST; GET falls through.
        assert_eq!(who("/anything/api", "special.example.com").await, "api-0");

        let mut req = Request::builder()
            .uri("/get")
            .header(HOST, "a.example.com")
            .header("x-canary", "yes")
            .body(())
            .unwrap();
        let table = gw.inner.table.read().unwrap().clone();
        let e = table.find(&req).unwrap();
        assert!(Arc::ptr_eq(
            &e.target.backends[0].0,
            &gw.inner.service_slot("default/api-svc:80")
        ));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = Uri::from_static("/anything/api");
        req.headers_mut()
            .insert(HOST, HeaderValue::from_static("Special.Example.com:8080"));
        let e = table.find(&req).unwrap();
        assert!(Arc::ptr_eq(
            &e.target.backends[0].0,
            &gw.inner.service_slot("default/web-svc:80")
        ));
        gw.shutdown().await;
    }

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

    #[tokio::test]
    async fn invalid_routes_are_named() {
        let cases = [
            (
                "spec: { rules: [ { matches: [ { path: { type: RegularExpression, value: /x.* } } ] } ] }",
                "spec.rules[0].matches[0].path.type",
            ),
            ("spec: { rules: [ { backendRefs: [ { name: s } ] } ] }", "spec.rules[0].backendRefs[0].port"),
            ("spec: { hostnames: [ 'a:b' ] }", "spec.hostnames[0]"),
            (
                "spec: { rules: [ { timeouts: { request: soon } } ] }",
                "spec.rules[0].timeouts.request",
            ),
            (
                "spec: { rules: [ { filters: [ { type: RequestHeaderModifier } ] } ] }",
                "spec.rules[0].filters",
            ),
            (
                "spec: { rules: [ { backendRefs: [ { name: s, port: 80, kind: Pod } ] } ] }",
                "spec.rules[0].backendRefs[0].kind",
            ),
            (
                "spec: { rules: [ { matches: [ { path: { value: nope } } ] } ] }",
                "spec.rules[0].matches[0].path.value",
            ),
        ];
        for (spec, field) in cases {
            let r = route(&format!("metadata: {{ name: bad, namespace: ns }}\n{spec}"));
            let e = Gateway::start(&[r], GatewayOptions::default())
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("HTTPRoute ns/bad") && e.contains(field), "{e}");
        }
    }

    #[test]
    fn host_parsing() {
        let req = |h: &'static str| Request::builder().header(HOST, h).body(()).unwrap();
        assert_eq!(request_host(&req("a.b:8080")), "a.b");
        assert_eq!(request_host(&req("[::1]:80")), "[::1]");
        assert_eq!(request_host(&req("[::1]")), "[::1]");
        let ri = RouteInfo {
            hostnames: vec![parse_hostname("*.Example.com").unwrap()],
        };
        assert_eq!(host_score(&ri, "x.y.example.COM"), Some((1, 12)));
        assert_eq!(host_score(&ri, "example.com"), None);
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
