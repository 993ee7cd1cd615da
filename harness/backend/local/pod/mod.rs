//! Pods of the local backend: real HTTP servers listening on 127.0.0.1.
//!
//! Two kinds share one handle type:
//! * a built-in httpbin-compatible server whose latency and CPU come from an
//!   exact virtual queue ([`PodModel`]), so scaling behaviour is reproducible;
//! * a command pod: any program started via `sh -c` in its own process group,
//!   measured through `/proc`.
//!
//! This module holds the [`PodHandle`] and its public types. The capacity
//! model lives in `capacity`, the httpbin-compatible app in `httpbin`, command
//! pods in `command` (kept from outliving the harness by `lifeline`), and
//! the small HTTP server and client helpers, shared with the gateway
//! (`super::gateway`), in `http`.

mod capacity;
mod command;
pub(super) mod http;
mod httpbin;
mod lifeline;

pub use capacity::PodModel;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::net::TcpListener;

use gateway_api::apis::standard::httproutes::HttpRoute;

use super::gateway::{Gateway, GatewayOptions};
use capacity::{handle_builtin, Builtin};
use command::CommandPod;
use http::{http_get, spawn_server, ServerHandle};

/// What a pod runs.
#[derive(Debug, Clone)]
pub enum PodSpecKind {
    Builtin(PodModel),
    /// A gateway instance: a proxy serving `routes` with its own capacity
    /// (`options.capacity`) and admin listener (`/metrics`, `/ready`).
    Gateway {
        routes: Arc<Vec<HttpRoute>>,
        options: GatewayOptions,
    },
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

/// How a command pod's program ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    /// Its exit code, if it exited by itself.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Its last output (stdout and stderr interleaved, at most 16 KiB).
    pub tail: String,
}

impl Exit {
    /// `exited with code 7`, `was killed by signal 9 (SIGKILL)`.
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => match signal_name(s) {
                Some(n) => format!("was killed by signal {s} ({n})"),
                None => format!("was killed by signal {s}"),
            },
            (None, None) => "exited (status unknown)".into(),
        }
    }

    /// The last `n` non-blank lines of its output, each cut to 200
    /// characters: enough to see why it died, short enough for an event.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        const MAX: usize = 200;
        let mut v: Vec<String> = self
            .tail
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(n)
            .map(|l| match l.char_indices().nth(MAX) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_owned(),
            })
            .collect();
        v.reverse();
        v
    }
}

fn signal_name(s: i32) -> Option<&'static str> {
    Some(match s {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
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
    Gateway(Arc<Gateway>),
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
            PodSpecKind::Builtin(model) => Self::start_builtin(name, model, time_scale, 0).await,
            PodSpecKind::Gateway { routes, options } => {
                let gw = Gateway::start(routes, options.clone())
                    .await
                    .with_context(|| format!("gateway instance {name}"))?;
                Ok(Self {
                    name: name.to_owned(),
                    addr: gw.addr(),
                    kind: Kind::Gateway(Arc::new(gw)),
                })
            }
            PodSpecKind::Command { command, env } => {
                let (pod, addr) = CommandPod::spawn(name, command, env).await?;
                Ok(Self {
                    name: name.to_owned(),
                    addr,
                    kind: Kind::Command(Box::new(pod)),
                })
            }
        }
    }

    /// A built-in pod on 127.0.0.1:`port` (0: any free port), at real
    /// time: `serve pods`, which the gateway's benchmark puts behind a proxy.
    pub async fn start_builtin_on(name: &str, model: &PodModel, port: u16) -> anyhow::Result<Self> {
        Self::start_builtin(name, model, 1.0, port).await
    }

    async fn start_builtin(
        name: &str,
        model: &PodModel,
        time_scale: f64,
        port: u16,
    ) -> anyhow::Result<Self> {
        // The queue keeps one heap entry per slot: bound it.
        if !(1..=1_000_000).contains(&model.concurrency) {
            bail!(
                "pod {name}: model concurrency must be in 1..=1000000, got {}",
                model.concurrency
            );
        }
        let state = Arc::new(Builtin::new(name, model.clone(), time_scale)?);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("pod {name}: bind 127.0.0.1:{port}"))?;
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
            Kind::Gateway(gw) => {
                let st = gw.stats();
                let class = |f: fn(&super::gateway::RouteTraffic) -> u64| {
                    st.routes.iter().map(f).sum::<u64>()
                };
                PodStats {
                    requests_known: true,
                    requests_total: st.requests_total,
                    responses_2xx: class(|r| r.responses_2xx),
                    responses_3xx: class(|r| r.responses_3xx),
                    // Requests no route matched are answered 404 too.
                    responses_4xx: class(|r| r.responses_4xx) + st.no_route_total,
                    responses_5xx: class(|r| r.responses_5xx),
                    in_flight: st.in_flight,
                    queued: 0,
                    cpu_busy_ns: st.cpu_busy_ns,
                    memory_bytes: st.memory_bytes,
                }
            }
        }
    }

    /// The gateway a gateway instance runs.
    pub fn gateway(&self) -> Option<&Arc<Gateway>> {
        match &self.kind {
            Kind::Gateway(gw) => Some(gw),
            _ => None,
        }
    }

    /// For command pods: false once the process has exited (a "crash").
    pub fn is_running(&self) -> bool {
        match &self.kind {
            Kind::Builtin { .. } | Kind::Gateway(_) => true,
            Kind::Command(c) => c.is_running(),
        }
    }

    /// Resolves as soon as a command pod's program has exited (by itself or
    /// killed) and its process group is killed; never for a built-in pod.
    pub async fn gone(&self) {
        match &self.kind {
            Kind::Builtin { .. } => std::future::pending().await,
            Kind::Command(c) => c.gone().await,
            Kind::Gateway(gw) => {
                gw.quit_requested().await;
                gw.kill().await;
            }
        }
    }

    /// How a command pod's program ended, once it has and its output is
    /// read to the end (a moment after [`PodHandle::gone`]); never for a
    /// built-in pod.
    pub async fn exited(&self) -> Exit {
        match &self.kind {
            Kind::Builtin { .. } => std::future::pending().await,
            Kind::Command(c) => c.exited().await,
            // It quit as asked (Envoy exits 0 on /quitquitquit).
            Kind::Gateway(gw) => {
                gw.quit_requested().await;
                Exit {
                    code: Some(0),
                    signal: None,
                    tail: "quit on POST /quitquitquit".into(),
                }
            }
        }
    }

    /// Last output (stdout and stderr interleaved, at most 16 KiB) of a
    /// command pod; empty for built-in pods.
    pub fn output_tail(&self) -> String {
        match &self.kind {
            Kind::Builtin { .. } | Kind::Gateway(_) => String::new(),
            Kind::Command(c) => c.output_tail(),
        }
    }

    /// One readiness probe: HTTP GET `path` with a short timeout; true on 2xx/3xx.
    pub async fn probe(&self, path: &str) -> bool {
        // A gateway instance answers probes on its admin listener, as Envoy.
        let addr = match &self.kind {
            Kind::Gateway(gw) => gw.admin_addr(),
            _ => self.addr,
        };
        match http_get(addr, path, None, PROBE_TIMEOUT).await {
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
            Kind::Gateway(gw) => gw.shutdown_within(grace).await,
        }
    }

    /// Stop at the end of a run. What is still in flight then has nobody
    /// waiting for it (the load engine has its answers or gave up on
    /// them), so in-process servers close at once; a command still gets
    /// SIGTERM → `grace` → SIGKILL, as a container would, to exit cleanly.
    pub async fn stop_at_end(self, grace: Duration) {
        let grace = match self.kind {
            Kind::Command(_) => grace,
            Kind::Builtin { .. } | Kind::Gateway(_) => Duration::ZERO,
        };
        self.drain_and_stop(grace).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    pub(super) const T: Duration = Duration::from_secs(5);

    fn model(concurrency: usize, service_ms: u64) -> PodModel {
        PodModel {
            concurrency,
            service_time: Duration::from_millis(service_ms),
            cpu_per_request: Duration::from_millis(10),
            memory_base_bytes: 1000,
            memory_per_inflight_bytes: 10,
        }
    }

    pub(super) async fn builtin(concurrency: usize, service_ms: u64) -> PodHandle {
        PodHandle::start(
            "httpbin-abc",
            &PodSpecKind::Builtin(model(concurrency, service_ms)),
            10.0,
        )
        .await
        .unwrap()
    }

    #[test]
    fn exit_status_and_last_lines() {
        let e = Exit {
            code: Some(7),
            signal: None,
            tail: "a\n\nb\r\nc  \n".into(),
        };
        assert_eq!(e.status(), "exited with code 7");
        assert_eq!(e.last_lines(2), ["b", "c"]);
        assert_eq!(e.last_lines(9), ["a", "b", "c"]);
        let k = Exit {
            signal: Some(9),
            tail: "x".repeat(300),
            ..Exit::default()
        };
        assert_eq!(k.status(), "was killed by signal 9 (SIGKILL)");
        assert_eq!(k.last_lines(1)[0].chars().count(), 201);
        assert_eq!(Exit::default().status(), "exited (status unknown)");
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
}
