//! The `sim` backend: the cluster core on a virtual clock. No sockets, no
//! sleeps; load is the scenario's arrival curve, pods are queue models of
//! `local.pods.model`, and the Deployment lifecycle, metrics pipeline and
//! scalers are the core's, as on the local backend. Deterministic given the
//! seed (pod names, Poisson spacing).
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
use crate::prepared::Prepared;
use arrivals::Arrivals;
use queue::{Model, Queue};

/// The simulation step in seconds.
pub const STEP: f64 = 0.01;
/// Steps per second.
const STEPS_PER_S: f64 = 100.0;

fn ticks(secs: f64) -> u64 {
    (secs * STEPS_PER_S).round().max(1.0) as u64
}

pub struct SimCluster {
    core: Core<Queue>,
    model: Model,
    arrivals: Arrivals,
    /// The current step; cluster time is `tick / STEPS_PER_S`.
    tick: u64,
    /// The step at which experiment time started.
    origin: Option<u64>,
    scrape_every: u64,
    sync_every: u64,
    sync_offset: u64,
    /// Round-robin counter of the gateway's service slot.
    next: u64,
    /// Requests through the target route.
    route_requests: u64,
    /// Serving pods at the current step's start (reused: this runs every step).
    endpoints: Vec<usize>,
    samples: usize,
    n_samples: usize,
    interval: f64,
    duration: f64,
    last_t: f64,
}

impl SimCluster {
    pub fn new(p: &Prepared, seed: u64) -> Result<Self> {
        let s = p.scenario();
        let cfg = Arc::new(Config::new(p)?);
        let timers = Timers::new(&cfg);
        let m = &s.local.pods.model;
        let model = Model {
            service: m.service_time.as_secs_f64(),
            cpu_per_request: m.cpu_per_request.as_secs_f64(),
            concurrency: m.concurrency.max(1),
            memory_base: m.memory_base_mib << 20,
        };
        let duration = s.duration.as_secs_f64();
        let interval = s.sample_interval.as_secs_f64();
        let arrivals = Arrivals::new(
            Schedule::new(p.loaded.rate_curve()?, p.loaded.spacing(seed)),
            duration,
            interval,
            s.load.timeout().as_secs_f64(),
            s.load.max_in_flight(),
        );
        let sync_every = ticks(timers.sync);
        let mut sim = Self {
            core: Core::new(cfg, seed),
            model,
            arrivals,
            tick: 0,
            origin: None,
            scrape_every: ticks(timers.scrape),
            sync_every,
            // The k-th sync is at `Timers::sync_at(k)`: half a period in.
            sync_offset: (timers.sync_at(0) * STEPS_PER_S).round() as u64,
            next: 0,
            route_requests: 0,
            endpoints: Vec::new(),
            samples: 0,
            n_samples: (duration / interval).ceil() as usize,
            interval,
            duration,
            last_t: 0.0,
        };
        let model = sim.model;
        sim.core.reconcile(0.0, |_| Queue::new(&model));
        Ok(sim)
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
            self.endpoints.clear();
            let serving = (0..self.core.pods.len()).filter(|&i| self.core.pods[i].serving());
            self.endpoints.extend(serving);
            let (pods, endpoints, model) = (&mut self.core.pods, &self.endpoints, &self.model);
            let (next, route_requests) = (&mut self.next, &mut self.route_requests);
            self.arrivals.send_until(t0, now, |at| {
                *route_requests += 1;
                if endpoints.is_empty() {
                    return (503, at);
                }
                let i = endpoints[(*next % endpoints.len() as u64) as usize];
                *next += 1;
                (200, pods[i].rt.admit(at, model))
            });
        }
        self.lifecycle(now);
        if self.tick.is_multiple_of(self.scrape_every) {
            self.scrape(now);
        }
        if self.tick >= self.sync_offset
            && (self.tick - self.sync_offset).is_multiple_of(self.sync_every)
        {
            self.core.sync(now);
        }
        let model = self.model;
        self.core.reconcile(now, |_| Queue::new(&model));
    }

    /// Pending → Running when the start-up delay is over → Ready at the
    /// first probe (a queue model always answers); terminating pods go once
    /// their queue is done or the grace is over.
    fn lifecycle(&mut self, now: f64) {
        let eps = 1e-9;
        let core = &mut self.core;
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
        let model = self.model;
        let pods = self
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
        let target = &self.core.cfg.target_route;
        let routes = self
            .core
            .cfg
            .routes
            .iter()
            .map(|(name, _)| {
                let n = if name == target {
                    self.route_requests
                } else {
                    0
                };
                (name.clone(), n)
            })
            .collect();
        self.core.scrape(now, pods, routes);
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
                match self.core.gate(self.now(), "simulated cluster") {
                    Gate::Open => {
                        self.origin = Some(self.tick);
                        let (now, model) = (self.now(), self.model);
                        self.core.rebase(|p| Self::reading(now, &model, p));
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
                events: self.core.take_events(0.0),
                ..Default::default()
            };
        };
        let origin_s = o as f64 / STEPS_PER_S;
        if self.samples >= self.n_samples {
            return Observation {
                events: self.core.take_events(origin_s),
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
        let (now, model) = (self.now(), self.model);
        let (replicas, pods) = self
            .core
            .observe(t - self.last_t, |p| Self::reading(now, &model, p));
        self.last_t = due;
        let load = self.arrivals.take(self.samples);
        self.samples += 1;
        self.tick += 1;
        Observation {
            replicas,
            pods,
            hpa: self.core.status.sample.clone(),
            events: self.core.take_events(origin_s),
            load: Some(load),
        }
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
