//! The `local` backend: the cluster core with real sockets. Pods are real
//! HTTP servers on loopback (the built-in capacity model, or a command), a
//! gateway routes by the HTTPRoute over the Ready pods, and the core's
//! Deployment controller, metrics pipeline and scalers run on the
//! experiment clock, so `--speed` compresses it whole.

pub mod gateway;
pub mod pod;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use super::{Backend, BoxFuture, LoadTarget, Observation};
use crate::clock::Clock;
use crate::cluster::metrics::PodCounters;
use crate::cluster::observe::Reading;
use crate::cluster::{Config, Core, Exited, Gate, Pod, Resize, Timers, GATE_POLL};
use crate::error::InfraError;
use crate::prepared::Prepared;
use gateway::{Endpoint, Gateway, GatewayOptions};
use pod::{PodHandle, PodModel, PodSpecKind};

/// An f64 shared between tasks (its bits in an atomic).
#[derive(Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Acquire))
    }
    fn store(&self, x: f64) {
        self.0.store(x.to_bits(), Ordering::Release);
    }
}

/// What the local backend keeps per pod: its server while its container
/// runs, and the task that starts, probes and restarts it.
#[derive(Default)]
pub(crate) struct LocalPod {
    handle: Option<Arc<PodHandle>>,
    life: Option<AbortHandle>,
    /// Real CPU ns of the pod's exited containers, so that its counter
    /// does not go back to 0 when a container is restarted.
    cpu_before_ns: u64,
}

struct Shared {
    clock: Clock,
    /// The control loop's next instant (cluster seconds): everything
    /// scheduled before it has been done.
    control_next: AtomicF64,
    cfg: Arc<Config>,
    pod_kind: PodSpecKind,
    core: Mutex<Core<LocalPod>>,
    gateway: Gateway,
}

impl Shared {
    /// The core, held briefly and never across an await.
    fn lock(&self) -> std::sync::MutexGuard<'_, Core<LocalPod>> {
        // A panic in one task must not take the whole run down with a poisoned lock.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests the gateway has sent to each pod so far.
    fn pod_requests(&self) -> HashMap<String, u64> {
        self.gateway
            .stats()
            .pods
            .into_iter()
            .map(|p| (p.pod, p.requests_total))
            .collect()
    }

    /// A pod's counters, CPU in experiment time; `None` before its first
    /// start. Between an exit and a restart its counters stand still.
    fn reading(&self, counts: &HashMap<String, u64>, p: &Pod<LocalPod>) -> Option<Reading> {
        p.started?;
        let s = p.rt.handle.as_ref().map(|h| h.stats()).unwrap_or_default();
        Some(Reading {
            requests: counts.get(&p.name).copied().unwrap_or(0),
            cpu_ns: self.clock.experiment_ns(p.rt.cpu_before_ns + s.cpu_busy_ns),
            memory_bytes: s.memory_bytes,
            in_flight: s.in_flight,
        })
    }
}

pub struct LocalCluster {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    host: Option<String>,
    /// Cluster time at experiment t = 0.
    origin: f64,
    last_t: f64,
}

impl LocalCluster {
    /// Builds the cluster from the prepared scenario and starts its
    /// controllers; the first pods start at once. Call `wait_ready` before
    /// sending load.
    pub async fn start(p: &Prepared, speed: f64, seed: u64) -> Result<Self> {
        let s = p.scenario();
        let clock = Clock::new(tokio::time::Instant::now(), speed);
        let cfg = Arc::new(Config::new(p)?);
        let model = &s.local.pods.model;
        let pod_kind = match &s.local.pods.command {
            Some(cmd) => PodSpecKind::Command {
                command: cmd.clone(),
                env: Vec::new(),
            },
            None => PodSpecKind::Builtin(PodModel {
                concurrency: model.concurrency,
                service_time: clock.real(model.service_time),
                cpu_per_request: clock.real(model.cpu_per_request),
                memory_base_bytes: model.memory_base_mib << 20,
                memory_per_inflight_bytes: 64 << 10,
            }),
        };
        let routes: Vec<_> = p.manifests.routes().map(|(_, r)| r.clone()).collect();
        let gateway = Gateway::start(
            &routes,
            GatewayOptions {
                upstream_timeout: clock.real(s.load.timeout()) + Duration::from_secs(1),
                time_scale: speed,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| InfraError(format!("cannot start the gateway: {e:#}")))?;
        let shared = Arc::new(Shared {
            clock,
            control_next: AtomicF64::default(),
            core: Mutex::new(Core::new(cfg.clone(), seed)),
            cfg,
            pod_kind,
            gateway,
        });
        reconcile(&shared, 0.0);
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![tokio::spawn(control_loop(shared.clone(), stop_rx))];
        Ok(Self {
            shared,
            tasks,
            stop,
            host: p.host.clone(),
            origin: 0.0,
            last_t: 0.0,
        })
    }

    /// Waits, like `kubectl wait`, until every replica is ready and the HPA has
    /// computed a replica count from its metrics. Experiment time starts at
    /// the look that saw it: looks are on a fixed grid of cluster time, as
    /// in the sim, so that load and syncs line up the same way in both.
    /// Returns the real instant of experiment t = 0.
    pub async fn wait_ready(&mut self) -> Result<tokio::time::Instant> {
        let sh = &self.shared;
        let poll = GATE_POLL.as_secs_f64();
        let mut k = 0u64;
        let origin = loop {
            let t = k as f64 * poll;
            sh.clock.sleep_until(t).await;
            // A sync at this very instant comes first, as in the sim.
            while sh.control_next.load() <= t {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            match sh.lock().gate(t, "embedded cluster") {
                Gate::Open => break t,
                Gate::Failed(why) => return Err(InfraError(why).into()),
                Gate::Waiting => {}
            }
            k += 1;
        };
        self.origin = origin;
        self.last_t = origin;
        let counts = sh.pod_requests();
        sh.lock().rebase(|p| sh.reading(&counts, p));
        Ok(sh.clock.instant(origin))
    }

    /// The gateway's Prometheus endpoint, for people who want to watch live.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.shared.gateway.admin_addr())
    }
}

impl Backend for LocalCluster {
    fn target(&self) -> Option<LoadTarget> {
        Some(LoadTarget {
            base_url: format!("http://{}", self.shared.gateway.addr()),
            host: self.host.clone(),
        })
    }

    fn ready(&mut self) -> BoxFuture<'_, Result<Option<tokio::time::Instant>>> {
        Box::pin(async { self.wait_ready().await.map(Some) })
    }

    fn observe(&mut self, _t: f64) -> Observation {
        let sh = &self.shared;
        let now = sh.clock.now();
        let dt = now - self.last_t;
        self.last_t = now;
        let counts = sh.pod_requests();
        let mut core = sh.lock();
        let (replicas, pods) = core.observe(dt, |p| sh.reading(&counts, p));
        Observation {
            replicas,
            pods,
            hpa: core.status.sample.clone(),
            events: core.take_events(self.origin),
            load: None,
        }
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let _ = self.stop.send(true);
            for t in &self.tasks {
                t.abort();
            }
            let handles: Vec<Arc<PodHandle>> = {
                let mut core = self.shared.lock();
                for p in &core.pods {
                    if let Some(a) = &p.rt.life {
                        a.abort();
                    }
                }
                core.pods.drain(..).filter_map(|p| p.rt.handle).collect()
            };
            // Short grace: the experiment is over, nothing is waiting for answers.
            let grace = self
                .shared
                .clock
                .real(Duration::from_secs(2))
                .min(Duration::from_secs(2));
            // All pods at once: the grace bounds the whole shutdown.
            futures::future::join_all(handles.into_iter().map(|h| async move {
                if let Some(h) = sole_owner(h).await {
                    h.drain_and_stop(grace).await;
                }
            }))
            .await;
            self.shared.gateway.shutdown().await;
            Ok(())
        })
    }
}

/// Scrapes and scaler syncs at their scheduled instants, in the core's
/// order: at an instant with both, the scrape comes first, then the sync,
/// then the ReplicaSet acts on the new size.
async fn control_loop(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let timers = Timers::new(&sh.cfg);
    let (mut scrapes, mut syncs) = (0u64, 0u64);
    loop {
        let (scrape_t, sync_t) = (timers.scrape_at(scrapes), timers.sync_at(syncs));
        let t = scrape_t.min(sync_t);
        sh.control_next.store(t);
        tokio::select! {
            _ = sh.clock.sleep_until(t) => {}
            _ = stop.changed() => return,
        }
        // Stamped with the scheduled instant, not the wake-up: a few ms of
        // timer jitter (× speed) would otherwise move points across the edge
        // of the 60 s rate window and change what the HPA sees.
        if scrape_t <= t {
            scrape(&sh, t);
            scrapes += 1;
        }
        if sync_t <= t {
            syncs += 1;
            if sh.lock().sync(t) {
                reconcile(&sh, t);
            }
        }
    }
}

/// The ReplicaSet controller at cluster time `now`: starts new pods' life
/// cycles, and takes victims out of the endpoints to drain.
fn reconcile(sh: &Arc<Shared>, now: f64) {
    let mut core = sh.lock();
    let Some((plan, touched)) = core.reconcile(now, |_| LocalPod::default()) else {
        return;
    };
    for i in touched {
        let p = &mut core.pods[i];
        match plan {
            Resize::Create(_) => {
                let task = tokio::spawn(pod_lifecycle(sh.clone(), p.name.clone(), now));
                p.rt.life = Some(task.abort_handle());
            }
            Resize::Delete(_) => {
                // Its container's exit is now expected: nobody restarts it.
                if let Some(a) = p.rt.life.take() {
                    a.abort();
                }
                tokio::spawn(terminate(sh.clone(), p.name.clone(), p.rt.handle.clone()));
            }
        }
    }
    drop(core);
    update_endpoints(sh, now);
}

/// Pending → (start-up delay) → Running → (readiness probe) → Ready, and
/// for as long as the pod lives: when its container exits, out of the
/// endpoints at once, then restarted after kubelet's back-off. Each
/// transition is stamped with its scheduled instant, as the sim does, so
/// that both make the same decisions; an exit with the instant it was seen.
async fn pod_lifecycle(sh: Arc<Shared>, name: String, created: f64) {
    let mut start = sh.lock().start_due(created);
    let mut first = true;
    loop {
        sh.clock.sleep_until(start).await;
        let handle = match PodHandle::start(&name, &sh.pod_kind, sh.clock.speed()).await {
            Ok(h) => Arc::new(h),
            Err(e) => {
                let msg = format!("pod {name} failed to start: {e:#}");
                sh.lock().pod_failed(start, &name, msg);
                return;
            }
        };
        {
            let mut core = sh.lock();
            let Some(i) = core.find(&name) else { return };
            let started = if first {
                core.mark_running(i, start)
            } else {
                core.container_restarted(i, start)
            };
            if !started {
                return;
            }
            core.pods[i].rt.handle = Some(handle.clone());
        }
        first = false;
        tokio::select! {
            ready = probe_until_ready(&sh, &handle, start) => {
                {
                    let mut core = sh.lock();
                    if let Some(i) = core.find(&name) {
                        core.mark_ready(i, ready);
                    }
                }
                update_endpoints(&sh, ready);
                handle.gone().await;
            }
            _ = handle.gone() => {}
        }
        // Out of the endpoints first: its output is read to the end (a
        // moment) only for the record. Stamped when seen, to the ms.
        let now = (sh.clock.now() * 1000.0).round() / 1000.0;
        {
            let mut core = sh.lock();
            let Some(i) = core.find(&name) else { return };
            let rt = &mut core.pods[i].rt;
            rt.cpu_before_ns += handle.stats().cpu_busy_ns;
            rt.handle = None;
        }
        update_endpoints(&sh, now);
        let exit = handle.exited().await;
        drop(handle);
        let restart = {
            let mut core = sh.lock();
            let Some(i) = core.find(&name) else { return };
            let (status, output) = (exit.status(), exit.last_lines(EXIT_LINES));
            let exited = Exited {
                status: &status,
                output: &output,
            };
            match core.container_exited(i, now, exited) {
                Some(t) => t,
                None => return,
            }
        };
        start = restart;
    }
}

/// How many lines of an exited container's output the record keeps.
const EXIT_LINES: usize = 10;

/// Probes until the first success and returns its scheduled instant; the
/// built-in server answers health probes outside its capacity model, so a
/// ready pod stays ready (a command pod's exit is watched instead).
async fn probe_until_ready(sh: &Shared, handle: &PodHandle, start: f64) -> f64 {
    let mut k = 0;
    loop {
        let due = sh.lock().probe_due(start, k);
        sh.clock.sleep_until(due).await;
        if handle.probe(&sh.cfg.probe_path).await {
            return due;
        }
        k += 1;
    }
}

/// Out of the endpoints at once, then drain in-flight requests and stop.
async fn terminate(sh: Arc<Shared>, name: String, handle: Option<Arc<PodHandle>>) {
    if let Some(h) = handle {
        if let Some(h) = sole_owner(h).await {
            h.drain_and_stop(sh.clock.real(sh.cfg.grace)).await;
        }
    }
    sh.lock().pods.retain(|p| p.name != name);
}

/// Waits briefly for other holders (a scrape, an aborted probe) to let go of
/// a pod so it can be drained. If one never does, the pod stops when that
/// holder drops it.
async fn sole_owner(mut h: Arc<PodHandle>) -> Option<PodHandle> {
    for _ in 0..200 {
        match Arc::try_unwrap(h) {
            Ok(p) => return Some(p),
            Err(a) => h = a,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// The Services' endpoints: the serving pods.
fn update_endpoints(sh: &Arc<Shared>, now: f64) {
    let eps: Vec<Endpoint> = sh
        .lock()
        .pods
        .iter()
        .filter(|p| p.serving())
        .filter_map(|p| {
            p.rt.handle.as_ref().map(|h| Endpoint {
                pod: p.name.clone(),
                addr: h.addr(),
            })
        })
        .collect();
    for (svc, port) in &sh.cfg.services {
        if let Err(e) = sh.gateway.set_endpoints(svc, *port, eps.clone()) {
            let msg = format!("cannot update endpoints of Service {svc}: {e:#}");
            sh.lock().event(
                now,
                "Warning",
                "FailedToUpdateEndpoint",
                format!("Service/{svc}"),
                "endpoint-controller",
                msg,
            );
        }
    }
}

/// One scrape of the pods' and routes' counters for the metrics pipeline.
fn scrape(sh: &Shared, t: f64) {
    // A pod whose container has exited is not scraped until it restarts,
    // as metrics-server has nothing from a container that is not running.
    let handles: Vec<(String, Arc<PodHandle>, u64)> = sh
        .lock()
        .pods
        .iter()
        .filter_map(|p| {
            let h = p.rt.handle.clone()?;
            Some((p.name.clone(), h, p.rt.cpu_before_ns))
        })
        .collect();
    let gw = sh.gateway.stats();
    let pods = handles
        .iter()
        .map(|(name, h, before)| {
            let s = h.stats();
            PodCounters {
                name: name.clone(),
                cpu_ns: sh.clock.experiment_ns(before + s.cpu_busy_ns),
                requests: gw
                    .pods
                    .iter()
                    .find(|p| &p.pod == name)
                    .map_or(0, |p| p.requests_total),
                memory: s.memory_bytes,
            }
        })
        .collect();
    let routes = gw
        .routes
        .iter()
        .map(|r| (r.route.clone(), r.requests_total))
        .collect();
    sh.lock().scrape(t, pods, routes);
}
