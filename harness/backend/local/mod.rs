//! The embedded cluster: a Deployment controller with a pod lifecycle, pods
//! that are real HTTP servers on loopback, a gateway that routes by the
//! HTTPRoute, a metrics pipeline, and the HPA controller from `autoscaler`.
//! All of it runs on the experiment clock, so `--speed` compresses it whole.

pub mod gateway;
pub(crate) mod hpa;
pub mod metrics;
pub mod pod;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};
use tokio::task::{AbortHandle, JoinHandle};

use super::{Backend, BoxFuture, LoadTarget, Observation};
use crate::autoscaler::{
    parse_quantity_milli, ConditionStatus, ContainerInfo, ControllerConfig, Millis, PodInfo,
    PodPhase, ReadyCondition,
};
use crate::clock::Clock;
use crate::error::{InfraError, InputError};
use crate::manifests::Manifests;
use crate::recorder::{Event, HpaSample, PodSample, Replicas};
use crate::scenario::Loaded;
use gateway::{Endpoint, Gateway, GatewayOptions};
use metrics::{History, PodCounters, Snapshot, Windows};
use pod::{PodHandle, PodModel, PodSpecKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Running,
    Terminating,
}

struct PodEntry {
    name: String,
    created: f64,
    phase: Phase,
    started: Option<f64>,
    ready_since: Option<f64>,
    handle: Option<Arc<PodHandle>>,
    startup: Option<AbortHandle>,
}

/// Everything the controllers share. Held briefly, never across an await.
struct State {
    spec_replicas: i32,
    pods: Vec<PodEntry>,
    /// Events in cluster time, waiting for the next observation.
    events: Vec<Event>,
    hpa_sample: Option<HpaSample>,
    hpa_desired: i32,
    hpa_active: bool,
    history: History,
    /// Why pods failed to start, for the infrastructure error.
    failures: Vec<String>,
    rng: rand::rngs::StdRng,
}

/// Fixed facts taken from the manifests and scenario (shared with `sim`).
pub(crate) struct Config {
    pub(crate) deployment: String,
    pub(crate) replica_set: String,
    pub(crate) container: String,
    pub(crate) cpu_request_milli: Option<i64>,
    pub(crate) memory_request_milli: Option<i64>,
    pub(crate) pod_kind: PodSpecKind,
    pub(crate) startup_delay: Duration,
    pub(crate) probe_path: String,
    pub(crate) probe_period: Duration,
    pub(crate) probe_initial_delay: Duration,
    pub(crate) grace: Duration,
    /// Services in front of the pods: (name, port).
    pub(crate) services: Vec<(String, u16)>,
    pub(crate) hpa: HorizontalPodAutoscaler,
    /// The scale subresource's selector, e.g. `app=httpbin`.
    pub(crate) selector: String,
    pub(crate) controller: ControllerConfig,
    pub(crate) sync_period: Duration,
    pub(crate) scrape_interval: Duration,
    pub(crate) windows: Windows,
    pub(crate) routes: Vec<(String, BTreeMap<String, String>)>,
}

/// Everything `start` derives from the scenario and manifests before it
/// starts anything: the cluster's configuration, the routes for the
/// gateway, the initial replica count, the Host header and the metrics
/// history length.
pub(crate) struct Blueprint {
    pub(crate) cfg: Config,
    pub(crate) http_routes: Vec<HttpRoute>,
    pub(crate) initial: i32,
    pub(crate) host: Option<String>,
    /// Seconds of scrapes the metrics history keeps.
    pub(crate) keep: f64,
    /// `namespace/name` of the route the load goes through.
    pub(crate) target_route: String,
}

/// `namespace/name` of a route.
fn route_key(r: &HttpRoute) -> String {
    format!(
        "{}/{}",
        r.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        r.metadata.name.clone().unwrap_or_default()
    )
}

struct Shared {
    clock: Clock,
    cfg: Config,
    st: Mutex<State>,
    /// Wakes the Deployment controller.
    kick: Notify,
    gateway: Gateway,
}

impl Shared {
    /// Requests the gateway has sent to each pod so far.
    fn pod_requests(&self) -> HashMap<String, u64> {
        self.gateway
            .stats()
            .pods
            .into_iter()
            .map(|p| (p.pod, p.requests_total))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in one task must not take the whole run down with a poisoned lock.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(
        &self,
        st: &mut State,
        type_: &str,
        reason: &str,
        object: String,
        source: &str,
        message: String,
    ) {
        st.events.push(Event {
            t: self.clock.now(),
            type_: type_.into(),
            reason: reason.into(),
            object,
            source: source.into(),
            message,
            ..Default::default()
        });
    }
}

pub struct LocalCluster {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    host: Option<String>,
    /// Cluster time at experiment t = 0.
    origin: f64,
    /// Per-pod counters at the previous observation: (requests, cpu_ns).
    last: HashMap<String, (u64, u64)>,
    last_t: f64,
}

impl LocalCluster {
    /// Builds the cluster from the manifests and starts its controllers; the
    /// first pods start at once. Call `wait_ready` before sending load.
    pub async fn start(l: &Loaded, m: &Manifests, speed: f64, seed: u64) -> Result<Self> {
        let s = &l.scenario;
        let Blueprint {
            cfg,
            http_routes,
            initial,
            host,
            keep,
            target_route: _,
        } = blueprint(l, m, speed)?;
        let gateway = Gateway::start(
            &http_routes,
            GatewayOptions {
                upstream_timeout: s.load.timeout().div_f64(speed) + Duration::from_secs(1),
                time_scale: speed,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| InfraError(format!("cannot start the gateway: {e:#}")))?;
        let shared = Arc::new(Shared {
            clock: Clock::new(tokio::time::Instant::now(), speed),
            cfg,
            st: Mutex::new(State {
                spec_replicas: initial,
                pods: Vec::new(),
                events: Vec::new(),
                hpa_sample: None,
                hpa_desired: initial,
                hpa_active: false,
                history: History::new(keep),
                failures: Vec::new(),
                rng: rand::rngs::StdRng::seed_from_u64(seed),
            }),
            kick: Notify::new(),
            gateway,
        });

        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(deployment_controller(shared.clone(), stop_rx.clone())),
            tokio::spawn(scraper(shared.clone(), stop_rx.clone())),
            tokio::spawn(hpa::controller(shared.clone(), stop_rx)),
        ];
        Ok(Self {
            shared,
            tasks,
            stop,
            host,
            origin: 0.0,
            last: HashMap::new(),
            last_t: 0.0,
        })
    }
    /// Waits, like `kubectl wait`, until every replica is ready and the HPA has
    /// computed a replica count from its metrics; experiment time starts then.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let sh = &self.shared;
        let deadline = timeout.as_secs_f64();
        loop {
            {
                let st = sh.lock();
                let ready = st
                    .pods
                    .iter()
                    .filter(|p| p.phase != Phase::Terminating && p.ready_since.is_some())
                    .count() as i32;
                if ready >= st.spec_replicas && st.hpa_active {
                    break;
                }
                if sh.clock.now() > deadline {
                    let why = if let Some(f) = st.failures.last() {
                        f.clone()
                    } else if ready < st.spec_replicas {
                        format!(
                            "{ready} of {} pods became ready (readiness probe GET {})",
                            st.spec_replicas, sh.cfg.probe_path
                        )
                    } else {
                        let cond = st
                            .hpa_sample
                            .as_ref()
                            .and_then(|h| h.conditions.iter().find(|c| c.type_ == "ScalingActive"))
                            .map(|c| format!("{}: {}", c.reason, c.message))
                            .unwrap_or_else(|| "no status yet".into());
                        format!("the HPA never reported ScalingActive=True ({cond})")
                    };
                    return Err(InfraError(format!(
                        "the embedded cluster was not ready within {}: {why}",
                        crate::scenario::fmt_dur(timeout)
                    ))
                    .into());
                }
                if let Some(f) = st.failures.last() {
                    return Err(InfraError(format!("a pod failed to start: {f}")).into());
                }
            }
            sh.clock.sleep(Duration::from_millis(500)).await;
        }
        self.origin = sh.clock.now();
        self.last_t = self.origin;
        let counts = sh.pod_requests();
        let st = sh.lock();
        for p in &st.pods {
            if let Some(h) = &p.handle {
                let r = counts.get(&p.name).copied().unwrap_or(0);
                self.last.insert(p.name.clone(), (r, h.stats().cpu_busy_ns));
            }
        }
        Ok(())
    }

    /// The gateway's Prometheus endpoint, for people who want to watch live.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.shared.gateway.admin_addr())
    }
}

impl Backend for LocalCluster {
    fn target(&self) -> LoadTarget {
        LoadTarget {
            base_url: format!("http://{}", self.shared.gateway.addr()),
            host: self.host.clone(),
        }
    }

    fn ready(&mut self) -> super::BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(self.wait_ready(crate::run::READY_TIMEOUT))
    }

    fn observe(&mut self, _t: f64) -> Observation {
        let sh = &self.shared;
        let now = sh.clock.now();
        let dt = (now - self.last_t).max(1e-9);
        self.last_t = now;
        let counts = sh.pod_requests();
        let mut st = sh.lock();
        let mut pods = Vec::new();
        let mut next = HashMap::new();
        for p in &st.pods {
            let (requests, cpu_ns, memory, in_flight) = match &p.handle {
                Some(h) => {
                    let s = h.stats();
                    let r = counts.get(&p.name).copied().unwrap_or(0);
                    (r, s.cpu_busy_ns, s.memory_bytes, s.in_flight)
                }
                None => (0, 0, 0, 0),
            };
            let (r0, c0) = self
                .last
                .get(&p.name)
                .copied()
                .unwrap_or((requests, cpu_ns));
            next.insert(p.name.clone(), (requests, cpu_ns));
            let cpu_millicores =
                cpu_ns.saturating_sub(c0) as f64 * sh.clock.speed() / 1e9 / dt * 1000.0;
            pods.push(PodSample {
                name: p.name.clone(),
                phase: match p.phase {
                    Phase::Pending => "Pending",
                    Phase::Running => "Running",
                    Phase::Terminating => "Terminating",
                }
                .into(),
                ready: p.phase == Phase::Running && p.ready_since.is_some(),
                qps: requests.saturating_sub(r0) as f64 / dt,
                cpu_millicores,
                cpu_utilization: sh
                    .cfg
                    .cpu_request_milli
                    .filter(|r| *r > 0)
                    .map(|r| cpu_millicores / r as f64 * 100.0),
                memory_bytes: memory,
                in_flight,
            });
        }
        self.last = next;
        let active: Vec<&PodEntry> = st
            .pods
            .iter()
            .filter(|p| p.phase != Phase::Terminating)
            .collect();
        let replicas = Replicas {
            spec: st.spec_replicas,
            current: active.len() as i32,
            ready: active.iter().filter(|p| p.ready_since.is_some()).count() as i32,
            desired: st.hpa_desired,
        };
        let origin = self.origin;
        let events = st
            .events
            .drain(..)
            .map(|mut e| {
                e.t -= origin;
                e
            })
            .collect();
        Observation {
            replicas,
            pods,
            hpa: st.hpa_sample.clone(),
            events,
        }
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let _ = self.stop.send(true);
            for t in &self.tasks {
                t.abort();
            }
            let handles: Vec<Arc<PodHandle>> = {
                let mut st = self.shared.lock();
                for p in &st.pods {
                    if let Some(a) = &p.startup {
                        a.abort();
                    }
                }
                st.pods.drain(..).filter_map(|p| p.handle).collect()
            };
            // Short grace: the experiment is over, nothing is waiting for answers.
            let grace = self
                .shared
                .clock
                .real(Duration::from_secs(2))
                .min(Duration::from_secs(2));
            for h in handles {
                if let Some(h) = sole_owner(h).await {
                    h.drain_and_stop(grace).await;
                }
            }
            self.shared.gateway.shutdown().await;
            Ok(())
        })
    }
}

/// Reads the scenario and manifests into the cluster's fixed configuration
/// (shared by the `local` and `sim` backends).
pub(crate) fn blueprint(l: &Loaded, m: &Manifests, speed: f64) -> Result<Blueprint> {
    let s = &l.scenario;
    let hpa = m.hpa(&l.path, s.target.hpa.as_deref())?.clone();
    let hpa_spec = hpa.spec.clone().unwrap_or_default();
    let deploy_name = hpa_spec.scale_target_ref.name.clone();
    let (dm, deploy): (_, &Deployment) =
        m.deployments()
            .find(|(dm, _)| dm.name() == deploy_name)
            .context("the HPA's scale target is not among the manifests")?;
    let dspec = deploy.spec.clone().unwrap_or_default();
    let template_labels = dspec
        .template
        .metadata
        .as_ref()
        .and_then(|md| md.labels.clone())
        .unwrap_or_default();
    let pod_spec = dspec.template.spec.clone().unwrap_or_default();
    let Some(container) = pod_spec.containers.first().cloned() else {
        return Err(
            InputError::new(&dm.file, "the pod template has no containers")
                .field(format!(
                    "Deployment {deploy_name}: spec.template.spec.containers"
                ))
                .into(),
        );
    };
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    let cpu_request_milli = requests
        .get("cpu")
        .and_then(|q| parse_quantity_milli(&q.0).ok());
    let memory_request_milli = requests
        .get("memory")
        .and_then(|q| parse_quantity_milli(&q.0).ok());
    let probe = container.readiness_probe.clone();
    let probe_path = s
        .local
        .pods
        .readiness_path
        .clone()
        .or_else(|| {
            probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|g| g.path.clone())
        })
        .unwrap_or_else(|| {
            if s.local.pods.command.is_some() {
                "/".into()
            } else {
                "/health".into()
            }
        });
    let probe_period = Duration::from_secs(
        probe
            .as_ref()
            .and_then(|p| p.period_seconds)
            .unwrap_or(10)
            .max(1) as u64,
    );
    let probe_initial_delay = Duration::from_secs(
        probe
            .as_ref()
            .and_then(|p| p.initial_delay_seconds)
            .unwrap_or(0)
            .max(0) as u64,
    );
    let grace = pod_spec
        .termination_grace_period_seconds
        .map(|g| Duration::from_secs(g.max(0) as u64))
        .unwrap_or(s.local.pods.termination_grace);

    // Services whose selector picks the Deployment's pods.
    let services: Vec<(String, u16)> = m
        .services()
        .filter(|(_, svc)| {
            let sel = svc
                .spec
                .as_ref()
                .and_then(|sp| sp.selector.clone())
                .unwrap_or_default();
            !sel.is_empty() && sel.iter().all(|(k, v)| template_labels.get(k) == Some(v))
        })
        .flat_map(|(sm, svc)| {
            let ports: Vec<u16> = svc
                .spec
                .as_ref()
                .and_then(|sp| sp.ports.clone())
                .unwrap_or_default()
                .iter()
                .map(|p| p.port as u16)
                .collect();
            let name = sm.name();
            ports.into_iter().map(move |p| (name.clone(), p))
        })
        .collect();

    let routes: Vec<_> = m.routes().map(|(_, r)| r.clone()).collect();
    let route_meta: Vec<(String, BTreeMap<String, String>)> = routes
        .iter()
        .map(|r| (route_key(r), r.metadata.labels.clone().unwrap_or_default()))
        .collect();
    let target_route = route_key(m.route(&l.path, &s.target.route)?);

    let model = &s.local.pods.model;
    let pod_kind = match &s.local.pods.command {
        Some(cmd) => PodSpecKind::Command {
            command: cmd.clone(),
            env: Vec::new(),
        },
        None => PodSpecKind::Builtin(PodModel {
            concurrency: model.concurrency,
            service_time: model.service_time.div_f64(speed),
            cpu_per_request: model.cpu_per_request.div_f64(speed),
            memory_base_bytes: model.memory_base_mib << 20,
            memory_per_inflight_bytes: 64 << 10,
        }),
    };

    let c = &s.local.controller;
    let controller = ControllerConfig {
        sync_period: c.sync_period.as_millis() as Millis,
        tolerance: c.tolerance,
        cpu_initialization_period: c.cpu_initialization_period.as_millis() as Millis,
        initial_readiness_delay: c.initial_readiness_delay.as_millis() as Millis,
        downscale_stabilization_window: c.downscale_stabilization.as_millis() as Millis,
        ..ControllerConfig::default()
    };

    let replica_set = format!("{deploy_name}-{}", template_hash(&deploy_name));
    let mt = &s.local.metrics;
    let keep =
        mt.window.max(mt.resource_window).as_secs_f64() + 2.0 * mt.scrape_interval.as_secs_f64();
    let initial = s.target.replicas.or(dspec.replicas).unwrap_or(1);
    let cfg = Config {
        deployment: deploy_name,
        replica_set,
        container: container.name.clone(),
        cpu_request_milli,
        memory_request_milli,
        pod_kind,
        startup_delay: s.local.pods.startup_delay,
        probe_path,
        probe_period,
        probe_initial_delay,
        grace,
        services,
        hpa,
        selector: dspec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        controller,
        sync_period: c.sync_period,
        scrape_interval: mt.scrape_interval,
        windows: Windows {
            rate: mt.window.as_secs_f64(),
            resource: mt.resource_window.as_secs_f64(),
            speed,
            container: container.name.clone(),
        },
        routes: route_meta,
    };
    let host = s.target.host.clone().or_else(|| {
        m.route(&l.path, &s.target.route)
            .ok()
            .and_then(|r| r.spec.hostnames.clone())
            .and_then(|h| h.into_iter().find(|h| !h.starts_with('*')))
    });
    Ok(Blueprint {
        cfg,
        http_routes: routes,
        initial,
        host,
        keep,
        target_route,
    })
}

/// Kubernetes' pod-template-hash is a short hash of the template; ours only needs to be stable.
fn template_hash(name: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..9)
        .map(|i| alphabet[((h >> (i * 3)) as usize + i) % alphabet.len()] as char)
        .collect()
}

pub(crate) fn random_suffix(rng: &mut rand::rngs::StdRng) -> String {
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Keeps the number of pods equal to spec.replicas, as the Deployment and
/// ReplicaSet controllers do.
async fn deployment_controller(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        reconcile_pods(&sh);
        tokio::select! {
            _ = sh.kick.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

fn reconcile_pods(sh: &Arc<Shared>) {
    let mut st = sh.lock();
    let rs = sh.cfg.replica_set.clone();
    let view: Vec<_> = st
        .pods
        .iter()
        .map(|p| (p.phase, p.ready_since, p.created))
        .collect();
    let Some((plan, msg)) = resize(&view, st.spec_replicas, &rs) else {
        return;
    };
    let deploy = format!("Deployment/{}", sh.cfg.deployment);
    match plan {
        Resize::Create(n) => {
            for _ in 0..n {
                let name = format!("{rs}-{}", random_suffix(&mut st.rng));
                let task = tokio::spawn(pod_lifecycle(sh.clone(), name.clone()));
                st.pods.push(PodEntry {
                    name,
                    created: sh.clock.now(),
                    phase: Phase::Pending,
                    started: None,
                    ready_since: None,
                    handle: None,
                    startup: Some(task.abort_handle()),
                });
            }
        }
        Resize::Delete(victims) => {
            for i in victims {
                let p = &mut st.pods[i];
                p.phase = Phase::Terminating;
                if let Some(a) = p.startup.take() {
                    a.abort();
                }
                let name = p.name.clone();
                let handle = p.handle.clone();
                tokio::spawn(terminate(sh.clone(), name, handle));
            }
        }
    }
    sh.event(
        &mut st,
        "Normal",
        "ScalingReplicaSet",
        deploy,
        "deployment-controller",
        msg,
    );
    drop(st);
    update_endpoints(sh);
}

/// What the ReplicaSet controller does to reach the wanted replicas.
pub(crate) enum Resize {
    /// Create this many pods.
    Create(usize),
    /// Delete these pods (indices, in deletion order).
    Delete(Vec<usize>),
}

/// The resize for pods given as (phase, ready since, created) and its
/// ScalingReplicaSet message; `None` when the count is already right
/// (shared with `sim`).
pub(crate) fn resize(
    pods: &[(Phase, Option<f64>, f64)],
    want: i32,
    rs: &str,
) -> Option<(Resize, String)> {
    let active = pods.iter().filter(|p| p.0 != Phase::Terminating).count() as i32;
    if active == want {
        return None;
    }
    let (plan, verb) = if active < want {
        (Resize::Create((want - active) as usize), "up")
    } else {
        let mut order = scale_in_order(pods);
        order.truncate((active - want) as usize);
        (Resize::Delete(order), "down")
    };
    Some((
        plan,
        format!("Scaled {verb} replica set {rs} from {active} to {want}"),
    ))
}

/// Indices of the non-terminating pods, given as (phase, ready since,
/// created), in the order the ReplicaSet controller deletes them: pending
/// before running, unready before ready, the most recently ready first, then
/// the newest (shared with `sim`).
pub(crate) fn scale_in_order(pods: &[(Phase, Option<f64>, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pods.len())
        .filter(|&i| pods[i].0 != Phase::Terminating)
        .collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a], &pods[b]);
        let rank = |p: &(Phase, Option<f64>, f64)| (p.0 == Phase::Running, p.1.is_some());
        rank(pa)
            .cmp(&rank(pb))
            .then_with(|| {
                pb.1.unwrap_or(0.0)
                    .partial_cmp(&pa.1.unwrap_or(0.0))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| pb.2.partial_cmp(&pa.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    order
}

/// Pending → (start-up delay) → Running → (readiness probe) → Ready.
async fn pod_lifecycle(sh: Arc<Shared>, name: String) {
    sh.clock.sleep(sh.cfg.startup_delay).await;
    let handle = match PodHandle::start(&name, &sh.cfg.pod_kind, sh.clock.speed()).await {
        Ok(h) => Arc::new(h),
        Err(e) => {
            let mut st = sh.lock();
            let msg = format!("pod {name} failed to start: {e:#}");
            st.failures.push(msg.clone());
            sh.event(
                &mut st,
                "Warning",
                "Failed",
                format!("Pod/{name}"),
                "kubelet",
                msg,
            );
            return;
        }
    };
    {
        let mut st = sh.lock();
        let Some(p) = st.pods.iter_mut().find(|p| p.name == name) else {
            return;
        };
        p.phase = Phase::Running;
        p.started = Some(sh.clock.now());
        p.handle = Some(handle.clone());
    }
    sh.clock.sleep(sh.cfg.probe_initial_delay).await;
    // Probe until the first success; the built-in server answers health
    // probes outside its capacity model, so a ready pod stays ready.
    while !handle.probe(&sh.cfg.probe_path).await {
        sh.clock.sleep(sh.cfg.probe_period).await;
    }
    {
        let mut st = sh.lock();
        if let Some(p) = st
            .pods
            .iter_mut()
            .find(|p| p.name == name && p.phase == Phase::Running)
        {
            p.ready_since = Some(sh.clock.now());
            p.startup = None;
        }
    }
    update_endpoints(&sh);
}

/// Out of the endpoints at once, then drain in-flight requests and stop.
async fn terminate(sh: Arc<Shared>, name: String, handle: Option<Arc<PodHandle>>) {
    update_endpoints(&sh);
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

fn update_endpoints(sh: &Arc<Shared>) {
    let eps: Vec<Endpoint> = {
        let st = sh.lock();
        st.pods
            .iter()
            .filter(|p| p.phase == Phase::Running && p.ready_since.is_some())
            .filter_map(|p| {
                p.handle.as_ref().map(|h| Endpoint {
                    pod: p.name.clone(),
                    addr: h.addr(),
                })
            })
            .collect()
    };
    for (svc, port) in &sh.cfg.services {
        if let Err(e) = sh.gateway.set_endpoints(svc, *port, eps.clone()) {
            let mut st = sh.lock();
            let msg = format!("cannot update endpoints of Service {svc}: {e:#}");
            st.failures.push(msg.clone());
            sh.event(
                &mut st,
                "Warning",
                "FailedToUpdateEndpoint",
                format!("Service/{svc}"),
                "endpoint-controller",
                msg,
            );
        }
    }
}

/// Scrapes counters every scrape interval for the metrics pipeline.
async fn scraper(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut k = 0u64;
    loop {
        let t = k as f64 * sh.cfg.scrape_interval.as_secs_f64();
        tokio::select! {
            _ = sh.clock.sleep_until(t) => {}
            _ = stop.changed() => return,
        }
        let handles: Vec<(String, Arc<PodHandle>)> = sh
            .lock()
            .pods
            .iter()
            .filter_map(|p| p.handle.clone().map(|h| (p.name.clone(), h)))
            .collect();
        let gw = sh.gateway.stats();
        let pods = handles
            .iter()
            .map(|(name, h)| {
                let s = h.stats();
                PodCounters {
                    name: name.clone(),
                    cpu_ns: s.cpu_busy_ns,
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
        // Stamped with the scheduled instant, not the wake-up: a few ms of
        // timer jitter (× speed) would otherwise move points across the
        // edge of the 60 s rate window and change what the HPA sees.
        sh.lock().history.scrape(t, pods, routes);
        k += 1;
    }
}

/// The pods as the HPA sees them.
fn pod_infos(sh: &Shared, st: &State) -> Vec<PodInfo> {
    st.pods
        .iter()
        .map(|p| pod_info(&sh.cfg, &p.name, p.phase, p.started, p.ready_since))
        .collect()
}

/// One pod as the HPA sees it, from its lifecycle times in cluster seconds
/// (shared with `sim`).
pub(crate) fn pod_info(
    cfg: &Config,
    name: &str,
    phase: Phase,
    started: Option<f64>,
    ready_since: Option<f64>,
) -> PodInfo {
    let ms = |t: f64| (t * 1000.0).round() as Millis;
    let mut requests = BTreeMap::new();
    if let Some(c) = cfg.cpu_request_milli {
        requests.insert("cpu".to_string(), c);
    }
    if let Some(m) = cfg.memory_request_milli {
        requests.insert("memory".to_string(), m);
    }
    PodInfo {
        name: name.to_string(),
        phase: match phase {
            Phase::Pending => PodPhase::Pending,
            _ => PodPhase::Running,
        },
        deletion_timestamp_set: phase == Phase::Terminating,
        start_time: started.map(ms),
        ready: started.map(|s| ReadyCondition {
            status: if ready_since.is_some() {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            last_transition: ms(ready_since.unwrap_or(s)),
        }),
        containers: vec![ContainerInfo {
            name: cfg.container.clone(),
            requests,
        }],
        pod_requests: None,
        labels: None,
    }
}

fn snapshot(sh: &Shared, st: &State) -> Snapshot {
    Snapshot::build(&st.history, &sh.cfg.windows, &sh.cfg.routes)
}
