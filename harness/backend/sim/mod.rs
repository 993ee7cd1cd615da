//! The `sim` backend: the cluster core on a virtual clock. No sockets, no
//! sleeps; load is the scenario's arrival curve, pods are queue models of
//! `local.pods.model`, and the Deployment lifecycle, metrics pipeline and
//! scalers are the core's, as on the local backend. Deterministic given the
//! seed (pod names, Poisson spacing).
//!
//! With a gateway tier, each instance is a queue of its own in front of the
//! backend's queues: a request waits for an instance's worker, then for a
//! backend pod, each picked round robin among the Ready ones.
//!
//! Time advances in fixed steps of [`STEP`] (10 ms). Arrivals are handled at
//! their exact instants inside a step (routing sees the endpoints as they
//! were at the step's start); pod lifecycle, scrapes, syncs and samples
//! happen on step boundaries, where all their instants fall for durations in
//! whole 10 ms.

mod arrivals;
mod queue;

use std::sync::Arc;

use anyhow::Result;

use super::{Backend, BoxFuture, Observation};
use crate::cluster::metrics::PodCounters;
use crate::cluster::observe::Reading;
use crate::cluster::{Config, Core, Gate, Phase, Timers, GATE_POLL};
use crate::error::InfraError;
use crate::load::Schedule;
use crate::prepared::{Prepared, Role};
use crate::recorder::TierSample;
use arrivals::Arrivals;
use queue::{Model, Queue};

/// The simulation step in seconds.
pub const STEP: f64 = 0.01;
/// Steps per second.
const STEPS_PER_S: f64 = 100.0;
/// The backend's index in `tiers`.
const BACKEND: usize = 0;

fn ticks(secs: f64) -> u64 {
    (secs * STEPS_PER_S).round().max(1.0) as u64
}

/// One workload: its control plane and its pods' queue model.
struct Tier {
    core: Core<Queue>,
    model: Model,
    /// Round-robin counter of its Service.
    next: u64,
    /// Its serving pods at the current step's start (reused: this runs every step).
    endpoints: Vec<usize>,
}

impl Tier {
    /// The serving pods now, for this step's routing.
    fn refresh_endpoints(&mut self) {
        self.endpoints.clear();
        let pods = &self.core.pods;
        self.endpoints
            .extend((0..pods.len()).filter(|&i| pods[i].serving()));
    }

    /// Admits a request arriving at `at` to the next serving pod, round
    /// robin; when it is done, or `None` when no pod serves.
    fn admit(&mut self, at: f64) -> Option<f64> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.endpoints[(self.next % self.endpoints.len() as u64) as usize];
        self.next += 1;
        Some(self.core.pods[i].rt.admit(at, &self.model))
    }
}

pub struct SimCluster {
    /// The backend first, then the gateway tier if there is one.
    tiers: Vec<Tier>,
    /// The tier the scenario's HPA scales.
    target: usize,
    arrivals: Arrivals,
    /// The current step; cluster time is `tick / STEPS_PER_S`.
    tick: u64,
    /// The step at which experiment time started.
    origin: Option<u64>,
    scrape_every: u64,
    sync_every: u64,
    sync_offset: u64,
    /// Requests through the target route.
    route_requests: u64,
    samples: usize,
    n_samples: usize,
    interval: f64,
    duration: f64,
    last_t: f64,
}

impl SimCluster {
    pub fn new(p: &Prepared, seed: u64) -> Result<Self> {
        let s = p.scenario();
        let m = &s.local.pods.model;
        let backend_model = Model {
            service: m.service_time.as_secs_f64(),
            cpu_per_request: m.cpu_per_request.as_secs_f64(),
            concurrency: m.concurrency.max(1),
            memory_base: m.memory_base_mib << 20,
        };
        let mut tiers = Vec::new();
        for (i, t) in p.tiers.iter().enumerate() {
            let cfg = Arc::new(Config::new(p, i)?);
            let model = match t.role {
                Role::Backend => backend_model,
                Role::Gateway => {
                    let g = &s.local.gateway.model;
                    Model {
                        service: crate::backend::local::gateway_service_time(
                            g,
                            t.cpu_limit_milli(),
                        )
                        .as_secs_f64(),
                        cpu_per_request: g.cpu_per_request.as_secs_f64(),
                        concurrency: g.concurrency.max(1),
                        memory_base: g.memory_base_mib << 20,
                    }
                }
            };
            let mut core = Core::new(cfg, seed.wrapping_add(i as u64));
            core.reconcile(0.0, |_| Queue::new(&model));
            tiers.push(Tier {
                core,
                model,
                next: 0,
                endpoints: Vec::new(),
            });
        }
        let timers = Timers::new(&tiers[BACKEND].core.cfg);
        let duration = s.duration.as_secs_f64();
        let interval = s.sample_interval.as_secs_f64();
        let arrivals = Arrivals::new(
            Schedule::new(p.loaded.rate_curve()?, p.loaded.spacing(seed)),
            duration,
            interval,
            s.load.timeout().as_secs_f64(),
            s.load.max_in_flight(),
        );
        Ok(Self {
            tiers,
            target: p.target_tier(),
            arrivals,
            tick: 0,
            origin: None,
            scrape_every: ticks(timers.scrape),
            sync_every: ticks(timers.sync),
            // The k-th sync is at `Timers::sync_at(k)`: half a period in.
            sync_offset: (timers.sync_at(0) * STEPS_PER_S).round() as u64,
            route_requests: 0,
            samples: 0,
            n_samples: (duration / interval).ceil() as usize,
            interval,
            duration,
            last_t: 0.0,
        })
    }

    fn now(&self) -> f64 {
        self.tick as f64 / STEPS_PER_S
    }

    /// One step at the current tick: arrivals since the last step, pod
    /// lifecycle, a scrape and a sync when due, then the ReplicaSet.
    fn step(&mut self) {
        let now = self.now();
        if let Some(o) = self.origin.filter(|&o| self.tick > o) {
            let t0 = o as f64 / STEPS_PER_S;
            for t in &mut self.tiers {
                t.refresh_endpoints();
            }
            let (backend, rest) = self.tiers.split_at_mut(1);
            let (backend, mut gateway) = (&mut backend[0], rest.first_mut());
            let route_requests = &mut self.route_requests;
            self.arrivals.send_until(t0, now, |at| {
                *route_requests += 1;
                // Through a gateway instance first, when there is a tier of them.
                let at = match gateway.as_mut() {
                    Some(g) => match g.admit(at) {
                        Some(done) => done,
                        None => return (503, at),
                    },
                    None => at,
                };
                match backend.admit(at) {
                    Some(end) => (200, end),
                    None => (503, at),
                }
            });
        }
        for i in 0..self.tiers.len() {
            self.lifecycle(i, now);
        }
        if self.tick.is_multiple_of(self.scrape_every) {
            self.scrape(now);
        }
        let sync = self.tick >= self.sync_offset
            && (self.tick - self.sync_offset).is_multiple_of(self.sync_every);
        for t in &mut self.tiers {
            if sync {
                t.core.sync(now);
            }
            t.core.fire_due(now);
            let model = t.model;
            t.core.reconcile(now, |_| Queue::new(&model));
        }
    }

    /// Pending → Running when the start-up delay is over → Ready at the
    /// first probe (a queue model always answers); terminating pods go once
    /// their queue is done or the grace is over.
    fn lifecycle(&mut self, tier: usize, now: f64) {
        let eps = 1e-9;
        let core = &mut self.tiers[tier].core;
        for i in 0..core.pods.len() {
            let p = &core.pods[i];
            if p.phase == Phase::Pending && now + eps >= core.start_due(p.created) {
                core.mark_running(i, now);
            }
            let p = &core.pods[i];
            if let Some(s) = p.started.filter(|_| p.ready_since.is_none()) {
                if now + eps >= core.probe_due(s, 0) {
                    core.mark_ready(i, now);
                }
            }
        }
        let grace = core.cfg.grace.as_secs_f64();
        core.pods.retain(|p| match p.terminating_since {
            Some(since) => p.rt.busy(now) && now < since + grace,
            None => true,
        });
    }

    fn scrape(&mut self, now: f64) {
        let route_requests = self.route_requests;
        for t in &mut self.tiers {
            let model = t.model;
            let pods = t
                .core
                .pods
                .iter_mut()
                .filter(|p| p.started.is_some())
                .map(|p| {
                    let in_flight = p.rt.in_flight(now);
                    PodCounters {
                        name: p.name.clone(),
                        cpu_ns: p.rt.cpu_ns(now, &model),
                        requests: p.rt.requests,
                        memory: Queue::memory(&model, in_flight),
                    }
                })
                .collect();
            let target = &t.core.cfg.target_route;
            let routes = t
                .core
                .cfg
                .routes
                .iter()
                .map(|(name, _)| {
                    let n = if name == target { route_requests } else { 0 };
                    (name.clone(), n)
                })
                .collect();
            t.core.scrape(now, pods, routes);
        }
    }

    /// A pod's counters as a sample reads them.
    fn reading(now: f64, model: &Model, p: &mut crate::cluster::Pod<Queue>) -> Option<Reading> {
        let started = p.started.is_some();
        let in_flight = if started { p.rt.in_flight(now) } else { 0 };
        Some(Reading {
            requests: p.rt.requests,
            cpu_ns: if started { p.rt.cpu_ns(now, model) } else { 0 },
            memory_bytes: if started {
                Queue::memory(model, in_flight)
            } else {
                0
            },
            in_flight,
        })
    }

    /// Warm-up: steps until every replica is ready and the scaler is active.
    fn warm_up(&mut self) -> Result<()> {
        let poll = ticks(GATE_POLL.as_secs_f64());
        loop {
            self.step();
            if self.tick.is_multiple_of(poll) {
                let now = self.now();
                let gates = self
                    .tiers
                    .iter()
                    .map(|t| t.core.gate(now, &cluster_name(&t.core.cfg)));
                match Gate::all(gates) {
                    Gate::Open => {
                        self.origin = Some(self.tick);
                        for t in &mut self.tiers {
                            let model = t.model;
                            t.core.rebase(|p| Self::reading(now, &model, p));
                            t.core.start_experiment(now);
                        }
                        self.tick += 1;
                        return Ok(());
                    }
                    Gate::Failed(why) => return Err(InfraError(why).into()),
                    Gate::Waiting => {}
                }
            }
            self.tick += 1;
        }
    }

    /// Every tier's events since the last call, in time order.
    fn take_events(&mut self, origin: f64) -> Vec<crate::recorder::Event> {
        let mut events: Vec<_> = self
            .tiers
            .iter_mut()
            .flat_map(|t| t.core.take_events(origin))
            .collect();
        events.sort_by(|a, b| a.t.total_cmp(&b.t));
        events
    }
}

/// How the simulated cluster names a tier in the ready gate's errors.
fn cluster_name(cfg: &Config) -> String {
    match cfg.role {
        Role::Backend => "simulated cluster".into(),
        Role::Gateway => format!("simulated cluster's gateway tier ({})", cfg.deployment),
    }
}

impl Backend for SimCluster {
    fn target(&self) -> Option<super::LoadTarget> {
        None
    }

    fn ready(&mut self) -> BoxFuture<'_, Result<Option<tokio::time::Instant>>> {
        let r = self.warm_up().map(|()| None);
        Box::pin(async move { r })
    }

    /// Steps to the end of the next sample; `t` is the loop's idea of that
    /// instant, which the virtual clock reaches exactly.
    fn observe(&mut self, _t: f64) -> Observation {
        let Some(o) = self.origin else {
            // Not ready (a failed warm-up): only what the cluster said.
            return Observation {
                events: self.take_events(0.0),
                ..Default::default()
            };
        };
        let origin_s = o as f64 / STEPS_PER_S;
        if self.samples >= self.n_samples {
            return Observation {
                events: self.take_events(origin_s),
                ..Default::default()
            };
        }
        let due = ((self.samples + 1) as f64 * self.interval).min(self.duration);
        loop {
            self.step();
            let t = (self.tick - o) as f64 / STEPS_PER_S;
            if t + 1e-9 >= due {
                break;
            }
            self.tick += 1;
        }
        let t = (self.tick - o) as f64 / STEPS_PER_S;
        let now = self.now();
        let dt = t - self.last_t;
        let mut obs = Observation::default();
        for (i, tier) in self.tiers.iter_mut().enumerate() {
            let model = tier.model;
            let (replicas, pods) = tier.core.observe(dt, |p| Self::reading(now, &model, p));
            let hpa = tier.core.hpa_sample();
            if i == self.target {
                (obs.replicas, obs.pods, obs.hpa) = (replicas, pods, hpa);
            } else {
                obs.tiers.push(TierSample {
                    deployment: tier.core.cfg.deployment.clone(),
                    role: tier.core.cfg.role.name().into(),
                    replicas,
                    pods,
                    hpa,
                });
            }
        }
        self.last_t = due;
        obs.load = Some(self.arrivals.take(self.samples));
        obs.events = self.take_events(origin_s);
        self.samples += 1;
        self.tick += 1;
        obs
    }

    fn client_stats(&mut self, t: f64, s: &crate::load::IntervalStats) {
        self.tiers[self.target].core.client_stats(t, s);
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
