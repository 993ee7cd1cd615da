//! The built-in pod's capacity model: an exact multi-server FIFO queue in
//! virtual time (concurrency slots, service time), CPU accounting, the
//! request counters and in-flight/queued gauges, and the admission of each
//! request before it reaches the httpbin app.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::httpbin::{httpbin, text, PodBody};
use super::PodStats;
use crate::backend::local::slots::Slots;
use crate::fine_timer;

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

pub(super) struct Builtin {
    pod_header: HeaderValue,
    model: PodModel,
    pub(super) time_scale: f64,
    slots: Slots,
    requests_total: AtomicU64,
    in_flight: AtomicU64,
    queued: AtomicU64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    by_class: [AtomicU64; 5],
    rng: AtomicU64,
}

impl Builtin {
    pub(super) fn new(name: &str, model: PodModel, time_scale: f64) -> anyhow::Result<Self> {
        let pod_header = HeaderValue::from_str(name)
            .with_context(|| format!("pod name {name:?} is not a valid header value"))?;
        let seed = seed_from(name);
        Ok(Self {
            pod_header,
            slots: Slots::new(model.concurrency, model.service_time, model.cpu_per_request),
            model,
            time_scale,
            requests_total: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            by_class: Default::default(),
            rng: AtomicU64::new(seed),
        })
    }

    pub(super) fn stats(&self) -> PodStats {
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
            cpu_busy_ns: self.slots.cpu_busy_ns(),
            memory_bytes: self.model.memory_base_bytes.saturating_add(
                self.model
                    .memory_per_inflight_bytes
                    .saturating_mul(in_flight),
            ),
        }
    }

    pub(super) fn next_random(&self) -> u64 {
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

pub(super) async fn handle_builtin(
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
        let (start, end) = st.slots.reserve();
        if start > Instant::now() {
            let _queued = Gauge::inc(&st.queued);
            fine_timer::sleep_until(start).await;
        }
        if end > Instant::now() {
            fine_timer::sleep_until(end).await;
        }
        let resp = httpbin(&st, req, peer).await;
        let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
        st.by_class[class].fetch_add(1, Ordering::Relaxed);
        resp
    };
    resp.headers_mut().insert("x-pod", st.pod_header.clone());
    resp
}

#[cfg(test)]
mod tests {
    use super::super::http::http_get;
    use super::super::tests::{builtin, T};
    use super::*;
    use tokio::task::JoinSet;

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
}
