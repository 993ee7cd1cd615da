//! The `local` backend: the cluster core with real sockets. Pods are real
//! HTTP servers on loopback (the built-in capacity model, or a command), a
//! gateway routes by the HTTPRoute over the Ready pods, and the core's
//! Deployment controller, metrics pipeline and scalers run on the
//! experiment clock, so `--speed` compresses it whole.
//!
//! The gateway is either one built-in proxy, or, when the manifests declare
//! a gateway Deployment, a workload of its own: each instance is a proxy
//! pod with its own capacity and `/metrics`, and the gateway's Service in
//! front balances each request over the Ready instances (the `front`).

pub mod gateway;
pub mod pod;
mod slots;
mod targets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use gateway_api::apis::standard::httproutes::HttpRoute;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use super::{Backend, BoxFuture, LoadTarget, Observation};
use crate::clock::Clock;
use crate::cluster::metrics::PodCounters;
use crate::cluster::observe::Reading;
use crate::cluster::{Config, Core, Exited, Gate, Pod, Resize, Timers, GATE_POLL};
use crate::error::InfraError;
use crate::prepared::{Prepared, Role};
use crate::recorder::TierSample;
use gateway::{Capacity, Endpoint, Gateway, GatewayOptions};
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

/// One workload: its settings, what its pods run, and its control plane.
struct Tier {
    cfg: Arc<Config>,
    pod_kind: PodSpecKind,
    core: Mutex<Core<LocalPod>>,
}

struct Shared {
    clock: Clock,
    /// The control loop's next instant (cluster seconds): everything
    /// scheduled before it has been done.
    control_next: AtomicF64,
    /// The backend first, then the gateway tier if there is one.
    tiers: Vec<Tier>,
    /// Where the load arrives: the built-in gateway, or the gateway tier's
    /// Service balancing over the Ready instances.
    front: Gateway,
    /// Every gateway instance ever started, by pod name: their counters
    /// outlive them (a restart or a scale-in must not lose requests).
    instances: Mutex<Vec<(String, Arc<Gateway>)>>,
    /// Held while what the cores say is read and published (endpoints to
    /// the gateways, the targets file), so that the last published is the
    /// latest: two pods ready at the same instant, on two threads, must not
    /// publish out of order and leave one of them out.
    publishing: Mutex<()>,
    /// Where the gateways' admin listeners are listed for Prometheus.
    targets_file: Option<PathBuf>,
}

const BACKEND: usize = 0;

impl Shared {
    /// A tier's core, held briefly and never across an await.
    fn lock(&self, tier: usize) -> std::sync::MutexGuard<'_, Core<LocalPod>> {
        // A panic in one task must not take the whole run down with a poisoned lock.
        self.tiers[tier]
            .core
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway tier's index, when there is one.
    fn gateway_tier(&self) -> Option<usize> {
        self.tiers.iter().position(|t| t.cfg.role == Role::Gateway)
    }

    /// Requests each pod received so far: a backend pod's from the
    /// gateways that forwarded them, an instance's from its own counter.
    fn pod_requests(&self) -> HashMap<String, u64> {
        let mut m = HashMap::new();
        if self.gateway_tier().is_none() {
            for p in self.front.stats().pods {
                m.insert(p.pod, p.requests_total);
            }
            return m;
        }
        let instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        for (name, gw) in instances.iter() {
            let st = gw.stats();
            *m.entry(name.clone()).or_insert(0) += st.requests_total;
            for p in st.pods {
                *m.entry(p.pod).or_insert(0) += p.requests_total;
            }
        }
        m
    }

    /// Requests per route so far, over every gateway.
    fn route_requests(&self) -> Vec<(String, u64)> {
        let mut m: Vec<(String, u64)> = Vec::new();
        let gws = if self.gateway_tier().is_none() {
            vec![self.front.stats()]
        } else {
            let instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            instances.iter().map(|(_, g)| g.stats()).collect()
        };
        for st in gws {
            for r in st.routes {
                match m.iter_mut().find(|(k, _)| *k == r.route) {
                    Some((_, n)) => *n += r.requests_total,
                    None => m.push((r.route, r.requests_total)),
                }
            }
        }
        m
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
    /// The tier the scenario's HPA scales.
    target: usize,
    /// Cluster time at experiment t = 0.
    origin: f64,
    last_t: f64,
}

impl LocalCluster {
    /// Builds the cluster from the prepared scenario and starts its
    /// controllers; the first pods start at once. Call `wait_ready` before
    /// sending load. `targets_file`, if given, lists the gateways' admin
    /// listeners for Prometheus's file service discovery.
    pub async fn start(
        p: &Prepared,
        speed: f64,
        seed: u64,
        targets_file: Option<PathBuf>,
    ) -> Result<Self> {
        let s = p.scenario();
        let clock = Clock::new(tokio::time::Instant::now(), speed);
        let routes: Vec<HttpRoute> = p.manifests.routes().map(|(_, r)| r.clone()).collect();
        let upstream_timeout = clock.real(s.load.timeout()) + Duration::from_secs(1);
        let gw_options = GatewayOptions {
            upstream_timeout,
            time_scale: speed,
            ..Default::default()
        };
        let mut tiers = Vec::new();
        for (i, t) in p.tiers.iter().enumerate() {
            let cfg = Arc::new(Config::new(p, i)?);
            let pod_kind = match t.role {
                Role::Gateway => PodSpecKind::Gateway {
                    routes: Arc::new(routes.clone()),
                    options: GatewayOptions {
                        capacity: Some(instance_capacity(p, t, &clock)),
                        ..gw_options.clone()
                    },
                },
                Role::Backend => backend_pods(p, &clock),
            };
            tiers.push(Tier {
                core: Mutex::new(Core::new(cfg.clone(), seed.wrapping_add(i as u64))),
                cfg,
                pod_kind,
            });
        }
        // With a gateway tier the front is its Service: one catch-all
        // route to it, so every request goes to a Ready instance.
        let front_routes = match tiers.iter().find(|t| t.cfg.role == Role::Gateway) {
            Some(gt) => vec![service_route(&gt.cfg.services)?],
            None => routes,
        };
        let front = Gateway::start(&front_routes, gw_options)
            .await
            .map_err(|e| InfraError(format!("cannot start the gateway: {e:#}")))?;
        let shared = Arc::new(Shared {
            clock,
            control_next: AtomicF64::default(),
            tiers,
            front,
            instances: Mutex::new(Vec::new()),
            publishing: Mutex::new(()),
            targets_file,
        });
        targets::write(&shared);
        for tier in 0..shared.tiers.len() {
            reconcile(&shared, tier, 0.0);
        }
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![tokio::spawn(control_loop(shared.clone(), stop_rx))];
        Ok(Self {
            shared,
            tasks,
            stop,
            host: p.host.clone(),
            target: p.target_tier(),
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
            let gates =
                (0..sh.tiers.len()).map(|i| sh.lock(i).gate(t, &cluster_name(&sh.tiers[i].cfg)));
            match Gate::all(gates) {
                Gate::Open => break t,
                Gate::Failed(why) => return Err(InfraError(why).into()),
                Gate::Waiting => {}
            }
            k += 1;
        };
        self.origin = origin;
        self.last_t = origin;
        let counts = sh.pod_requests();
        for i in 0..sh.tiers.len() {
            let mut core = sh.lock(i);
            core.rebase(|p| sh.reading(&counts, p));
            core.start_experiment(origin);
        }
        Ok(sh.clock.instant(origin))
    }

    /// The gateway's Prometheus endpoint, for people who want to watch live
    /// (with a gateway tier: its Service's; each instance has its own).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.shared.front.admin_addr())
    }
}

/// How the embedded cluster names a tier in the ready gate's errors.
fn cluster_name(cfg: &Config) -> String {
    match cfg.role {
        Role::Backend => "embedded cluster".into(),
        Role::Gateway => format!("embedded cluster's gateway tier ({})", cfg.deployment),
    }
}

/// What a backend pod runs: the built-in server or the scenario's command.
fn backend_pods(p: &Prepared, clock: &Clock) -> PodSpecKind {
    let s = p.scenario();
    let model = &s.local.pods.model;
    match &s.local.pods.command {
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
    }
}

/// A gateway instance's capacity in real time: its workers, and the time
/// one request holds a worker (the CPU it costs, stretched when the CPU
/// limit is below one core per worker, as CFS throttling would).
fn instance_capacity(p: &Prepared, t: &crate::prepared::Tier, clock: &Clock) -> Capacity {
    let m = &p.scenario().local.gateway.model;
    Capacity {
        concurrency: m.concurrency,
        service_time: clock.real(gateway_service_time(m, t.cpu_limit_milli())),
        cpu_per_request: clock.real(m.cpu_per_request),
        memory_base_bytes: m.memory_base_mib << 20,
    }
}

/// The experiment time a request holds a gateway worker: its CPU, divided
/// by the CPU share each worker gets under the limit (at most one core).
pub(crate) fn gateway_service_time(
    m: &crate::scenario::GatewayModel,
    cpu_limit_milli: Option<i64>,
) -> Duration {
    let per_worker = cpu_limit_milli
        .map(|l| l as f64 / 1000.0 / m.concurrency.max(1) as f64)
        .unwrap_or(1.0)
        .clamp(1e-3, 1.0);
    m.cpu_per_request.div_f64(per_worker)
}

/// The gateway Service as a route: everything, to its first port.
fn service_route(services: &[(String, u16)]) -> Result<HttpRoute> {
    let Some((name, port)) = services.first() else {
        return Err(InfraError("no Service selects the gateway's pods".into()).into());
    };
    let yaml = format!(
        "metadata: {{ name: {name}-service, namespace: default }}\n\
         spec:\n  rules:\n    - backendRefs: [{{ name: {name}, port: {port} }}]\n"
    );
    Ok(serde_norway::from_str(&yaml)?)
}

impl Backend for LocalCluster {
    fn target(&self) -> Option<LoadTarget> {
        Some(LoadTarget {
            base_url: format!("http://{}", self.shared.front.addr()),
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
        let mut obs = Observation::default();
        for i in 0..sh.tiers.len() {
            let mut core = sh.lock(i);
            let (replicas, pods) = core.observe(dt, |p| sh.reading(&counts, p));
            let hpa = core.hpa_sample();
            obs.events.extend(core.take_events(self.origin));
            if i == self.target {
                (obs.replicas, obs.pods, obs.hpa) = (replicas, pods, hpa);
            } else {
                obs.tiers.push(TierSample {
                    deployment: core.cfg.deployment.clone(),
                    role: core.cfg.role.name().into(),
                    replicas,
                    pods,
                    hpa,
                });
            }
        }
        // Both tiers' events in time order (stable: each tier's own order kept).
        obs.events.sort_by(|a, b| a.t.total_cmp(&b.t));
        obs
    }

    fn client_stats(&mut self, t: f64, s: &crate::load::IntervalStats) {
        self.shared.lock(self.target).client_stats(t, s);
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let _ = self.stop.send(true);
            for t in &self.tasks {
                t.abort();
            }
            let mut handles: Vec<Arc<PodHandle>> = Vec::new();
            for i in 0..self.shared.tiers.len() {
                let mut core = self.shared.lock(i);
                for p in &core.pods {
                    if let Some(a) = &p.rt.life {
                        a.abort();
                    }
                }
                handles.extend(core.pods.drain(..).filter_map(|p| p.rt.handle));
            }
            // A command's grace to exit; in-process pods stop at once.
            let grace = self
                .shared
                .clock
                .real(Duration::from_secs(2))
                .min(Duration::from_secs(2));
            // All pods at once: the grace bounds the whole shutdown.
            futures::future::join_all(handles.into_iter().map(|h| async move {
                if let Some(h) = sole_owner(h).await {
                    h.stop_at_end(grace).await;
                }
            }))
            .await;
            self.shared.front.shutdown().await;
            targets::remove(&self.shared);
            Ok(())
        })
    }
}

/// Scrapes and scaler syncs at their scheduled instants, in the core's
/// order: at an instant with both, the scrape comes first, then the sync,
/// then the ReplicaSet acts on the new size.
async fn control_loop(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let timers = Timers::new(&sh.tiers[BACKEND].cfg);
    let (mut scrapes, mut syncs) = (0u64, 0u64);
    let poll = GATE_POLL.as_secs_f64();
    let mut last = 0.0f64;
    loop {
        let (scrape_t, sync_t) = (timers.scrape_at(scrapes), timers.sync_at(syncs));
        let firing = (0..sh.tiers.len())
            .filter_map(|i| sh.lock(i).next_firing())
            .fold(f64::INFINITY, f64::min);
        // Until experiment time starts, also wake on the ready gate's grid,
        // so that a schedule's first firing is not missed by a long sleep.
        let started = sh.lock(BACKEND).started();
        let gate_t = if started {
            f64::INFINITY
        } else {
            ((last / poll).floor() + 1.0) * poll
        };
        let t = scrape_t.min(sync_t).min(firing.max(last)).min(gate_t);
        last = t;
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
            for tier in 0..sh.tiers.len() {
                if sh.lock(tier).sync(t) {
                    reconcile(&sh, tier, t);
                }
            }
        }
        // A schedule's jobs after the HPA at the same instant, as in the sim.
        for tier in 0..sh.tiers.len() {
            if sh.lock(tier).fire_due(t) {
                reconcile(&sh, tier, t);
            }
        }
    }
}

/// The ReplicaSet controller at cluster time `now`: starts new pods' life
/// cycles, and takes victims out of the endpoints to drain.
fn reconcile(sh: &Arc<Shared>, tier: usize, now: f64) {
    let mut core = sh.lock(tier);
    let Some((plan, touched)) = core.reconcile(now, |_| LocalPod::default()) else {
        return;
    };
    for i in touched {
        let p = &mut core.pods[i];
        match plan {
            Resize::Create(_) => {
                let task = tokio::spawn(pod_lifecycle(sh.clone(), tier, p.name.clone(), now));
                p.rt.life = Some(task.abort_handle());
            }
            Resize::Delete(_) => {
                // Its container's exit is now expected: nobody restarts it.
                if let Some(a) = p.rt.life.take() {
                    a.abort();
                }
                tokio::spawn(terminate(
                    sh.clone(),
                    tier,
                    p.name.clone(),
                    p.rt.handle.clone(),
                ));
            }
        }
    }
    drop(core);
    update_endpoints(sh, tier, now);
}

/// Pending → (start-up delay) → Running → (readiness probe) → Ready, and
/// for as long as the pod lives: when its container exits, out of the
/// endpoints at once, then restarted after kubelet's back-off. Each
/// transition is stamped with its scheduled instant, as the sim does, so
/// that both make the same decisions; an exit with the instant it was seen.
async fn pod_lifecycle(sh: Arc<Shared>, tier: usize, name: String, created: f64) {
    let mut start = sh.lock(tier).start_due(created);
    let mut first = true;
    loop {
        sh.clock.sleep_until(start).await;
        let kind = &sh.tiers[tier].pod_kind;
        let handle = match PodHandle::start(&name, kind, sh.clock.speed()).await {
            Ok(h) => Arc::new(h),
            Err(e) => {
                let msg = format!("pod {name} failed to start: {e:#}");
                sh.lock(tier).pod_failed(start, &name, msg);
                return;
            }
        };
        {
            let mut core = sh.lock(tier);
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
        if let Some(gw) = handle.gateway() {
            // A new instance knows the backend's endpoints before it is Ready.
            sh.instances
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name.clone(), gw.clone()));
            update_endpoints(&sh, BACKEND, start);
            targets::write(&sh);
        }
        first = false;
        tokio::select! {
            ready = probe_until_ready(&sh, tier, &handle, start) => {
                {
                    let mut core = sh.lock(tier);
                    if let Some(i) = core.find(&name) {
                        core.mark_ready(i, ready);
                    }
                }
                update_endpoints(&sh, tier, ready);
                handle.gone().await;
            }
            _ = handle.gone() => {}
        }
        // Out of the endpoints first: its output is read to the end (a
        // moment) only for the record. Stamped when seen, to the ms.
        let now = (sh.clock.now() * 1000.0).round() / 1000.0;
        {
            let mut core = sh.lock(tier);
            let Some(i) = core.find(&name) else { return };
            let rt = &mut core.pods[i].rt;
            rt.cpu_before_ns += handle.stats().cpu_busy_ns;
            rt.handle = None;
        }
        update_endpoints(&sh, tier, now);
        let exit = handle.exited().await;
        drop(handle);
        let restart = {
            let mut core = sh.lock(tier);
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
async fn probe_until_ready(sh: &Shared, tier: usize, handle: &PodHandle, start: f64) -> f64 {
    let mut k = 0;
    loop {
        let due = sh.lock(tier).probe_due(start, k);
        sh.clock.sleep_until(due).await;
        if handle.probe(&sh.tiers[tier].cfg.probe_path).await {
            return due;
        }
        k += 1;
    }
}

/// Out of the endpoints at once, then drain in-flight requests and stop.
async fn terminate(sh: Arc<Shared>, tier: usize, name: String, handle: Option<Arc<PodHandle>>) {
    if let Some(h) = handle {
        if let Some(h) = sole_owner(h).await {
            h.drain_and_stop(sh.clock.real(sh.tiers[tier].cfg.grace))
                .await;
        }
    }
    sh.lock(tier).pods.retain(|p| p.name != name);
    targets::write(&sh);
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

/// A tier's Services' endpoints: its serving pods. The backend's go to
/// every proxy that routes to it; the gateway tier's to its Service (the
/// front), where the load arrives.
fn update_endpoints(sh: &Arc<Shared>, tier: usize, now: f64) {
    let _in_order = sh.publishing.lock().unwrap_or_else(|e| e.into_inner());
    let eps: Vec<Endpoint> = sh
        .lock(tier)
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
    // The backend behind a gateway tier is reached through its running
    // instances; everything else through the front.
    let instances: Vec<Arc<Gateway>>;
    let gateways: Vec<&Gateway> = match (sh.tiers[tier].cfg.role, sh.gateway_tier()) {
        (Role::Backend, Some(g)) => {
            instances = sh
                .lock(g)
                .pods
                .iter()
                .filter_map(|p| p.rt.handle.as_ref()?.gateway().cloned())
                .collect();
            instances.iter().map(AsRef::as_ref).collect()
        }
        _ => vec![&sh.front],
    };
    for gw in gateways {
        for (svc, port) in &sh.tiers[tier].cfg.services {
            if let Err(e) = gw.set_endpoints(svc, *port, eps.clone()) {
                let msg = format!("cannot update endpoints of Service {svc}: {e:#}");
                sh.lock(tier).event(
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
}

/// One scrape of every tier's pods and of the routes, for the metrics pipeline.
fn scrape(sh: &Shared, t: f64) {
    let counts = sh.pod_requests();
    let routes = sh.route_requests();
    for tier in 0..sh.tiers.len() {
        // A pod whose container has exited is not scraped until it restarts,
        // as metrics-server has nothing from a container that is not running.
        let handles: Vec<(String, Arc<PodHandle>, u64)> = sh
            .lock(tier)
            .pods
            .iter()
            .filter_map(|p| {
                let h = p.rt.handle.clone()?;
                Some((p.name.clone(), h, p.rt.cpu_before_ns))
            })
            .collect();
        let pods = handles
            .iter()
            .map(|(name, h, before)| {
                let s = h.stats();
                PodCounters {
                    name: name.clone(),
                    cpu_ns: sh.clock.experiment_ns(before + s.cpu_busy_ns),
                    requests: counts.get(name).copied().unwrap_or(0),
                    memory: s.memory_bytes,
                }
            })
            .collect();
        sh.lock(tier).scrape(t, pods, routes.clone());
    }
}
