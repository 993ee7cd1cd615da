//! HTTPRoute compilation for the gateway: validation, the route table in
//! Gateway API precedence order, request matching (hostname, path, method,
//! headers, query) and each rule's weighted backend choice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_api::apis::standard::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Method, Request};

use super::{service_key, Inner, RouteCounters, ServiceSlot};

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

#[derive(Default)]
pub(super) struct RouteTable {
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

pub(super) struct MatchEntry {
    route: usize,
    path: PathMatch,
    method: Option<Method>,
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
    pub(super) target: Arc<RuleTarget>,
}

enum PathMatch {
    Exact(String),
    /// Normalised without trailing '/'; "" matches everything.
    Prefix(String),
}

pub(super) struct RuleTarget {
    pub(super) counters: Arc<RouteCounters>,
    backends: Vec<(Arc<ServiceSlot>, u64)>,
    total_weight: u64,
    next: AtomicU64,
    pub(super) timeout: Option<Duration>,
}

impl RuleTarget {
    /// Weighted choice, spread deterministically by a counter.
    pub(super) fn pick(&self) -> Option<&ServiceSlot> {
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

pub(super) fn compile(routes: &[HttpRoute], inner: &Inner) -> Result<RouteTable, RouteError> {
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

/// What routing reads of a request: hyper's, or the head the gateway's
/// plain HTTP/1.1 path parsed itself.
pub(super) trait RequestHead {
    fn method(&self) -> &Method;
    fn path(&self) -> &str;
    fn query(&self) -> Option<&str>;
    /// The URI authority (HTTP/2, absolute form) or the Host header.
    fn authority(&self) -> Option<&str>;
    /// The first value of header `name`.
    fn header(&self, name: &HeaderName) -> Option<&[u8]>;
}

impl<B> RequestHead for Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    fn query(&self) -> Option<&str> {
        self.uri().query()
    }

    fn authority(&self) -> Option<&str> {
        self.uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| self.headers().get(HOST).and_then(|v| v.to_str().ok()))
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers().get(name).map(HeaderValue::as_bytes)
    }
}

/// Host of a request without port or user info.
fn request_host(req: &impl RequestHead) -> &str {
    let raw = req.authority().unwrap_or("");
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
    fn matches(&self, req: &impl RequestHead, path: &str) -> bool {
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
            .all(|(n, v)| req.header(n) == Some(v.as_bytes()))
        {
            return false;
        }
        self.query.iter().all(|(n, v)| {
            req.query()
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
    pub(super) fn find(&self, req: &impl RequestHead) -> Option<&MatchEntry> {
        let host = request_host(req);
        let path = req.path();
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

#[cfg(test)]
mod tests {
    use super::super::tests::{ep, pod, route, T};
    use super::super::{Gateway, GatewayOptions};
    use super::*;
    use crate::backend::local::pod::http::http_get;
    use hyper::Uri;

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
}
