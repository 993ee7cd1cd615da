//! The `kube` backend: the scenario against a real cluster through kube-rs.
//! A fresh namespace per run (labelled so `cleanup` finds leftovers), the
//! manifests by server-side apply in order, readiness from the Deployment's
//! Available condition and the HPA's ScalingActive, then kube-runtime
//! watchers (which relist after a dropped watch or `410 Gone`) feed the
//! same samples and events as the embedded backend, with the cluster's own
//! timestamps. The namespace is deleted at the end unless `--keep`.
//!
//! What the run watches (`Watched`) is the scenario's HPA, the Deployment
//! it scales and that Deployment's pods. Usually all three are among the
//! manifests, in the run's namespace. With `target.hpa: NAMESPACE/NAME` the
//! HPA is one that something in the cluster created (Envoy Gateway for its
//! proxy Deployment, from an EnvoyProxy's `envoyHpa`): it and its
//! Deployment are read from the cluster and watched where they live, and
//! the harness never changes or deletes them; the run's namespace still
//! holds the manifests (the backend and the route).

pub mod cleanup;
mod controller;
pub mod convert;
pub mod kind;
mod lua;
mod outage;
mod prometheus;
mod rescales;
mod schedule;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Config};
use tokio::task::JoinHandle;

use super::{Backend, BoxFuture, LoadTarget, Observation};
use crate::error::{InfraError, InputError, UsageError};
use crate::manifests::Object;
use crate::prepared::{InClusterHpa, Prepared};
use crate::scenario::{Loaded, ScheduleController};
use convert::{Applied, FIELD_MANAGER, MANAGED_BY, RUN_LABEL, SCENARIO_LABEL};
use rescales::Rescales;

/// Command-line settings of the kube backend.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Leave the namespace for debugging.
    pub keep: bool,
    /// Create or reuse this kind cluster first.
    pub kind: Option<String>,
}

/// How long API calls may take before the cluster counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's answer may stall (applies, lists, Prometheus
/// queries answer in well under a second on a healthy cluster).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Clients for the chosen context: `api` for requests, with a read timeout
/// so a stalled API server is noticed, and `watch` for the watchers, with
/// none: a watch is idle for as long as nothing changes, and a read timeout
/// would cut it and leave events to arrive after the watcher's back-off
/// (kube-rs's watcher asks the server to end each watch after 290 s).
/// `poll` is `api` without kube-rs's retries of 429, 503 and 504, and with
/// a read timeout of one poll period: the pollers' next round is their
/// retry, and a metrics API that is down answers 503 (the aggregator's
/// "unable to handle the request"), which retried with back-off would hold
/// the last readings for minutes; one that stalls would hold them for the
/// request timeout.
pub struct Clients {
    pub api: Client,
    pub watch: Client,
    pub poll: Client,
}

/// Connects to the chosen context; the API server must answer and accept
/// the credentials, or this is an infrastructure error (exit 3) before
/// anything is created or any load is sent.
pub async fn connect(o: &KubeOptions) -> Result<Clients> {
    let opts = KubeConfigOptions {
        context: o.context.clone(),
        ..Default::default()
    };
    let where_ = || match (&o.kubeconfig, &o.context) {
        (Some(p), Some(c)) => format!("context `{c}` of {}", p.display()),
        (Some(p), None) => format!("the current context of {}", p.display()),
        (None, Some(c)) => format!("context `{c}`"),
        (None, None) => "the current kubeconfig context".into(),
    };
    let mut config = match &o.kubeconfig {
        Some(p) => {
            let kc = Kubeconfig::read_from(p)
                .map_err(|e| InfraError(format!("cannot read kubeconfig {}: {e}", p.display())))?;
            Config::from_custom_kubeconfig(kc, &opts).await
        }
        None => Config::from_kubeconfig(&opts).await,
    }
    .map_err(|e| InfraError(format!("cannot load {}: {e}", where_())))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let mut watch_config = config.clone();
    watch_config.read_timeout = None;
    config.read_timeout = Some(REQUEST_TIMEOUT);
    let mut poll_config = config.clone();
    poll_config.default_retry = false;
    poll_config.read_timeout = Some(USAGE_POLL);
    let url = config.cluster_url.to_string();
    let build = |c: Config| {
        Client::try_from(c)
            .map_err(|e| InfraError(format!("cannot build a client for {}: {e}", where_())))
    };
    let (client, watch, poll) = (build(config)?, build(watch_config)?, build(poll_config)?);
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(Clients {
            api: client,
            watch,
            poll,
        }),
        Ok(Err(kube::Error::Api(s))) if s.code == 401 || s.code == 403 => Err(InfraError(format!(
            "the cluster at {url} refused the credentials of {} (HTTP {}): {}",
            where_(),
            s.code,
            s.message
        ))
        .into()),
        Ok(Err(e)) => Err(InfraError(format!(
            "cannot reach the cluster at {url} ({}): {e}",
            where_()
        ))
        .into()),
        Err(_) => Err(InfraError(format!(
            "cannot reach the cluster at {url} ({}): no answer within {}s",
            where_(),
            CONNECT_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

/// `target.url`, which the kube backend needs: the harness cannot know
/// where a cluster's gateway is reachable from here.
pub fn gateway_url(l: &Loaded) -> Result<String, crate::error::InputError> {
    l.scenario.target.url.clone().ok_or_else(|| {
        crate::error::InputError::new(
            &l.path,
            "is required for --backend kube: the gateway's address as seen from here, e.g. http://127.0.0.1:8080",
        )
        .field("target.url")
    })
}

/// A short random run id (lowercase letters and digits).
pub fn run_id() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand::rng();
    (0..6)
        .map(|_| CHARS[r.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The run namespace's objects in apply order, Namespace first, as YAML
/// documents (what `--dry-run` prints); `id` stands for the run id.
pub fn dry_run_yaml(p: &Prepared, id: &str) -> Result<String> {
    let (l, m) = (&p.loaded, &p.manifests);
    let ns = convert::namespace_name(&l.name(), id);
    let mut docs = vec![serde_norway::to_string(&namespace_object(
        &ns,
        &l.name(),
        id,
    ))?];
    for a in applied(p, &ns) {
        docs.push(serde_norway::to_string(&a.object.to_json())?);
    }
    let mut watched = match &p.in_cluster {
        Some(ih) => format!(
            "# watched, not applied: HorizontalPodAutoscaler {}/{} (target.hpa), the Deployment it scales and its pods, read from the cluster\n",
            ih.namespace, ih.name
        ),
        None => String::new(),
    };
    if let Some(policy) = &p.lua {
        // No HPA is applied: the harness is the Deployment's autoscaler.
        let deployment = p.deployment.metadata.name.as_deref().unwrap_or_default();
        watched.push_str(&lua::describe(policy, deployment));
    }
    if let Some((_, c)) = m.cron_hpas().next() {
        let why = match p.schedule.as_ref().map(|sc| sc.controller) {
            Some(ScheduleController::Cluster) => None,
            Some(_) => Some(
                "schedule.controller: harness; the harness plays the controller (HPA min/max by server-side apply, the scale subresource, Events)",
            ),
            None => Some("schedule.controller: off"),
        };
        if let Some(why) = why {
            watched.push_str(&format!(
                "# not applied: {}/{} ({why})\n",
                crate::cronhpa::object::KIND,
                c.name()
            ));
        }
    }
    Ok(watched
        + &docs
            .into_iter()
            .map(|d| format!("---\n{d}"))
            .collect::<String>())
}

/// The manifests to apply into `ns`, in order: all of them but the
/// CronHorizontalPodAutoscaler, which only `schedule.controller: cluster`
/// applies (the cluster's controller acts on it; with `harness` the
/// cluster may lack its CRD, with `off` it is left out).
fn applied(p: &Prepared, ns: &str) -> Vec<Applied> {
    let by_cluster = p
        .schedule
        .as_ref()
        .is_some_and(|sc| sc.controller == ScheduleController::Cluster);
    convert::relocate(&p.manifests, ns, p.scenario().target.replicas)
        .into_iter()
        .filter(|a| by_cluster || !matches!(a.object, Object::CronHpa(_)))
        .collect()
}

fn namespace_object(ns: &str, scenario: &str, id: &str) -> Namespace {
    // The scenario name as the namespace spells it: a valid label value.
    let scenario_label = convert::dns_label(scenario, 63);
    Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(ns.into()),
            annotations: Some(cleanup::annotations()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (RUN_LABEL.to_string(), id.to_string()),
                (SCENARIO_LABEL.to_string(), scenario_label),
            ])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What the run observes: the HPA, the Deployment it scales and that
/// Deployment's pods, all in `ns`.
#[derive(Debug, Clone)]
struct Watched {
    /// The run's namespace, or for `target.hpa: NAMESPACE/NAME` the HPA's.
    ns: String,
    hpa: String,
    deployment: String,
    /// `k=v,...` of the Deployment's matchLabels.
    pod_selector: String,
    cpu_request_milli: Option<i64>,
    /// The HPA's minReplicas and maxReplicas.
    min: i32,
    max: i32,
    /// Created by something else in the cluster: only read, never changed.
    in_cluster: bool,
}

impl Watched {
    /// The HPA and the Deployment among the manifests, moved into `ns`.
    fn from_manifests(p: &Prepared, ns: &str) -> Self {
        let spec = p.hpa.spec.as_ref();
        Watched {
            ns: ns.into(),
            hpa: p.hpa_name().into(),
            deployment: p.deployment.metadata.name.clone().unwrap_or_default(),
            pod_selector: convert::pod_selector(&p.deployment),
            cpu_request_milli: convert::cpu_request_milli(&p.deployment),
            min: spec.and_then(|s| s.min_replicas).unwrap_or(1),
            max: spec.map_or(0, |s| s.max_replicas),
            in_cluster: false,
        }
    }

    /// An HPA the cluster already has and the Deployment it scales, read
    /// before the run creates anything: a missing HPA is the cluster's
    /// problem (exit 3), expectations its bounds rule out are the
    /// scenario's (exit 2), as they are for an HPA among the manifests.
    async fn from_cluster(client: &Client, p: &Prepared, ih: &InClusterHpa) -> Result<Self> {
        let l = &p.loaded;
        let (ns, name) = (ih.namespace.as_str(), ih.name.as_str());
        let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|e| {
                InfraError(format!(
                    "cannot read HorizontalPodAutoscaler {ns}/{name}: {}",
                    api_message(&e)
                ))
            })?
            .ok_or_else(|| {
                InfraError(format!(
                    "HorizontalPodAutoscaler {ns}/{name} (target.hpa in {}) is not in the cluster; it is not among the scenario's manifests, so something in the cluster must create it (for scenarios/paper-kind.yaml: Envoy Gateway, from EnvoyProxy default/paper in manifests/kind/gateway.yaml, which `--kind` installs)",
                    l.path.display()
                ))
            })?;
        crate::prepared::check_against_hpa(l, &hpa)?;
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        if target.kind != "Deployment" {
            return Err(InputError::new(
                &l.path,
                format!(
                    "HorizontalPodAutoscaler {ns}/{name} scales {} {}; the kube backend observes a Deployment's replicas and pods",
                    target.kind, target.name
                ),
            )
            .field("target.hpa")
            .at(crate::yaml::nearest_line(&l.text, "target.hpa"), None)
            .into());
        }
        let d = Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt(&target.name)
            .await
            .map_err(|e| {
                InfraError(format!(
                    "cannot read Deployment {ns}/{}: {}",
                    target.name,
                    api_message(&e)
                ))
            })?
            .ok_or_else(|| {
                InfraError(format!(
                    "Deployment {ns}/{}, the scale target of HorizontalPodAutoscaler {ns}/{name}, is not in the cluster",
                    target.name
                ))
            })?;
        let pod_selector = convert::pod_selector(&d);
        // An empty selector would watch every pod of a namespace the run
        // does not own.
        if pod_selector.is_empty() {
            return Err(InfraError(format!(
                "Deployment {ns}/{} has no matchLabels to find its pods by",
                target.name
            ))
            .into());
        }
        Ok(Watched {
            ns: ns.into(),
            hpa: name.into(),
            deployment: target.name.clone(),
            pod_selector,
            cpu_request_milli: convert::cpu_request_milli(&d),
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
            in_cluster: true,
        })
    }
}

/// Shared with the watcher tasks.
#[derive(Default)]
struct Seen {
    events: Vec<KubeEvent>,
    /// Every HPA version the watch delivered, for the rescales' sizes.
    hpas: Vec<Arc<HorizontalPodAutoscaler>>,
    usage: BTreeMap<String, (f64, u64)>,
    /// The metrics API's last error while it fails (its readings are then
    /// dropped: a gap, not the last values held).
    usage_error: Option<String>,
    /// Every status of the CronHorizontalPodAutoscaler the watch delivered
    /// (`schedule.controller: cluster`).
    cron_statuses: Vec<crate::cronhpa::object::CronHpaStatus>,
    /// What the harness did as a controller, recorded directly: its
    /// schedule firings (`schedule.controller: harness`) and its Lua
    /// policy's decisions.
    own_events: Vec<crate::recorder::Event>,
}

/// The run's schedule on the cluster: who runs it, and from t = 0 when
/// each job fires (when the harness runs it).
struct ScheduleRun {
    sched: crate::prepared::Schedule,
    /// Experiment t = 0 on the schedule's clock, once ready.
    clock_start: Option<jiff::Zoned>,
    firings: Vec<crate::cronhpa::plan::Firing>,
    conditions: schedule::Conditions,
}

pub struct KubeCluster {
    client: Client,
    /// For the watchers: no read timeout (see `Clients`).
    watch_client: Client,
    /// For the pollers: no retries (see `Clients`).
    poll_client: Client,
    pub ns: String,
    keep: bool,
    applied: Vec<Applied>,
    watched: Watched,
    /// The applied Deployments other than the watched one (all of them when
    /// the HPA is the cluster's): they must be Available before load starts.
    others: Vec<String>,
    target: LoadTarget,
    ready_timeout: Duration,
    /// The run's length in experiment seconds.
    duration: f64,
    hpa: Option<Store<HorizontalPodAutoscaler>>,
    deploy: Option<Store<Deployment>>,
    pods: Option<Store<Pod>>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
    /// Unix seconds at experiment t = 0: the start of the ready wait until
    /// the target is ready, then that moment.
    t0: f64,
    recorded: HashSet<(String, String)>,
    rescales: Rescales,
    usage_outage: outage::Outage,
    /// `namespace/service:port` of the cluster's Prometheus, and the proxy
    /// path of the per-pod rate query.
    prometheus: (String, String),
    rates: Arc<Mutex<prometheus::PodRates>>,
    rates_outage: outage::Outage,
    schedule: Option<ScheduleRun>,
    /// The Lua policy the harness runs as the Deployment's autoscaler.
    lua: Option<lua::Shared>,
    /// Experiment t = 0 on tokio's clock, once ready.
    start: Option<tokio::time::Instant>,
}

impl KubeCluster {
    /// Creates the run namespace (labelled for `cleanup`); nothing else yet,
    /// so an interrupt from here on has something definite to delete.
    /// `seed` seeds a Lua policy's `math.random`.
    pub async fn create(clients: Clients, p: &Prepared, keep: bool, seed: u64) -> Result<Self> {
        let Clients {
            api: client,
            watch: watch_client,
            poll: poll_client,
        } = clients;
        let l = &p.loaded;
        let s = &l.scenario;
        let url = gateway_url(l)?;
        let id = run_id();
        let ns = convert::namespace_name(&l.name(), &id);
        let watched = match &p.in_cluster {
            None => Watched::from_manifests(p, &ns),
            Some(ih) => Watched::from_cluster(&client, p, ih).await?,
        };
        let applied = applied(p, &ns);
        let others = applied
            .iter()
            .filter(|a| matches!(a.object, Object::Deployment(_)))
            .filter(|a| watched.in_cluster || a.name != watched.deployment)
            .map(|a| a.name.clone())
            .collect();
        let host = p.host.clone();
        let nsapi: Api<Namespace> = Api::all(client.clone());
        nsapi
            .create(
                &PostParams::default(),
                &namespace_object(&ns, &l.name(), &id),
            )
            .await
            .map_err(|e| {
                InfraError(format!("cannot create namespace {ns}: {}", api_message(&e)))
            })?;
        // `$namespace` is where the watched pods are.
        let prometheus = (
            s.kube.prometheus.service.clone(),
            prometheus::query_path(&s.kube.prometheus, &watched.ns),
        );
        Ok(Self {
            applied,
            client,
            watch_client,
            poll_client,
            ns,
            keep,
            others,
            target: LoadTarget {
                base_url: url.trim_end_matches('/').to_string(),
                host,
            },
            ready_timeout: s.kube.ready_timeout,
            duration: s.duration.as_secs_f64(),
            hpa: None,
            deploy: None,
            pods: None,
            seen: Default::default(),
            tasks: Vec::new(),
            t0: now_unix(),
            recorded: HashSet::new(),
            rescales: Rescales::default(),
            usage_outage: outage::Outage::default(),
            prometheus,
            rates: Default::default(),
            rates_outage: outage::Outage::default(),
            schedule: p.schedule.clone().map(|sched| ScheduleRun {
                sched,
                clock_start: None,
                firings: Vec::new(),
                conditions: Default::default(),
            }),
            lua: p.lua.clone().map(|policy| {
                let scaler = crate::lua::policy::LuaScaler::new(
                    policy,
                    watched.deployment.clone(),
                    // On a cluster the requests come from each pod's spec.
                    None,
                    None,
                    seed,
                );
                Arc::new(Mutex::new(lua::PolicyRun {
                    scaler,
                    desired: None,
                }))
            }),
            watched,
            start: None,
        })
    }

    /// Server-side apply of every object, in manifest order.
    async fn apply(&self) -> Result<()> {
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        for a in &self.applied {
            let body = a.object.to_json();
            let c = self.client.clone();
            let ns = self.ns.as_str();
            let r = match &a.object {
                Object::Deployment(_) => Api::<Deployment>::namespaced(c, ns)
                    .patch(&a.name, &pp, &Patch::Apply(&body))
                    .await
                    .map(drop),
                Object::Service(_) => Api::<Service>::namespaced(c, ns)
                    .patch(&a.name, &pp, &Patch::Apply(&body))
                    .await
                    .map(drop),
                Object::Hpa(_) => Api::<HorizontalPodAutoscaler>::namespaced(c, ns)
                    .patch(&a.name, &pp, &Patch::Apply(&body))
                    .await
                    .map(drop),
                Object::HttpRoute(_) => {
                    Api::<gateway_api::apis::standard::httproutes::HttpRoute>::namespaced(c, ns)
                        .patch(&a.name, &pp, &Patch::Apply(&body))
                        .await
                        .map(drop)
                }
                // Only with `schedule.controller: cluster` (see `applied`).
                Object::CronHpa(_) => {
                    let ar = schedule::api_resource();
                    let r = Api::<kube::core::DynamicObject>::namespaced_with(c, ns, &ar)
                        .patch(&a.name, &pp, &Patch::Apply(&body))
                        .await
                        .map(drop);
                    // No such resource: the controller is not installed.
                    if let Err(e @ kube::Error::Api(s)) = &r {
                        if s.code == 404 {
                            return Err(InfraError(schedule::crd_missing(&a.name, ns, e)).into());
                        }
                    }
                    r
                }
            };
            r.map_err(|e| {
                InfraError(format!(
                    "cannot apply {} {} in {}: {}",
                    a.kind,
                    a.name,
                    self.ns,
                    api_message(&e)
                ))
            })?;
        }
        Ok(())
    }

    /// Starts the watchers: HPA, Deployment and pods into stores; Events and
    /// pod metrics into `seen`.
    fn watch(&mut self) {
        let c = &self.watch_client;
        let ns = self.ns.as_str();
        let w = &self.watched;
        let wns = w.ns.as_str();
        let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
        let seen = self.seen.clone();
        // A Lua policy's stand-in names no HPA in the cluster.
        let hs = self.lua.is_none().then(|| {
            reflect(
                &mut self.tasks,
                Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), wns),
                by_name(&w.hpa),
                move |h| lock(&seen).hpas.push(h),
            )
        });
        let ds = reflect(
            &mut self.tasks,
            Api::<Deployment>::namespaced(c.clone(), wns),
            by_name(&w.deployment),
            drop,
        );
        let ps = reflect(
            &mut self.tasks,
            Api::<Pod>::namespaced(c.clone(), wns),
            watcher::Config::default().labels(&w.pod_selector),
            drop,
        );
        // Every Event of the run's namespace; in a namespace the run does
        // not own, those about the watched HPA and its workload.
        let mut event_sources = vec![(ns.to_string(), None)];
        if w.in_cluster {
            event_sources.push((wns.to_string(), Some((w.hpa.clone(), w.deployment.clone()))));
        }
        for (ens, only) in event_sources {
            let seen = self.seen.clone();
            let s = watcher(
                Api::<KubeEvent>::namespaced(c.clone(), &ens),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects();
            self.tasks.push(tokio::spawn(s.for_each(move |e| {
                if let Ok(e) = e {
                    if only
                        .as_ref()
                        .is_none_or(|(h, d)| convert::concerns(&e, h, d))
                    {
                        lock(&seen).events.push(e);
                    }
                }
                async {}
            })));
        }
        if let Some(sr) = self
            .schedule
            .as_ref()
            .filter(|sr| sr.sched.controller == ScheduleController::Cluster)
        {
            // Each version's status: a job's condition is replaced at its
            // next run, so every version counts, not only the latest.
            let seen = self.seen.clone();
            let ar = schedule::api_resource();
            let s = watcher(
                Api::<kube::core::DynamicObject>::namespaced_with(c.clone(), ns, &ar),
                by_name(sr.sched.object.name()),
            )
            .default_backoff()
            .applied_objects();
            self.tasks.push(tokio::spawn(s.for_each(move |o| {
                if let Ok(o) = o {
                    if let Some(st) = o.data.get("status").and_then(|v| {
                        serde_json::from_value::<crate::cronhpa::object::CronHpaStatus>(v.clone())
                            .ok()
                    }) {
                        lock(&seen).cron_statuses.push(st);
                    }
                }
                async {}
            })));
        }
        self.tasks.push(tokio::spawn(cleanup::heartbeat(
            self.client.clone(),
            ns.to_string(),
        )));
        self.tasks.push(tokio::spawn(prometheus::poll(
            self.poll_client.clone(),
            self.prometheus.1.clone(),
            self.rates.clone(),
        )));
        self.tasks.push(tokio::spawn(poll_usage(
            self.poll_client.clone(),
            wns.to_string(),
            self.seen.clone(),
        )));
        self.hpa = hs;
        self.deploy = Some(ds);
        self.pods = Some(ps);
    }

    /// The harness's own warning about the run's namespace, at `now` (Unix).
    fn warning(&self, now: f64, reason: &str, message: String) -> crate::recorder::Event {
        crate::recorder::Event {
            type_: "Warning".into(),
            ..self.normal(now, reason, message)
        }
    }

    /// A polled source's outage began (a warning: `began`'s reason and
    /// message, and the error) or ended (a Normal event, `ended`).
    fn outage_event(
        &self,
        now: f64,
        change: outage::Change,
        began: (&str, String),
        ended: (&str, String),
    ) -> crate::recorder::Event {
        match change {
            outage::Change::Began(err) => {
                self.warning(now, began.0, format!("{}: it answered {err}", began.1))
            }
            outage::Change::Ended => self.normal(now, ended.0, ended.1),
        }
    }

    /// An event of the harness's own about the namespace it runs in.
    fn normal(&self, now: f64, reason: &str, message: String) -> crate::recorder::Event {
        crate::recorder::Event {
            t: now - self.t0,
            type_: "Normal".into(),
            reason: reason.into(),
            object: format!("Namespace/{}", self.ns),
            source: "autoscale-harness".into(),
            message,
            ..Default::default()
        }
    }

    fn hpa_obj(&self) -> Option<Arc<HorizontalPodAutoscaler>> {
        self.hpa.as_ref()?.state().into_iter().next()
    }
    fn deploy_obj(&self) -> Option<Arc<Deployment>> {
        self.deploy.as_ref()?.state().into_iter().next()
    }
    fn pod_list(&self) -> Vec<Pod> {
        self.pods
            .as_ref()
            .map(|s| s.state().iter().map(|p| (**p).clone()).collect())
            .unwrap_or_default()
    }

    /// Applies, then waits for the Deployment to be Available and the HPA
    /// to report ScalingActive=True (with a Lua policy, the harness is the
    /// autoscaler and starts it then); on timeout says why from the pods.
    pub async fn wait_ready(&mut self) -> Result<()> {
        // Experiment time until ready: what is recorded if it never is.
        self.t0 = now_unix();
        self.apply().await?;
        self.watch();
        let start = std::time::Instant::now();
        loop {
            let avail = self
                .deploy_obj()
                .is_some_and(|d| convert::deployment_available(&d));
            let lua = self.lua.is_some();
            let active = lua || self.hpa_obj().is_some_and(|h| convert::scaling_active(&h));
            // An HPA that was there before the run (or a Deployment applied
            // below its floor) may still be raising the Deployment to
            // minReplicas; the run starts from the floor, not on the way.
            // A Lua policy raises it at its first call, after t = 0.
            let spec = self
                .deploy_obj()
                .and_then(|d| d.spec.as_ref()?.replicas)
                .unwrap_or(0);
            let floor = lua || spec >= self.watched.min;
            let others = self.others_unavailable().await?;
            if avail && active && floor && others.is_empty() {
                self.t0 = now_unix();
                self.start = Some(tokio::time::Instant::now());
                if let Some(spec) = self.deploy_obj().and_then(|d| d.spec.as_ref()?.replicas) {
                    self.rescales.set_initial(spec);
                }
                self.start_schedule()?;
                self.start_policy();
                return Ok(());
            }
            let why = convert::diagnose(&self.pod_list());
            // Image pulls and crash loops do not fix themselves: fail early.
            if let Some(w) = why.iter().find(|w| {
                [
                    "ErrImagePull",
                    "ImagePullBackOff",
                    "InvalidImageName",
                    "CrashLoopBackOff",
                ]
                .iter()
                .any(|r| w.contains(r))
            }) {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(InfraError(format!(
                        "the Deployment {} did not become ready: {w}",
                        self.watched.deployment
                    ))
                    .into());
                }
            }
            if start.elapsed() > self.ready_timeout {
                let mut reasons = why;
                if !avail {
                    reasons.push(format!(
                        "Deployment {}/{} is not Available",
                        self.watched.ns, self.watched.deployment
                    ));
                }
                if !floor {
                    reasons.push(format!(
                        "Deployment {}/{} has {spec} replicas, below the HPA's minReplicas {}",
                        self.watched.ns, self.watched.deployment, self.watched.min
                    ));
                }
                for d in others {
                    reasons.push(format!("Deployment {}/{d} is not Available", self.ns));
                }
                if !active {
                    let cond = self
                        .hpa_obj()
                        .map(|h| convert::hpa_sample(&h))
                        .and_then(|s| {
                            s.conditions
                                .into_iter()
                                .find(|c| c.type_ == "ScalingActive")
                        })
                        .map(|c| format!("{}: {}", c.reason, c.message))
                        .unwrap_or_else(|| "no status yet".into());
                    reasons.push(format!(
                        "HPA {}/{} is not ScalingActive ({cond})",
                        self.watched.ns, self.watched.hpa
                    ));
                }
                return Err(InfraError(format!(
                    "namespace {} was not ready within {}: {}",
                    self.ns,
                    crate::scenario::fmt_dur(self.ready_timeout),
                    reasons.join("; ")
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Experiment t = 0 on the schedule's clock: the real instant the run
    /// became ready, in `clock.start`'s zone (else UTC); `clock.start`'s
    /// instant does not apply, a real cluster keeps real time. With
    /// `schedule.controller: harness`, plans the firings from it and starts
    /// playing the controller.
    fn start_schedule(&mut self) -> Result<()> {
        let (Some(sr), Some(start)) = (self.schedule.as_mut(), self.start) else {
            return Ok(());
        };
        let zone = sr.sched.clock_start.time_zone().clone();
        let t0 = jiff::Timestamp::from_millisecond((self.t0 * 1000.0).round() as i64)
            .map_err(|e| InfraError(format!("the clock: {e}")))?
            .to_zoned(zone);
        sr.clock_start = Some(t0.clone());
        if sr.sched.controller != ScheduleController::Harness {
            return Ok(());
        }
        // Validation planned the same jobs over the same duration.
        sr.firings = crate::cronhpa::plan::firings(&sr.sched.object, &t0, self.duration)
            .map_err(|e| InfraError(format!("{}: {e}", sr.sched.object_ref())))?;
        let player = schedule::Player {
            client: self.client.clone(),
            ns: self.ns.clone(),
            object: sr.sched.object.clone(),
            target: sr.sched.target.clone(),
            t0: self.t0,
            start,
            seen: self.seen.clone(),
        };
        self.tasks
            .push(tokio::spawn(player.run(sr.firings.clone())));
        Ok(())
    }

    /// Starts the Lua policy's calls, from experiment t = 0.
    fn start_policy(&mut self) {
        let (Some(policy), Some(start), Some(deploy), Some(pods)) = (
            self.lua.clone(),
            self.start,
            self.deploy.clone(),
            self.pods.clone(),
        ) else {
            return;
        };
        let driver = lua::Driver {
            client: self.client.clone(),
            ns: self.watched.ns.clone(),
            deployment: self.watched.deployment.clone(),
            policy,
            deploy,
            pods,
            seen: self.seen.clone(),
            rates: self.rates.clone(),
            t0: self.t0,
            start,
        };
        self.tasks.push(tokio::spawn(driver.run()));
    }

    /// The applied Deployments besides the watched one that are not
    /// Available yet (the backend behind an in-cluster gateway tier).
    async fn others_unavailable(&self) -> Result<Vec<String>> {
        let api = Api::<Deployment>::namespaced(self.client.clone(), &self.ns);
        let mut out = Vec::new();
        for name in &self.others {
            let d = api.get_opt(name).await.map_err(|e| {
                InfraError(format!(
                    "cannot read Deployment {}/{name}: {}",
                    self.ns,
                    api_message(&e)
                ))
            })?;
            if !d.is_some_and(|d| convert::deployment_available(&d)) {
                out.push(name.clone());
            }
        }
        Ok(out)
    }
}

/// What the watcher and poller tasks share; a task that panicked holding
/// it leaves data that is still worth reading.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_unix() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// The API server's own message when there is one.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} (HTTP {})", s.message, s.code),
        other => other.to_string(),
    }
}

/// A reflector kept current in the background (relisting with backoff after
/// errors and `410 Gone`); its task joins `tasks`, its store is returned.
/// `each` sees every version the watch delivers, which the store forgets.
fn reflect<K>(
    tasks: &mut Vec<JoinHandle<()>>,
    api: Api<K>,
    config: watcher::Config,
    each: impl Fn(Arc<K>) + Send + 'static,
) -> Store<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned,
    K: 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let s = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects();
    tasks.push(tokio::spawn(s.for_each(move |o| {
        if let Ok(o) = o {
            each(Arc::new(o));
        }
        async {}
    })));
    store
}

/// Pod CPU and memory from the metrics API (metrics-server). It refreshes
/// every 15 s (its default resolution); asking every 5 s records a new
/// reading, or an outage, within 5 s of it. Absent in bare clusters: the
/// error is kept and reported.
async fn poll_usage(client: Client, ns: String, seen: Arc<Mutex<Seen>>) {
    let ar = kube::discovery::ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client, &ns, &ar);
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let mut usage = BTreeMap::new();
                for pm in list.items {
                    let name = pm.metadata.name.clone().unwrap_or_default();
                    let (mut cpu, mut mem) = (0.0, 0u64);
                    for c in pm.data["containers"].as_array().into_iter().flatten() {
                        let q = |k: &str| {
                            c["usage"][k]
                                .as_str()
                                .and_then(|s| crate::autoscaler::parse_quantity_f64(s).ok())
                        };
                        cpu += q("cpu").unwrap_or(0.0) * 1000.0;
                        mem += q("memory").unwrap_or(0.0) as u64;
                    }
                    usage.insert(name, (cpu, mem));
                }
                let mut s = lock(&seen);
                s.usage = usage;
                s.usage_error = None;
            }
            Err(e) => {
                let mut s = lock(&seen);
                s.usage.clear();
                s.usage_error = Some(crate::recorder::one_line(&api_message(&e)));
            }
        }
        tokio::time::sleep(USAGE_POLL).await;
    }
}

const USAGE_POLL: Duration = Duration::from_secs(5);

impl Backend for KubeCluster {
    fn target(&self) -> Option<LoadTarget> {
        Some(self.target.clone())
    }

    fn ready(&mut self) -> BoxFuture<'_, Result<Option<tokio::time::Instant>>> {
        // The instant of `t0`, which the schedule's firings count from.
        Box::pin(async { self.wait_ready().await.map(|()| self.start) })
    }

    fn schedule_started(&self) -> Option<crate::recorder::ScheduleMeta> {
        let sr = self.schedule.as_ref()?;
        let harness = sr.sched.controller == ScheduleController::Harness;
        let mut m = sr.sched.meta(sr.sched.controller.name(), false);
        m.clock_start = sr.clock_start.as_ref()?.to_string();
        if harness {
            for (i, j) in m.jobs.iter_mut().enumerate() {
                j.fires_at = sr
                    .firings
                    .iter()
                    .filter(|f| f.job == i)
                    .map(|f| f.t)
                    .collect();
            }
        }
        Some(m)
    }

    fn observe(&mut self, _t: f64) -> Observation {
        let hpa = self.hpa_obj();
        let dep = self.deploy_obj();
        let pods = self.pod_list();
        let (raw, hpas, usage, usage_error, cron_statuses, own_events) = {
            let mut s = lock(&self.seen);
            (
                std::mem::take(&mut s.events),
                std::mem::take(&mut s.hpas),
                s.usage.clone(),
                s.usage_error.clone(),
                std::mem::take(&mut s.cron_statuses),
                std::mem::take(&mut s.own_events),
            )
        };
        for h in &hpas {
            self.rescales.hpa(h);
        }
        let now = now_unix();
        let mut events = Vec::new();
        for e in &raw {
            let key = (
                e.metadata
                    .uid
                    .clone()
                    .or_else(|| e.metadata.name.clone())
                    .unwrap_or_default(),
                e.metadata.resource_version.clone().unwrap_or_default(),
            );
            // A relist delivers the same objects again. What the harness
            // did as a controller is recorded from its own record, a
            // firing of the cluster's cronhpa controller from the CronHPA's
            // status (see `schedule`).
            if !self.recorded.insert(key)
                || controller::posted_by_harness(e)
                || schedule::duplicate(e)
            {
                continue;
            }
            if let Some((ev, at)) = convert::event(e, self.t0) {
                events.extend(self.rescales.event(ev, at, now));
            }
        }
        events.extend(self.rescales.ready(now, false));
        events.extend(own_events);
        if let Some(sr) = self.schedule.as_mut() {
            let name = sr.sched.object.name().to_string();
            for st in &cron_statuses {
                events.extend(sr.conditions.events(&name, st, self.t0, now));
            }
        }
        events.sort_by(|a, b| a.t.total_cmp(&b.t));
        if let Some(change) = self.usage_outage.look(usage_error.as_deref()) {
            let lua = match &self.lua {
                Some(_) => " and the Lua policy's get_cpu_usage(), get_memory_usage() and get_memory_bytes() are nil",
                None => "",
            };
            events.push(self.outage_event(
                now,
                change,
                ("NoPodMetrics", format!("per-pod CPU and memory are not recorded{lua} until the metrics API answers again")),
                ("PodMetricsAvailable", "the metrics API answers again: per-pod CPU and memory are recorded from now".into()),
            ));
        }
        let rates = lock(&self.rates).clone();
        if let Some(change) = self.rates_outage.look(rates.error.as_deref()) {
            let at = &self.prometheus.0;
            events.push(self.outage_event(
                now,
                change,
                ("NoPodQps", format!("per-pod request rates are not observable until Prometheus at {at} answers again")),
                ("PodQpsAvailable", format!("Prometheus at {at} answers again: per-pod request rates are recorded from now")),
            ));
        }
        let mut replicas = convert::replicas(dep.as_deref(), &pods, hpa.as_deref());
        let status = match &self.lua {
            // The policy in place of the HPA: its status and desired size.
            Some(l) => {
                let l = lock(l);
                replicas.desired = l.desired.unwrap_or(replicas.spec);
                Some(l.scaler.status().clone())
            }
            None => hpa.map(|h| convert::hpa_sample(&h)),
        };
        Observation {
            replicas,
            pods: convert::pod_samples(&pods, &usage, &rates.qps, self.watched.cpu_request_milli),
            hpa: status,
            events,
            load: None,
            tiers: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<crate::recorder::Event> {
        let mut events = self.rescales.ready(now_unix(), true);
        // What the harness did as a controller since the last sample.
        events.extend(std::mem::take(&mut lock(&self.seen).own_events));
        events
    }

    fn watched_hpa(&self) -> Option<(String, i32, i32)> {
        // A Lua policy is no object in the cluster: run.json names it as
        // the scenario does.
        if self.lua.is_some() {
            return None;
        }
        let w = &self.watched;
        Some((format!("{}/{}", w.ns, w.hpa), w.min, w.max))
    }

    fn client_stats(&mut self, t: f64, s: &crate::load::IntervalStats) {
        use crate::cluster::scaler::Scaler;
        if let Some(l) = &self.lua {
            lock(l).scaler.client_stats(t, s);
        }
    }

    fn pod_qps_unobservable(&self) -> Option<String> {
        let r = lock(&self.rates);
        (!r.answered).then(|| {
            format!(
                "no per-pod request rates: Prometheus at {} (kube.prometheus) {}",
                self.prometheus.0,
                match &r.error {
                    Some(e) => format!("answered {e}"),
                    None => "was not asked before the run ended".into(),
                }
            )
        })
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            for t in &self.tasks {
                t.abort();
            }
            if self.keep {
                // A Lua policy's Events are about the Deployment it scales.
                let describe = match self.lua {
                    Some(_) => format!("deploy {}", self.watched.deployment),
                    None => format!("hpa {}", self.watched.hpa),
                };
                eprintln!(
                    "kept namespace {ns}; look at it with\n  kubectl -n {ns} get hpa,deploy,pods,httproute\n  kubectl -n {wns} describe {describe}\nand remove it with\n  kubectl delete namespace {ns}   (or: autoscale-harness cleanup)",
                    ns = self.ns,
                    wns = self.watched.ns,
                );
                return Ok(());
            }
            delete_namespace(&self.client, &self.ns).await
        })
    }
}

async fn delete_namespace(client: &Client, ns: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(ns, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            Err(InfraError(format!("cannot delete namespace {ns}: {}", api_message(&e))).into())
        }
    }
}

/// `--speed` compresses only embedded time; a cluster runs in real time.
pub fn check_speed(speed: f64) -> Result<(), UsageError> {
    if (speed - 1.0).abs() > 1e-9 {
        return Err(UsageError(format!(
            "--speed {speed}: a real cluster runs in real time; --speed applies to the local backend"
        )));
    }
    Ok(())
}
