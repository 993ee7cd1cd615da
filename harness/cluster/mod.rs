//! The embedded control plane, shared by the `local` and `sim` backends: the
//! Deployment/ReplicaSet controller, the metrics pipeline, the scalers'
//! sync schedule and the events, as state that advances with time. It never
//! reads a clock: every step is given its instant in cluster seconds, so the
//! local backend drives it from a real clock (`--speed N`) and the sim
//! backend from a virtual one, and both make the same decisions.
//!
//! - [`config`]: the fixed facts read from the scenario and manifests.
//! - [`deployment`]: resize plans, scale-in order, pod names, pods as the HPA sees them.
//! - [`metrics`]: scrapes and windows (metrics-server, Prometheus + adapter).
//! - [`scaler`]: the seam where the HPA (and later other scalers) decide.
//! - [`observe`]: what one sample records of the pods and replicas.
//! - [`restart`]: containers that exit: not ready, an event, restart with back-off.

pub(crate) mod config;
pub(crate) mod deployment;
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod restart;
pub(crate) mod scaler;

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;

pub(crate) use config::Config;
pub(crate) use deployment::{Phase, Pod, Resize};
use metrics::{History, PodCounters, Snapshot};
pub(crate) use restart::Exited;
use scaler::{Scaler, View};

use crate::recorder::{Event, HpaSample};

/// When things happen: scrapes every scrape interval from t = 0, scaler
/// syncs every sync period from half a period on. The controller and the
/// scraper start a moment apart, as in a cluster; half a period keeps syncs
/// from racing scrapes at the same instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    pub(crate) scrape: f64,
    pub(crate) sync: f64,
}

impl Timers {
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            scrape: cfg.scrape_interval.as_secs_f64(),
            sync: cfg.sync_period.as_secs_f64(),
        }
    }
    /// The k-th scrape instant (k from 0).
    pub(crate) fn scrape_at(&self, k: u64) -> f64 {
        k as f64 * self.scrape
    }
    /// The k-th sync instant (k from 0).
    pub(crate) fn sync_at(&self, k: u64) -> f64 {
        self.sync / 2.0 + k as f64 * self.sync
    }
}

/// The scaler's last word, as the timeline records it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScalerStatus {
    pub(crate) sample: Option<HpaSample>,
    pub(crate) desired: i32,
    /// It has once reported that it can act (ScalingActive=True).
    pub(crate) active: bool,
}

/// Where the wait for a ready cluster stands.
pub(crate) enum Gate {
    /// Every replica is ready and the scaler is active: experiment time starts.
    Open,
    Waiting,
    /// It will not become ready; why.
    Failed(String),
}

impl Gate {
    /// The gate of a cluster of several tiers: open when every tier's is,
    /// failed as soon as one has failed.
    pub(crate) fn all(gates: impl IntoIterator<Item = Gate>) -> Gate {
        let mut open = true;
        for g in gates {
            match g {
                Gate::Failed(why) => return Gate::Failed(why),
                Gate::Waiting => open = false,
                Gate::Open => {}
            }
        }
        if open {
            Gate::Open
        } else {
            Gate::Waiting
        }
    }
}

/// The control plane's state. `P` is what the driver keeps per pod.
pub(crate) struct Core<P> {
    pub(crate) cfg: Arc<Config>,
    pub(crate) spec_replicas: i32,
    pub(crate) pods: Vec<Pod<P>>,
    /// Events in cluster time, waiting for the next observation.
    events: Vec<Event>,
    history: History,
    /// What scales this Deployment; none holds it at its size.
    scaler: Option<Box<dyn Scaler>>,
    /// A schedule that adjusts it (or its HPA's range).
    cron: Option<scaler::cron::CronScaler>,
    /// Cluster time of experiment t = 0, once the run has started.
    origin: Option<f64>,
    pub(crate) status: ScalerStatus,
    /// Why pods failed to start, for the ready gate.
    pub(super) failures: Vec<String>,
    rng: rand::rngs::StdRng,
}

impl<P> Core<P> {
    pub(crate) fn new(cfg: Arc<Config>, seed: u64) -> Self {
        let scaler = cfg.hpa.clone().map(|hpa| {
            Box::new(scaler::hpa::HpaScaler::new(
                hpa,
                cfg.selector.clone(),
                cfg.controller,
            )) as Box<dyn Scaler>
        });
        // A Lua policy instead of an HPA (validation refuses both).
        let scaler = scaler.or_else(|| {
            cfg.lua.clone().map(|policy| {
                Box::new(crate::lua::policy::LuaScaler::new(
                    policy,
                    cfg.deployment.clone(),
                    cfg.cpu_request_milli,
                    cfg.memory_request_milli,
                    seed,
                )) as Box<dyn Scaler>
            })
        });
        let cron = cfg
            .schedule
            .clone()
            .map(|sc| scaler::cron::CronScaler::new(sc.object, sc.target, sc.firings));
        Self {
            cron,
            origin: None,
            spec_replicas: cfg.initial_replicas,
            pods: Vec::new(),
            events: Vec::new(),
            history: History::new(cfg.history_keep),
            scaler,
            status: ScalerStatus {
                desired: cfg.initial_replicas,
                // Nothing to wait for when nothing scales it.
                active: cfg.hpa.is_none() && cfg.lua.is_none(),
                ..Default::default()
            },
            failures: Vec::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            cfg,
        }
    }

    pub(crate) fn event(
        &mut self,
        now: f64,
        type_: &str,
        reason: &str,
        object: String,
        source: &str,
        message: String,
    ) {
        self.events.push(Event {
            t: now,
            type_: type_.into(),
            reason: reason.into(),
            object,
            source: source.into(),
            message,
            ..Default::default()
        });
    }

    /// A pod could not start: a Warning event, and the ready gate fails.
    pub(crate) fn pod_failed(&mut self, now: f64, name: &str, message: String) {
        self.failures.push(message.clone());
        self.event(
            now,
            "Warning",
            "Failed",
            format!("Pod/{name}"),
            "kubelet",
            message,
        );
    }

    /// When a pod is due to start: its creation plus the start-up delay.
    pub(crate) fn start_due(&self, created: f64) -> f64 {
        created + self.cfg.startup_delay.as_secs_f64()
    }

    /// When a pod that started at `started` is due for its `k`-th readiness
    /// probe (k from 0): after the initial delay, then every period.
    pub(crate) fn probe_due(&self, started: f64, k: u32) -> f64 {
        started
            + self.cfg.probe_initial_delay.as_secs_f64()
            + f64::from(k) * self.cfg.probe_period.as_secs_f64()
    }

    /// The index of the pod named `name`, while it exists.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// Pod `i` goes Pending → Running at `t` (no change in another phase).
    pub(crate) fn mark_running(&mut self, i: usize, t: f64) -> bool {
        let p = &mut self.pods[i];
        if p.phase != Phase::Pending {
            return false;
        }
        p.phase = Phase::Running;
        p.started = Some(t);
        p.last_start = Some(t);
        true
    }

    /// Pod `i`'s readiness probe passed at `t` (a running pod only).
    pub(crate) fn mark_ready(&mut self, i: usize, t: f64) -> bool {
        let p = &mut self.pods[i];
        if p.phase != Phase::Running {
            return false;
        }
        p.ready_since.get_or_insert(t);
        true
    }

    /// Pods that exist and are not terminating (status.replicas).
    pub(crate) fn current(&self) -> i32 {
        self.pods
            .iter()
            .filter(|p| p.phase != Phase::Terminating)
            .count() as i32
    }

    /// The ReplicaSet controller: creates pods (named, with `make`'s driver
    /// state) or marks victims Terminating so that the live count equals
    /// spec.replicas, with its ScalingReplicaSet event. Returns the indices
    /// of the pods it created or marked, for the driver to start or stop.
    pub(crate) fn reconcile(
        &mut self,
        now: f64,
        mut make: impl FnMut(&str) -> P,
    ) -> Option<(Resize, Vec<usize>)> {
        let rs = self.cfg.replica_set.clone();
        let (plan, msg) = deployment::resize(&self.pods, self.spec_replicas, &rs)?;
        let touched = match &plan {
            Resize::Create(n) => {
                let first = self.pods.len();
                for _ in 0..*n {
                    let name = format!("{rs}-{}", deployment::random_suffix(&mut self.rng));
                    let rt = make(&name);
                    self.pods.push(Pod {
                        name,
                        created: now,
                        phase: Phase::Pending,
                        started: None,
                        ready_since: None,
                        terminating_since: None,
                        last_start: None,
                        exited: None,
                        restarts: 0,
                        backoff: Default::default(),
                        last: None,
                        rt,
                    });
                }
                (first..self.pods.len()).collect()
            }
            Resize::Delete(victims) => {
                for &i in victims {
                    let p = &mut self.pods[i];
                    p.phase = Phase::Terminating;
                    p.terminating_since = Some(now);
                }
                victims.clone()
            }
        };
        let object = format!("Deployment/{}", self.cfg.deployment);
        self.event(
            now,
            "Normal",
            "ScalingReplicaSet",
            object,
            "deployment-controller",
            msg,
        );
        Some((plan, touched))
    }

    /// One scrape of the pods' and routes' cumulative counters.
    pub(crate) fn scrape(&mut self, now: f64, pods: Vec<PodCounters>, routes: Vec<(String, u64)>) {
        self.history.scrape(now, pods, routes);
    }

    /// One scaler sync at its scheduled instant `now`. Returns whether it
    /// changed spec.replicas (the driver then reconciles).
    pub(crate) fn sync(&mut self, now: f64) -> bool {
        if self.scaler.is_none() {
            return false;
        }
        let pods: Vec<_> = self
            .pods
            .iter()
            .map(|p| deployment::pod_info(&self.cfg, p, now))
            .collect();
        let snap = Snapshot::build(&self.history, &self.cfg.windows, &self.cfg.routes);
        let current = self.current();
        let Some(scaler) = self.scaler.as_mut() else {
            return false;
        };
        let d = scaler.sync(
            now,
            &View {
                spec_replicas: self.spec_replicas,
                current,
                pods: &pods,
                metrics: &snap,
            },
        );
        if let Some(n) = d.new_size {
            self.spec_replicas = n;
        }
        self.events.extend(d.events);
        self.status.desired = d.desired;
        self.status.active |= d.active;
        self.status.sample = Some(d.status);
        d.new_size.is_some()
    }

    /// The load engine's statistics of the sample that ended at experiment
    /// time `t`, for the scaler (once the run has started).
    pub(crate) fn client_stats(&mut self, t: f64, s: &crate::load::IntervalStats) {
        if let (Some(origin), Some(sc)) = (self.origin, self.scaler.as_mut()) {
            sc.client_stats(origin + t, s);
        }
    }

    /// Experiment time starts at cluster time `origin`: the schedule's
    /// clock runs from here.
    pub(crate) fn start_experiment(&mut self, origin: f64) {
        self.origin = Some(origin);
    }

    /// Whether experiment time has started.
    pub(crate) fn started(&self) -> bool {
        self.origin.is_some()
    }

    /// Cluster time of the schedule's next firing, once the run has started.
    pub(crate) fn next_firing(&self) -> Option<f64> {
        Some(self.origin? + self.cron.as_ref()?.next_due()?)
    }

    /// Runs the schedule's jobs due by cluster time `now`, in order. Returns
    /// whether one changed spec.replicas (the driver then reconciles).
    pub(crate) fn fire_due(&mut self, now: f64) -> bool {
        let (Some(origin), Some(cron)) = (self.origin, self.cron.as_mut()) else {
            return false;
        };
        let mut changed = false;
        while let Some(f) = cron.fire_next(
            now - origin,
            now,
            self.spec_replicas,
            self.scaler.as_deref_mut(),
        ) {
            self.events.push(f.event);
            if let Some(n) = f.scale_to.filter(|&n| n != self.spec_replicas) {
                self.spec_replicas = n;
                changed = true;
            }
        }
        changed
    }

    /// The scaler's last status as a sample records it; with a schedule,
    /// the HPA's range as it is now.
    pub(crate) fn hpa_sample(&self) -> Option<HpaSample> {
        let mut s = self.status.sample.clone()?;
        if self.cron.is_some() {
            if let Some(r) = self.scaler.as_ref().and_then(|sc| sc.hpa_range()) {
                s.min_replicas = Some(r.min);
                s.max_replicas = Some(r.max);
            }
        }
        Some(s)
    }

    /// Whether the cluster is ready for load at `now` (cluster seconds since
    /// it started), like `kubectl wait`: every replica ready and the scaler
    /// active, within the ready timeout. `what` names the cluster in errors.
    pub(crate) fn gate(&self, now: f64, what: &str) -> Gate {
        let ready = self
            .pods
            .iter()
            .filter(|p| p.phase != Phase::Terminating && p.ready_since.is_some())
            .count() as i32;
        if ready >= self.spec_replicas && self.status.active {
            return Gate::Open;
        }
        let timeout = self.cfg.ready_timeout;
        if now > timeout.as_secs_f64() {
            let why = if let Some(f) = self.failures.last() {
                f.clone()
            } else if ready < self.spec_replicas {
                format!(
                    "{ready} of {} pods became ready (readiness probe GET {})",
                    self.spec_replicas, self.cfg.probe_path
                )
            } else {
                let cond = self
                    .status
                    .sample
                    .as_ref()
                    .and_then(|h| h.conditions.iter().find(|c| c.type_ == "ScalingActive"))
                    .map(|c| format!("{}: {}", c.reason, c.message))
                    .unwrap_or_else(|| "no status yet".into());
                match &self.cfg.lua {
                    Some(l) => format!(
                        "the Lua policy {} never ran without an error ({cond})",
                        l.name
                    ),
                    None => format!("the HPA never reported ScalingActive=True ({cond})"),
                }
            };
            return Gate::Failed(format!(
                "the {what} was not ready within {}: {why}",
                crate::scenario::fmt_dur(timeout)
            ));
        }
        match self.failures.last() {
            Some(f) => Gate::Failed(format!("a pod failed to start: {f}")),
            None => Gate::Waiting,
        }
    }

    /// The events since the last call, in experiment time (`origin` is the
    /// cluster time of experiment t = 0).
    pub(crate) fn take_events(&mut self, origin: f64) -> Vec<Event> {
        self.events
            .drain(..)
            .map(|mut e| {
                e.t -= origin;
                e
            })
            .collect()
    }
}

/// How often the ready gate is looked at, in cluster seconds.
pub(crate) const GATE_POLL: Duration = Duration::from_millis(500);
