//! The `sim` backend: the scenario on a virtual clock. No sockets, no
//! sleeps; load is the scenario's arrival curve, pods are queue models of
//! `local.pods.model`, and the Deployment lifecycle, metrics pipeline and HPA
//! controller are the `local` backend's own code paths. Deterministic given
//! the seed (pod names, Poisson spacing).
//!
//! Time advances in fixed steps of [`STEP`] (10 ms). Arrivals are handled at
//! their exact instants inside a step (routing sees the endpoints as they
//! were at the step's start); pod lifecycle, scrapes, HPA syncs and samples
//! happen on step boundaries, where all their instants fall for durations in
//! whole 10 ms.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use anyhow::Result;
use hdrhistogram::Histogram;
use rand::SeedableRng;

use super::local::hpa::sync;
use super::local::metrics::{History, PodCounters, Snapshot};
use super::local::{blueprint, pod_info, random_suffix, resize, Config, Phase, Resize};
use crate::autoscaler::HpaController;
use crate::error::InfraError;
use crate::load::Schedule;
use crate::manifests::Manifests;
use crate::recorder::{encode_hist, Event, HpaSample, PodSample, Replicas, Sample, StatusCounts};
use crate::run::percentiles;
use crate::scenario::{self, Loaded};

/// The simulation step in seconds.
pub const STEP: f64 = 0.01;
/// Steps per second.
const STEPS_PER_S: f64 = 100.0;
/// How long the cluster may take to become ready (as `run::READY_TIMEOUT`).
const READY_TIMEOUT_S: f64 = 300.0;
/// Readiness is polled like `LocalCluster::wait_ready` does, every 0.5 s.
const READY_POLL_S: f64 = 0.5;
/// Memory a request in flight adds, as the built-in pod model reports it.
const MEMORY_PER_INFLIGHT: u64 = 64 << 10;

/// What a simulated run recorded: what `Recorder` writes for the local backend.
#[derive(Debug, Clone, Default)]
pub struct SimRun {
    pub samples: Vec<Sample>,
    /// Events in experiment time (warm-up events have negative `t`).
    pub events: Vec<Event>,
}

struct SimPod {
    name: String,
    created: f64,
    phase: Phase,
    started: Option<f64>,
    ready_since: Option<f64>,
    terminating_since: Option<f64>,
    /// When each concurrency slot is next free (cluster seconds).
    free_at: Vec<f64>,
    /// End instants of admitted requests not yet finished, ascending.
    ends: VecDeque<f64>,
    requests: u64,
    /// CPU seconds charged at admission.
    scheduled_cpu: f64,
    /// (requests, cpu_ns) at the previous sample.
    last: Option<(u64, u64)>,
}

impl SimPod {
    fn ready(&self) -> bool {
        self.phase == Phase::Running && self.ready_since.is_some()
    }

    /// CPU actually executed by `now`, in nanoseconds: the charge at
    /// admission minus the work still ahead (as the built-in pod model
    /// computes it).
    fn cpu_ns(&self, now: f64, service: f64, cpu_per_request: f64) -> u64 {
        let pending: f64 = self.free_at.iter().map(|f| (f - now).max(0.0)).sum();
        let pending_cpu = if service > 0.0 {
            pending * cpu_per_request / service
        } else {
            0.0
        };
        ((self.scheduled_cpu - pending_cpu).max(0.0) * 1e9).round() as u64
    }

    fn in_flight(&mut self, now: f64) -> u64 {
        while self.ends.front().is_some_and(|&e| e <= now) {
            self.ends.pop_front();
        }
        self.ends.len() as u64
    }
}

/// Per-sample load statistics, filled as requests complete.
struct Bucket {
    intended: u64,
    sent: u64,
    completed: u64,
    dropped: u64,
    status: StatusCounts,
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

impl Bucket {
    fn new() -> Self {
        let h = || {
            Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
        };
        Self {
            intended: 0,
            sent: 0,
            completed: 0,
            dropped: 0,
            status: StatusCounts::default(),
            latency: h(),
            service: h(),
        }
    }
}

struct Sim<'a> {
    cfg: &'a Config,
    spec_replicas: i32,
    pods: Vec<SimPod>,
    events: Vec<Event>,
    rng: rand::rngs::StdRng,
    history: History,
    /// Round-robin counter of the gateway's service slot.
    next: u64,
    /// Requests through the target route.
    route_requests: u64,
    target_route: String,
    startup: f64,
    probe_initial_delay: f64,
    grace: f64,
    service: f64,
    cpu_per_request: f64,
    concurrency: usize,
    memory_base: u64,
}

impl Sim<'_> {
    fn event(&mut self, now: f64, reason: &str, object: String, source: &str, message: String) {
        self.events.push(Event {
            t: now,
            type_: "Normal".into(),
            reason: reason.into(),
            object,
            source: source.into(),
            message,
            ..Default::default()
        });
    }

    /// The Deployment and ReplicaSet controllers (`local::reconcile_pods`).
    fn reconcile_pods(&mut self, now: f64) {
        let rs = self.cfg.replica_set.clone();
        let view: Vec<_> = self
            .pods
            .iter()
            .map(|p| (p.phase, p.ready_since, p.created))
            .collect();
        let Some((plan, msg)) = resize(&view, self.spec_replicas, &rs) else {
            return;
        };
        match plan {
            Resize::Create(n) => {
                for _ in 0..n {
                    let name = format!("{rs}-{}", random_suffix(&mut self.rng));
                    self.pods.push(SimPod {
                        name,
                        created: now,
                        phase: Phase::Pending,
                        started: None,
                        ready_since: None,
                        terminating_since: None,
                        free_at: vec![f64::NEG_INFINITY; self.concurrency],
                        ends: VecDeque::new(),
                        requests: 0,
                        scheduled_cpu: 0.0,
                        last: None,
                    });
                }
            }
            Resize::Delete(victims) => {
                for i in victims {
                    let p = &mut self.pods[i];
                    p.phase = Phase::Terminating;
                    p.terminating_since = Some(now);
                }
            }
        }
        let object = format!("Deployment/{}", self.cfg.deployment);
        self.event(
            now,
            "ScalingReplicaSet",
            object,
            "deployment-controller",
            msg,
        );
    }

    /// Pending → Running after the start-up delay → Ready at the first probe;
    /// terminating pods go once their queue is done or the grace is over.
    fn lifecycle(&mut self, now: f64) {
        let eps = 1e-9;
        for p in &mut self.pods {
            if p.phase == Phase::Pending && now + eps >= p.created + self.startup {
                p.phase = Phase::Running;
                p.started = Some(now);
            }
            if p.phase == Phase::Running && p.ready_since.is_none() {
                if let Some(s) = p.started {
                    if now + eps >= s + self.probe_initial_delay {
                        p.ready_since = Some(now);
                    }
                }
            }
        }
        let grace = self.grace;
        self.pods.retain(|p| match p.terminating_since {
            Some(since) => {
                let busy = p.ends.back().is_some_and(|&e| e > now);
                busy && now < since + grace
            }
            None => true,
        });
    }

    /// One arrival at cluster time `t`: returns (status, completion time).
    fn arrive(&mut self, t: f64, endpoints: &[usize]) -> (u16, f64) {
        self.route_requests += 1;
        if endpoints.is_empty() {
            return (503, t);
        }
        let n = self.next;
        self.next += 1;
        let p = &mut self.pods[endpoints[(n % endpoints.len() as u64) as usize]];
        p.requests += 1;
        p.scheduled_cpu += self.cpu_per_request;
        let slot = (0..p.free_at.len())
            .min_by(|&a, &b| p.free_at[a].total_cmp(&p.free_at[b]))
            .unwrap_or(0);
        let start = p.free_at[slot].max(t);
        let end = start + self.service;
        p.free_at[slot] = end;
        p.ends.push_back(end);
        (200, end)
    }

    fn scrape(&mut self, now: f64) {
        let (service, cpu) = (self.service, self.cpu_per_request);
        let pods = self
            .pods
            .iter_mut()
            .filter(|p| p.started.is_some())
            .map(|p| {
                let in_flight = p.in_flight(now);
                PodCounters {
                    name: p.name.clone(),
                    cpu_ns: p.cpu_ns(now, service, cpu),
                    requests: p.requests,
                    memory: self.memory_base + MEMORY_PER_INFLIGHT * in_flight,
                }
            })
            .collect();
        let routes = self
            .cfg
            .routes
            .iter()
            .map(|(name, _)| {
                let n = if *name == self.target_route {
                    self.route_requests
                } else {
                    0
                };
                (name.clone(), n)
            })
            .collect();
        self.history.scrape(now, pods, routes);
    }
}

fn ticks(d: std::time::Duration) -> u64 {
    (d.as_secs_f64() * STEPS_PER_S).round().max(1.0) as u64
}

/// Runs the scenario on the virtual clock. Warm-up (cluster time before all
/// replicas are ready and the HPA is active) is simulated first; its events
/// get negative `t`.
pub fn simulate(l: &Loaded, m: &Manifests, seed: u64) -> Result<SimRun> {
    let s = &l.scenario;
    let bp = blueprint(l, m, 1.0)?;
    let cfg = &bp.cfg;
    let model = &s.local.pods.model;
    let mut sim = Sim {
        cfg,
        spec_replicas: bp.initial,
        pods: Vec::new(),
        events: Vec::new(),
        rng: rand::rngs::StdRng::seed_from_u64(seed),
        history: History::new(bp.keep),
        next: 0,
        route_requests: 0,
        target_route: bp.target_route.clone(),
        startup: cfg.startup_delay.as_secs_f64(),
        probe_initial_delay: cfg.probe_initial_delay.as_secs_f64(),
        grace: cfg.grace.as_secs_f64(),
        service: model.service_time.as_secs_f64(),
        cpu_per_request: model.cpu_per_request.as_secs_f64(),
        concurrency: model.concurrency.max(1),
        memory_base: model.memory_base_mib << 20,
    };
    let mut ctl = HpaController::new(cfg.controller);
    let mut hpa_sample: Option<HpaSample> = None;
    let mut hpa_desired = bp.initial;
    let mut hpa_active = false;

    let scrape_every = ticks(cfg.scrape_interval);
    let sync_every = ticks(cfg.sync_period);
    let sync_offset = sync_every / 2;
    let poll_every = (READY_POLL_S * STEPS_PER_S).round() as u64;

    // The load: intended instants in experiment seconds.
    let curve = l.rate_curve()?;
    let spacing = l.spacing(seed);
    let mut schedule = Schedule::new(curve, spacing).peekable();
    let timeout = s.load.timeout().as_secs_f64();
    let max_in_flight = s.load.max_in_flight();
    // Client-side completions (ns of cluster time) for the in-flight cap.
    let mut outstanding: BinaryHeap<Reverse<u64>> = BinaryHeap::new();

    let duration = s.duration.as_secs_f64();
    let interval = s.sample_interval.as_secs_f64();
    let n_samples = (duration / interval).ceil() as usize;
    // Made on first use: a histogram pair is a few hundred KiB.
    let mut buckets: Vec<Option<Bucket>> = (0..n_samples).map(|_| None).collect();
    let bucket_of = |t: f64| -> Option<usize> {
        // Sample k (0-based) covers (k·interval, (k+1)·interval].
        let k = ((t / interval) - 1e-9).ceil() as i64 - 1;
        (k >= 0 && (k as usize) < n_samples).then_some(k.max(0) as usize)
    };

    let mut origin: Option<u64> = None;
    let mut samples: Vec<Sample> = Vec::with_capacity(n_samples);
    let mut tick: u64 = 0;
    let mut endpoints: Vec<usize> = Vec::new();
    sim.reconcile_pods(0.0);
    loop {
        let now = tick as f64 / STEPS_PER_S;
        // Arrivals in (now - STEP, now], routed over the endpoints at the step's start.
        if let Some(o) = origin {
            if tick > o {
                let t0 = o as f64 / STEPS_PER_S;
                // Reused: this runs every 10 ms step, 8.64 M times a day.
                endpoints.clear();
                endpoints.extend((0..sim.pods.len()).filter(|&i| sim.pods[i].ready()));
                while let Some(&x) = schedule.peek() {
                    if t0 + x > now + 1e-12 || x > duration {
                        break;
                    }
                    schedule.next();
                    let at = t0 + x;
                    let at_ns = (at * 1e9).round() as u64;
                    while outstanding.peek().is_some_and(|r| r.0 <= at_ns) {
                        outstanding.pop();
                    }
                    let Some(b) = bucket_of(x) else { continue };
                    let b = buckets[b].get_or_insert_with(Bucket::new);
                    b.intended += 1;
                    if outstanding.len() >= max_in_flight {
                        b.dropped += 1;
                        continue;
                    }
                    b.sent += 1;
                    let (status, end) = sim.arrive(at, &endpoints);
                    let (done, latency) = if end - at > timeout {
                        (at + timeout, timeout)
                    } else {
                        (end, end - at)
                    };
                    outstanding.push(Reverse((done * 1e9).round() as u64));
                    if let Some(cb) = bucket_of(done - t0) {
                        let c = buckets[cb].get_or_insert_with(Bucket::new);
                        c.completed += 1;
                        if end - at > timeout {
                            c.status.timeout += 1;
                        } else if status == 200 {
                            c.status.s2xx += 1;
                        } else {
                            c.status.s5xx += 1;
                        }
                        let us = ((latency * 1e6).round() as u64).clamp(1, 3_600_000_000);
                        let _ = c.latency.record(us);
                        let _ = c.service.record(us);
                    }
                }
            }
        }

        sim.lifecycle(now);
        if tick.is_multiple_of(scrape_every) {
            sim.scrape(now);
        }
        if tick >= sync_offset && (tick - sync_offset).is_multiple_of(sync_every) {
            let current = sim
                .pods
                .iter()
                .filter(|p| p.phase != Phase::Terminating)
                .count() as i32;
            let pods: Vec<_> = sim
                .pods
                .iter()
                .map(|p| pod_info(cfg, &p.name, p.phase, p.started, p.ready_since))
                .collect();
            let snap = Snapshot::build(&sim.history, &cfg.windows, &cfg.routes);
            let s = sync(&mut ctl, cfg, sim.spec_replicas, current, &pods, &snap, now);
            if let Some(n) = s.new_size {
                sim.spec_replicas = n;
            }
            sim.events.extend(s.events);
            hpa_desired = s.desired;
            hpa_active |= s.active;
            hpa_sample = Some(s.sample);
        }
        sim.reconcile_pods(now);

        match origin {
            None => {
                if tick.is_multiple_of(poll_every) {
                    let ready = sim
                        .pods
                        .iter()
                        .filter(|p| p.phase != Phase::Terminating && p.ready_since.is_some())
                        .count() as i32;
                    if ready >= sim.spec_replicas && hpa_active {
                        origin = Some(tick);
                        for p in &mut sim.pods {
                            p.last = Some((p.requests, 0));
                        }
                    } else if now > READY_TIMEOUT_S {
                        let why = if ready < sim.spec_replicas {
                            format!("{ready} of {} pods became ready", sim.spec_replicas)
                        } else {
                            let cond = hpa_sample
                                .as_ref()
                                .and_then(|h| {
                                    h.conditions.iter().find(|c| c.type_ == "ScalingActive")
                                })
                                .map(|c| format!("{}: {}", c.reason, c.message))
                                .unwrap_or_else(|| "no status yet".into());
                            format!("the HPA never reported ScalingActive=True ({cond})")
                        };
                        return Err(InfraError(format!(
                            "the simulated cluster was not ready within {}: {why}",
                            scenario::fmt_dur(std::time::Duration::from_secs_f64(READY_TIMEOUT_S))
                        ))
                        .into());
                    }
                }
            }
            Some(o) => {
                let k = samples.len();
                let t_exp = (tick - o) as f64 / STEPS_PER_S;
                let due = ((k + 1) as f64 * interval).min(duration);
                if t_exp + 1e-9 >= due {
                    let prev = if k == 0 { 0.0 } else { samples[k - 1].t };
                    let dt = (t_exp - prev).max(1e-9);
                    let b = buckets[k].take().unwrap_or_else(Bucket::new);
                    let (service, cpu) = (sim.service, sim.cpu_per_request);
                    let memory_base = sim.memory_base;
                    let mut pods = Vec::new();
                    for p in &mut sim.pods {
                        let cpu_ns = if p.started.is_some() {
                            p.cpu_ns(now, service, cpu)
                        } else {
                            0
                        };
                        let in_flight = p.in_flight(now);
                        let (r0, c0) = p.last.unwrap_or((p.requests, cpu_ns));
                        p.last = Some((p.requests, cpu_ns));
                        let cpu_millicores = cpu_ns.saturating_sub(c0) as f64 / 1e9 / dt * 1000.0;
                        pods.push(PodSample {
                            name: p.name.clone(),
                            phase: match p.phase {
                                Phase::Pending => "Pending",
                                Phase::Running => "Running",
                                Phase::Terminating => "Terminating",
                            }
                            .into(),
                            ready: p.ready(),
                            qps: p.requests.saturating_sub(r0) as f64 / dt,
                            cpu_millicores,
                            cpu_utilization: cfg
                                .cpu_request_milli
                                .filter(|r| *r > 0)
                                .map(|r| cpu_millicores / r as f64 * 100.0),
                            memory_bytes: if p.started.is_some() {
                                memory_base + MEMORY_PER_INFLIGHT * in_flight
                            } else {
                                0
                            },
                            in_flight: if p.started.is_some() { in_flight } else { 0 },
                        });
                    }
                    let active: Vec<&SimPod> = sim
                        .pods
                        .iter()
                        .filter(|p| p.phase != Phase::Terminating)
                        .collect();
                    let replicas = Replicas {
                        spec: sim.spec_replicas,
                        current: active.len() as i32,
                        ready: active.iter().filter(|p| p.ready_since.is_some()).count() as i32,
                        desired: hpa_desired,
                    };
                    let (offered, stage) = s.load.rate_at((t_exp - interval / 2.0).max(0.0));
                    let stage = if t_exp > s.load.total() + interval / 2.0 {
                        "after load".to_string()
                    } else {
                        stage
                    };
                    samples.push(Sample {
                        t: due,
                        stage,
                        offered_qps: offered,
                        intended: b.intended,
                        sent: b.sent,
                        completed: b.completed,
                        dropped: b.dropped,
                        late: 0,
                        status: b.status,
                        latency_ms: percentiles(&b.latency),
                        service_ms: percentiles(&b.service),
                        // The sim has no transport and sends exactly on time.
                        ttfb_ms: None,
                        send_lateness_ms: None,
                        latency_hdr: (!b.latency.is_empty())
                            .then(|| encode_hist(&b.latency))
                            .flatten(),
                        users: None,
                        replicas,
                        pods,
                        hpa: hpa_sample.clone(),
                    });
                    if samples.len() >= n_samples {
                        break;
                    }
                }
            }
        }
        tick += 1;
    }

    let origin_s = origin.unwrap_or(0) as f64 / STEPS_PER_S;
    let events = sim
        .events
        .into_iter()
        .map(|mut e| {
            e.t -= origin_s;
            if e.offered_qps.is_none() {
                e.offered_qps = Some(s.load.rate_at(e.t.max(0.0)).0);
            }
            e
        })
        .collect();
    Ok(SimRun { samples, events })
}
