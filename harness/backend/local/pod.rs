//! Pods of the local backend: real HTTP servers listening on 127.0.0.1.
//!
//! Two kinds share one handle type:
//! * a built-in httpbin-compatible server whose latency and CPU come from an
//!   exact virtual queue ([`PodModel`]), so scaling behaviour is reproducible;
//! * a command pod: any program started via `sh -c` in its own process group,
//!   measured through `/proc`.
//!
//! The small HTTP server and client helpers here are shared with the gateway
//! (`super::gateway`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Capacity model of a built-in pod. Durations are real time (already divided
/// by the experiment's speed factor by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodModel {
    /// Requests served at once; further requests wait in FIFO order.
    pub concurrency: usize,
    /// Time a request occupies a slot.
    pub service_time: Duration,
    /// CPU time one request costs (spread evenly over its service time).
    pub cpu_per_request: Duration,
    pub memory_base_bytes: u64,
    pub memory_per_inflight_bytes: u64,
}

/// What a pod runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSpecKind {
    Builtin(PodModel),
    /// `{port}` in `command` is replaced by the port the program must listen
    /// on (127.0.0.1 only: the harness cannot enforce this for foreign programs).
    Command {
        command: String,
        env: Vec<(String, String)>,
    },
}

/// Cumulative counters of one pod (rates are the caller's business).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodStats {
    /// False for command pods: the request counters below are then zero and
    /// the gateway's per-pod counters are the source of truth.
    pub requests_known: bool,
    /// Non-health requests received.
    pub requests_total: u64,
    pub responses_2xx: u64,
    pub responses_3xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    /// Arrived and not yet answered (includes `queued`).
    pub in_flight: u64,
    /// Waiting for a free slot.
    pub queued: u64,
    /// Cumulative CPU busy time in nanoseconds (monotonic).
    pub cpu_busy_ns: u64,
    /// Model memory (built-in) or RSS of the process tree (command).
    pub memory_bytes: u64,
}

/// A running pod. Dropping it stops the server / kills the process group.
pub struct PodHandle {
    name: String,
    addr: SocketAddr,
    kind: Kind,
}

enum Kind {
    Builtin {
        state: Arc<Builtin>,
        server: ServerHandle,
    },
    Command(Box<CommandPod>),
}

impl std::fmt::Debug for PodHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodHandle")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl PodHandle {
    /// Start a pod. `time_scale` is the experiment speed N: `/delay/{s}`
    /// sleeps s/N real seconds. The pod may not be ready yet (command pods):
    /// use [`PodHandle::probe`].
    pub async fn start(name: &str, kind: &PodSpecKind, time_scale: f64) -> anyhow::Result<Self> {
        let time_scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        match kind {
            PodSpecKind::Builtin(model) => {
                // The queue keeps one heap entry per slot: bound it.
                if !(1..=1_000_000).contains(&model.concurrency) {
                    bail!(
                        "pod {name}: model concurrency must be in 1..=1000000, got {}",
                        model.concurrency
                    );
                }
                let state = Arc::new(Builtin::new(name, model.clone(), time_scale)?);
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .with_context(|| format!("pod {name}: bind 127.0.0.1:0"))?;
                let addr = listener.local_addr()?;
                let st = state.clone();
                let server = spawn_server(listener, move |req, peer| {
                    handle_builtin(st.clone(), req, peer)
                });
                Ok(Self {
                    name: name.to_owned(),
                    addr,
                    kind: Kind::Builtin { state, server },
                })
            }
            PodSpecKind::Command { command, env } => {
                let (pod, addr) = CommandPod::spawn(name, command, env)?;
                Ok(Self {
                    name: name.to_owned(),
                    addr,
                    kind: Kind::Command(Box::new(pod)),
                })
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> PodStats {
        match &self.kind {
            Kind::Builtin { state, .. } => state.stats(),
            Kind::Command(c) => c.stats(),
        }
    }

    /// For command pods: false once the process has exited (a "crash").
    pub fn is_running(&mut self) -> bool {
        match &mut self.kind {
            Kind::Builtin { .. } => true,
            Kind::Command(c) => c.is_running(),
        }
    }

    /// Last output (stdout and stderr interleaved, at most 16 KiB) of a
    /// command pod; empty for built-in pods.
    pub fn output_tail(&self) -> String {
        match &self.kind {
            Kind::Builtin { .. } => String::new(),
            Kind::Command(c) => c.output_tail(),
        }
    }

    /// One readiness probe: HTTP GET `path` with a short timeout; true on 2xx/3xx.
    pub async fn probe(&self, path: &str) -> bool {
        match http_get(self.addr, path, None, PROBE_TIMEOUT).await {
            Ok((status, _, _)) => status.is_success() || status.is_redirection(),
            Err(_) => false,
        }
    }

    /// Stop accepting connections, let accepted requests finish (up to
    /// `grace`), then close everything (SIGTERM → grace → SIGKILL for commands).
    pub async fn drain_and_stop(mut self, grace: Duration) {
        match &mut self.kind {
            Kind::Builtin { server, .. } => server.shutdown(grace).await,
            Kind::Command(c) => c.stop(grace).await,
        }
    }
}

// ---------------------------------------------------------------------------
// Shared HTTP server / client helpers (also used by the gateway).

/// A spawned accept loop; dropping it aborts the loop and all connections.
pub(super) struct ServerHandle {
    stop: Option<oneshot::Sender<Duration>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Close the listener, gracefully finish open connections for up to
    /// `grace`, then abort what is left.
    pub(super) async fn shutdown(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Serve HTTP/1.1 (keep-alive) and h2c on `listener`. `handler` is called per
/// request with the peer address; it must not fail (errors are responses).
pub(super) fn spawn_server<H, Fut, B>(listener: TcpListener, handler: H) -> ServerHandle
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, Arc::new(handler), stop_rx));
    ServerHandle {
        stop: Some(stop_tx),
        task: Some(task),
    }
}

async fn accept_loop<H, Fut, B>(
    listener: TcpListener,
    handler: Arc<H>,
    mut stop_rx: oneshot::Receiver<Duration>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Graceful drain by hand (hyper-util's `server-graceful` feature is not
    // enabled in the main crate): every connection watches this channel and
    // calls hyper's `graceful_shutdown` when it fires, which closes idle
    // keep-alive connections now and busy ones after their response.
    let (drain_tx, drain_rx) = watch::channel(false);
    // Connection tasks live in a JoinSet so that dropping/aborting this loop
    // also aborts every connection (no server outlives its handle).
    let mut conns = JoinSet::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let grace = loop {
        tokio::select! {
            biased;
            g = &mut stop_rx => break g.unwrap_or(Duration::ZERO),
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let h = handler.clone();
                    let svc = service_fn(move |req| {
                        let fut = (*h)(req, peer);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                    let mut drain = drain_rx.clone();
                    conns.spawn(async move {
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => return,
                            _ = drain.wait_for(|d| *d) => {}
                        }
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    });
                }
                // Typically EMFILE: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    };
    // Refuse new connections from now on.
    drop(listener);
    let _ = drain_tx.send(true);
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// One HTTP/1.1 GET over a fresh connection (probes, tests). Returns status,
/// headers and the body (bounded to 1 MiB).
pub(super) async fn http_get(
    addr: SocketAddr,
    path: &str,
    host: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    http_request(addr, Method::GET, path, host, Bytes::new(), timeout).await
}

/// Like [`http_get`] with any method and body.
pub(super) async fn http_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    host: Option<&str>,
    body: Bytes,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    if !addr.ip().is_loopback() {
        bail!("refusing to send traffic to non-loopback address {addr}");
    }
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = match host {
            Some(h) => h.to_owned(),
            None => addr.to_string(),
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .body(Full::new(body))?;
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading body: {e}"))?
            .to_bytes();
        drop(sender);
        driver.abort();
        anyhow::Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path} on {addr}: timed out after {timeout:?}"))?
}

// ---------------------------------------------------------------------------
// Built-in httpbin-compatible pod.

struct Builtin {
    pod_header: HeaderValue,
    model: PodModel,
    time_scale: f64,
    queue: Mutex<VirtualQueue>,
    requests_total: AtomicU64,
    in_flight: AtomicU64,
    queued: AtomicU64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    by_class: [AtomicU64; 5],
    rng: AtomicU64,
}

/// Exact multi-server FIFO queue in virtual time: each slot's next-free
/// instant lives in a min-heap; arrivals take the earliest-free slot.
struct VirtualQueue {
    free_at: BinaryHeap<Reverse<Instant>>,
    /// CPU of all requests ever admitted, counted at admission.
    scheduled_cpu_ns: u128,
}

impl Builtin {
    fn new(name: &str, model: PodModel, time_scale: f64) -> anyhow::Result<Self> {
        let pod_header = HeaderValue::from_str(name)
            .with_context(|| format!("pod name {name:?} is not a valid header value"))?;
        let now = Instant::now();
        let free_at = (0..model.concurrency).map(|_| Reverse(now)).collect();
        let seed = seed_from(name);
        Ok(Self {
            pod_header,
            model,
            time_scale,
            queue: Mutex::new(VirtualQueue {
                free_at,
                scheduled_cpu_ns: 0,
            }),
            requests_total: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            by_class: Default::default(),
            rng: AtomicU64::new(seed),
        })
    }

    /// Admit one request: returns its (start, end) in real time.
    fn reserve(&self) -> (Instant, Instant) {
        let now = Instant::now();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.scheduled_cpu_ns += self.model.cpu_per_request.as_nanos();
        let Some(mut top) = q.free_at.peek_mut() else {
            // Unreachable: concurrency >= 1 is checked at start.
            return (now, now);
        };
        let start = top.0.max(now);
        let end = start + self.model.service_time;
        *top = Reverse(end);
        (start, end)
    }

    /// CPU actually executed so far. CPU is charged at admission and the part
    /// not yet executed is subtracted: after `now` every slot is continuously
    /// busy until its free instant (arrivals are all <= now, so no gaps), so
    /// the unexecuted work is exactly Σ max(0, free_at − now) at the model's
    /// CPU rate cpu_per_request / service_time. Cancelled requests keep their
    /// slot and thus their CPU, like a server that cannot abort work.
    fn cpu_busy_ns(&self) -> u64 {
        let now = Instant::now();
        let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let pending: u128 = q
            .free_at
            .iter()
            .map(|Reverse(t)| t.saturating_duration_since(now).as_nanos())
            .sum();
        let svc = self.model.service_time.as_nanos();
        // Zero service time: work completes at admission, nothing pending.
        let pending_cpu = (pending * self.model.cpu_per_request.as_nanos())
            .checked_div(svc)
            .unwrap_or(0);
        u64::try_from(q.scheduled_cpu_ns.saturating_sub(pending_cpu)).unwrap_or(u64::MAX)
    }

    fn stats(&self) -> PodStats {
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let c = |i: usize| self.by_class[i].load(Ordering::Relaxed);
        PodStats {
            requests_known: true,
            requests_total: self.requests_total.load(Ordering::Relaxed),
            responses_2xx: c(1),
            responses_3xx: c(2),
            responses_4xx: c(3),
            responses_5xx: c(4),
            in_flight,
            queued: self.queued.load(Ordering::Relaxed),
            cpu_busy_ns: self.cpu_busy_ns(),
            memory_bytes: self.model.memory_base_bytes.saturating_add(
                self.model
                    .memory_per_inflight_bytes
                    .saturating_mul(in_flight),
            ),
        }
    }

    fn next_random(&self) -> u64 {
        // splitmix64 over an atomic counter: cheap, lock-free, good enough for
        // /bytes and weighted /status choices.
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn seed_from(name: &str) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    name.bytes()
        .fold(t, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
}

/// Decrements a counter when the request ends, however it ends.
struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn inc(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        Self(c)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type PodBody = Full<Bytes>;

async fn handle_builtin(
    st: Arc<Builtin>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<PodBody> {
    let path = req.uri().path();
    let mut resp = if path == "/healthz" || path == "/health" {
        // Probes bypass the capacity model, like a kubelet probe that hits a
        // cheap handler.
        text(StatusCode::OK, "ok")
    } else {
        st.requests_total.fetch_add(1, Ordering::Relaxed);
        let _in_flight = Gauge::inc(&st.in_flight);
        let (start, end) = st.reserve();
        if start > Instant::now() {
            let _queued = Gauge::inc(&st.queued);
            tokio::time::sleep_until(start).await;
        }
        if end > Instant::now() {
            tokio::time::sleep_until(end).await;
        }
        let resp = httpbin(&st, req, peer).await;
        let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
        st.by_class[class].fetch_add(1, Ordering::Relaxed);
        resp
    };
    resp.headers_mut().insert("x-pod", st.pod_header.clone());
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<PodBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(value: &serde_json::Value) -> Response<PodBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

const MAX_BODY: usize = 1 << 20;
const MAX_BYTES: usize = 100 * 1024;
const MAX_DELAY_S: f64 = 10.0;

/// Request data in the shape httpbin reports it.
struct Echo {
    method: String,
    args: serde_json::Value,
    headers: serde_json::Value,
    origin: String,
    url: String,
}

fn echo(req_parts: &hyper::http::request::Parts, peer: SocketAddr) -> Echo {
    let headers = &req_parts.headers;
    let mut hmap = serde_json::Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        hmap.insert(title_case(name.as_str()), joined.into());
    }
    // httpbin reports X-Forwarded-For when present (it runs behind proxies).
    let origin = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| peer.ip().to_string());
    let host = req_parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let pq = req_parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Echo {
        method: req_parts.method.as_str().to_owned(),
        args: query_args(req_parts.uri.query().unwrap_or("")),
        headers: hmap.into(),
        origin,
        url: format!("http://{host}{pq}"),
    }
}

/// Query/form string → httpbin's map (repeated keys become arrays).
fn query_args(q: &str) -> serde_json::Value {
    let mut out: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match out.get_mut(&k) {
            Some(serde_json::Value::Array(a)) => a.push(v.into()),
            Some(prev) => {
                let first = prev.take();
                *prev = serde_json::Value::Array(vec![first, v.into()]);
            }
            None => {
                out.insert(k, v.into());
            }
        }
    }
    out.into()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

async fn httpbin(st: &Builtin, req: Request<Incoming>, peer: SocketAddr) -> Response<PodBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let get_like = method == Method::GET || method == Method::HEAD;
    let seg: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    let (head, rest) = (seg[0], seg.get(1).copied());

    match (head, rest) {
        ("get", None) | ("headers", None) | ("ip", None) if !get_like => {
            text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        ("get", None) => {
            let e = echo(&parts, peer);
            json(&serde_json::json!({
                "args": e.args, "headers": e.headers, "origin": e.origin, "url": e.url,
            }))
        }
        ("headers", None) => json(&serde_json::json!({ "headers": echo(&parts, peer).headers })),
        ("ip", None) => json(&serde_json::json!({ "origin": echo(&parts, peer).origin })),
        ("anything", _) => {
            let e = echo(&parts, peer);
            let Some(b) = read_body(body).await else {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            };
            let (data, form, jsonv) = body_views(&parts.headers, &b);
            json(&serde_json::json!({
                "args": e.args, "data": data, "files": {}, "form": form,
                "headers": e.headers, "json": jsonv, "method": e.method,
                "origin": e.origin, "url": e.url,
            }))
        }
        ("status", Some(codes)) => match pick_status(st, codes) {
            Some(code) => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = code;
                r
            }
            None => text(StatusCode::BAD_REQUEST, "Invalid status code"),
        },
        ("delay", Some(s)) => {
            let Ok(secs) = s.parse::<f64>() else {
                return text(StatusCode::BAD_REQUEST, "Invalid delay");
            };
            if !secs.is_finite() {
                return text(StatusCode::BAD_REQUEST, "Invalid delay");
            }
            let secs = secs.clamp(0.0, MAX_DELAY_S);
            let e = echo(&parts, peer);
            let Some(b) = read_body(body).await else {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            };
            // try_: a tiny time scale must not overflow into a panic.
            let real = Duration::try_from_secs_f64(secs / st.time_scale)
                .unwrap_or(Duration::from_secs(MAX_DELAY_S as u64));
            tokio::time::sleep(real).await;
            let (data, form, _) = body_views(&parts.headers, &b);
            json(&serde_json::json!({
                "args": e.args, "data": data, "files": {}, "form": form,
                "headers": e.headers, "origin": e.origin, "url": e.url,
            }))
        }
        ("bytes", Some(n)) => {
            let Ok(n) = n.parse::<usize>() else {
                return text(StatusCode::BAD_REQUEST, "Invalid length");
            };
            let n = n.min(MAX_BYTES);
            let mut buf = Vec::with_capacity(n + 8);
            while buf.len() < n {
                buf.extend_from_slice(&st.next_random().to_le_bytes());
            }
            buf.truncate(n);
            let mut r = Response::new(Full::new(Bytes::from(buf)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn read_body(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// httpbin's `data`, `form` and `json` fields for a request body.
fn body_views(headers: &HeaderMap, body: &[u8]) -> (String, serde_json::Value, serde_json::Value) {
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let form = query_args(&String::from_utf8_lossy(body));
        return (String::new(), form, serde_json::Value::Null);
    }
    let jsonv = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    (
        String::from_utf8_lossy(body).into_owned(),
        serde_json::json!({}),
        jsonv,
    )
}

/// `/status/{codes}`: one code, or httpbin's weighted list `200:3,500:1`.
fn pick_status(st: &Builtin, codes: &str) -> Option<StatusCode> {
    let mut choices: Vec<(StatusCode, f64)> = Vec::new();
    for item in codes.split(',') {
        let (code, weight) = match item.split_once(':') {
            Some((c, w)) => (c, w.trim().parse::<f64>().ok()?),
            None => (item, 1.0),
        };
        let code: u16 = code.trim().parse().ok()?;
        // 1xx are not final responses; hyper cannot send them as one.
        if !(200..=599).contains(&code) || !weight.is_finite() || weight < 0.0 {
            return None;
        }
        choices.push((StatusCode::from_u16(code).ok()?, weight));
    }
    if choices.len() == 1 {
        return Some(choices[0].0);
    }
    let total: f64 = choices.iter().map(|c| c.1).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = (st.next_random() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (code, w) in &choices {
        if x < *w {
            return Some(*code);
        }
        x -= w;
    }
    choices.last().map(|c| c.0)
}

// ---------------------------------------------------------------------------
// Command pod.

const TAIL_BYTES: usize = 16 * 1024;

struct CommandPod {
    child: Option<tokio::process::Child>,
    /// Process group id (= the shell's pid); always > 1.
    pgid: i32,
    tail: Arc<Mutex<VecDeque<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// Last CPU reading, so the counter never goes backwards when a
    /// descendant exits unreaped.
    cpu_ns: AtomicU64,
}

impl CommandPod {
    fn spawn(
        name: &str,
        command: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<(Self, SocketAddr)> {
        // Ask the kernel for a free port, then release it for the program.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .with_context(|| format!("pod {name}: pick a free port"))?
            .port();
        let script = command.replace("{port}", &port.to_string());
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&script)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Own process group so the whole tree can be signalled at once.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("pod {name}: spawn `sh -c {script}`"))?;
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 1)
            .context("spawned child has no pid")?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect_tail(out, tail.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect_tail(err, tail.clone())));
        }
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        Ok((
            Self {
                child: Some(child),
                pgid,
                tail,
                readers,
                cpu_ns: AtomicU64::new(0),
            },
            addr,
        ))
    }

    fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn output_tail(&self) -> String {
        let t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    fn stats(&self) -> PodStats {
        let (cpu, rss) = if self.child.is_some() {
            proc_tree_usage(self.pgid).unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        let cpu = self.cpu_ns.fetch_max(cpu, Ordering::Relaxed).max(cpu);
        PodStats {
            requests_known: false,
            cpu_busy_ns: cpu,
            memory_bytes: rss,
            ..PodStats::default()
        }
    }

    async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            killpg(self.pgid, libc::SIGTERM);
            let _ = tokio::time::timeout(grace, child.wait()).await;
        }
        // Whatever is left of the group (workers that ignored SIGTERM, or
        // outlived the shell) is killed outright.
        killpg(self.pgid, libc::SIGKILL);
        let _ = child.wait().await;
        for r in self.readers.drain(..) {
            r.abort();
        }
    }
}

impl Drop for CommandPod {
    fn drop(&mut self) {
        if self.child.is_some() {
            // kill_on_drop then kills and reaps the shell itself.
            killpg(self.pgid, libc::SIGKILL);
        }
        for r in &self.readers {
            r.abort();
        }
    }
}

fn killpg(pgid: i32, sig: i32) {
    // Never signal group 0/1 (our own group / init): pgid comes from our child.
    if pgid > 1 {
        // SAFETY: plain syscall on a process group we created; ESRCH is fine.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

async fn collect_tail<R: tokio::io::AsyncRead + Unpin>(mut r: R, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(TAIL_BYTES);
        t.drain(..excess);
    }
}

/// CPU (utime+stime plus reaped children's cutime+cstime, in ns) and RSS
/// (bytes) summed over `root` and all its live descendants.
fn proc_tree_usage(root: i32) -> Option<(u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let (tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (tck, page) = (u64::try_from(tck).ok()?.max(1), u64::try_from(page).ok()?);
    struct P {
        ppid: i32,
        ticks: u64,
        rss_pages: u64,
    }
    let mut procs: HashMap<i32, P> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm (field 2) may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        // Field n of stat(5) is f[n - 3] here.
        let Some(ppid) = f.get(1).and_then(|s| s.parse().ok()) else {
            continue;
        };
        procs.insert(
            pid,
            P {
                ppid,
                ticks: num(11) + num(12) + num(13) + num(14),
                rss_pages: num(21),
            },
        );
    }
    procs.get(&root)?;
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, p) in &procs {
        children.entry(p.ppid).or_default().push(pid);
    }
    let (mut ticks, mut pages) = (0u64, 0u64);
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(p) = procs.get(&pid) {
            ticks += p.ticks;
            pages += p.rss_pages;
        }
        if let Some(c) = children.get(&pid) {
            stack.extend(c);
        }
    }
    Some((
        ticks.saturating_mul(1_000_000_000) / tck,
        pages.saturating_mul(page),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn model(concurrency: usize, service_ms: u64) -> PodModel {
        PodModel {
            concurrency,
            service_time: Duration::from_millis(service_ms),
            cpu_per_request: Duration::from_millis(10),
            memory_base_bytes: 1000,
            memory_per_inflight_bytes: 10,
        }
    }

    async fn builtin(concurrency: usize, service_ms: u64) -> PodHandle {
        PodHandle::start(
            "httpbin-abc",
            &PodSpecKind::Builtin(model(concurrency, service_ms)),
            10.0,
        )
        .await
        .unwrap()
    }

    fn parse(b: &Bytes) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[tokio::test]
    async fn httpbin_shapes() {
        let pod = builtin(4, 0).await;
        let a = pod.addr();
        assert!(pod.probe("/healthz").await);
        assert!(pod.probe("/health").await);

        let (s, h, b) = http_get(a, "/get?x=1&x=2&y=a%20b", Some("h.test"), T)
            .await
            .unwrap();
        assert_eq!(s, 200);
        assert_eq!(h["x-pod"], "httpbin-abc");
        let v = parse(&b);
        assert_eq!(v["args"]["x"], serde_json::json!(["1", "2"]));
        assert_eq!(v["args"]["y"], "a b");
        assert_eq!(v["headers"]["Host"], "h.test");
        assert_eq!(v["origin"], "127.0.0.1");
        assert_eq!(v["url"], "http://h.test/get?x=1&x=2&y=a%20b");

        let (s, _, b) = http_request(
            a,
            Method::POST,
            "/anything/foo?q=1",
            None,
            Bytes::from_static(br#"{"k":[1,2]}"#),
            T,
        )
        .await
        .unwrap();
        assert_eq!(s, 200);
        let v = parse(&b);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["json"]["k"], serde_json::json!([1, 2]));
        assert_eq!(v["data"], r#"{"k":[1,2]}"#);
        assert_eq!(v["args"]["q"], "1");

        for (path, code) in [
            ("/status/418", 418),
            ("/status/503", 503),
            ("/status/204", 204),
        ] {
            assert_eq!(http_get(a, path, None, T).await.unwrap().0, code, "{path}");
        }
        assert_eq!(
            http_get(a, "/status/200,201", None, T)
                .await
                .unwrap()
                .0
                .as_u16()
                / 100,
            2
        );
        assert_eq!(http_get(a, "/status/abc", None, T).await.unwrap().0, 400);
        assert_eq!(http_get(a, "/nope", None, T).await.unwrap().0, 404);
        assert_eq!(
            http_request(a, Method::POST, "/get", None, Bytes::new(), T)
                .await
                .unwrap()
                .0,
            405
        );

        let (_, _, b) = http_get(a, "/bytes/1000", None, T).await.unwrap();
        assert_eq!(b.len(), 1000);
        let (_, _, b) = http_get(a, "/bytes/10000000", None, T).await.unwrap();
        assert_eq!(b.len(), MAX_BYTES);

        assert_eq!(
            parse(&http_get(a, "/ip", None, T).await.unwrap().2)["origin"],
            "127.0.0.1"
        );
        let v = parse(&http_get(a, "/headers", None, T).await.unwrap().2);
        assert!(v["headers"].is_object());

        // /delay/1 at time scale 10 sleeps ~100 ms.
        let t0 = std::time::Instant::now();
        let (s, _, b) = http_get(a, "/delay/1", None, T).await.unwrap();
        let el = t0.elapsed();
        assert_eq!(s, 200);
        assert!(parse(&b)["url"].as_str().unwrap().ends_with("/delay/1"));
        assert!(
            el >= Duration::from_millis(95) && el < Duration::from_millis(1000),
            "{el:?}"
        );

        let st = pod.stats();
        assert!(st.requests_known);
        // 2 health probes are not counted; everything else is.
        assert_eq!(st.requests_total, 14);
        assert_eq!(st.responses_4xx, 4);
        assert_eq!(st.responses_5xx, 1);
        assert_eq!(st.in_flight, 0);
        assert_eq!(st.memory_bytes, 1000);
        pod.drain_and_stop(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn capacity_model_queues_fifo_and_accounts_cpu() {
        let pod = Arc::new(builtin(2, 50).await);
        let a = pod.addr();
        let t0 = std::time::Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..6 {
            tasks.spawn(async move {
                http_get(a, "/get", None, T).await.unwrap();
                t0.elapsed()
            });
        }
        // Mid-way: 2 running, 4 waiting; CPU is executed-so-far only.
        tokio::time::sleep(Duration::from_millis(25)).await;
        let mid = pod.stats();
        assert_eq!(mid.in_flight, 6);
        assert_eq!(mid.queued, 4);
        assert_eq!(mid.memory_bytes, 1000 + 60);
        assert!(mid.cpu_busy_ns < 20_000_000, "{}", mid.cpu_busy_ns);
        let mut times = Vec::new();
        while let Some(t) = tasks.join_next().await {
            times.push(t.unwrap());
        }
        times.sort();
        let last = *times.last().unwrap();
        assert!(
            last >= Duration::from_millis(148) && last < Duration::from_millis(400),
            "{times:?}"
        );
        assert!(times[0] < Duration::from_millis(120), "{times:?}");
        let st = pod.stats();
        assert_eq!(st.cpu_busy_ns, 6 * 10_000_000);
        assert_eq!((st.in_flight, st.queued, st.requests_total), (0, 0, 6));
    }

    #[tokio::test]
    async fn drain_completes_in_flight_and_refuses_new() {
        let pod = builtin(4, 0).await;
        let a = pod.addr();
        // /delay/3 at scale 10 = 300 ms.
        let slow = tokio::spawn(async move { http_get(a, "/delay/3", None, T).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = std::time::Instant::now();
        pod.drain_and_stop(Duration::from_secs(3)).await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        let (s, _, _) = slow.await.unwrap().unwrap();
        assert_eq!(s, 200);
        assert!(TcpStream::connect(a).await.is_err());
    }

    #[tokio::test]
    async fn drain_grace_bounds_stop() {
        let pod = builtin(1, 0).await;
        let a = pod.addr();
        let slow = tokio::spawn(async move { http_get(a, "/delay/10", None, T).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = std::time::Instant::now();
        pod.drain_and_stop(Duration::from_millis(100)).await;
        assert!(t0.elapsed() < Duration::from_millis(500));
        assert!(slow.await.unwrap().is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(title_case("x-forwarded-for"), "X-Forwarded-For");
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let st = s
                    .rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next());
                st != Some("Z")
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn command_pod_lifecycle() {
        let kind = PodSpecKind::Command {
            command: "python3 -m http.server {port} --bind 127.0.0.1".into(),
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
        };
        let mut pod = PodHandle::start("py-0", &kind, 1.0).await.unwrap();
        let pgid = match &pod.kind {
            Kind::Command(c) => c.pgid,
            Kind::Builtin { .. } => unreachable!(),
        };
        let mut ready = false;
        for _ in 0..100 {
            if pod.probe("/").await {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ready,
            "python http.server never became ready: {}",
            pod.output_tail()
        );
        assert!(pod.is_running());
        let st = pod.stats();
        assert!(!st.requests_known);
        assert!(st.cpu_busy_ns > 0, "{st:?}");
        assert!(st.memory_bytes > 1 << 20, "{st:?}");
        pod.drain_and_stop(Duration::from_secs(2)).await;
        assert!(!alive(pgid), "process {pgid} still alive");
    }

    #[tokio::test]
    async fn command_pod_killed_on_drop_and_sigterm_ignored() {
        // The shell ignores SIGTERM, so stop must escalate to SIGKILL.
        let kind = PodSpecKind::Command {
            command: "trap '' TERM; sleep 30 & wait".into(),
            env: vec![],
        };
        let pod = PodHandle::start("stubborn", &kind, 1.0).await.unwrap();
        let pgid = match &pod.kind {
            Kind::Command(c) => c.pgid,
            Kind::Builtin { .. } => unreachable!(),
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = std::time::Instant::now();
        pod.drain_and_stop(Duration::from_millis(200)).await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(!alive(pgid));

        let pod = PodHandle::start("dropped", &kind, 1.0).await.unwrap();
        let pgid = match &pod.kind {
            Kind::Command(c) => c.pgid,
            Kind::Builtin { .. } => unreachable!(),
        };
        drop(pod);
        let mut gone = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !alive(pgid) {
                gone = true;
                break;
            }
        }
        assert!(gone, "dropped pod {pgid} left a process");
    }
}
