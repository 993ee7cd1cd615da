//! One experiment end to end: prepared scenario → backend → load + recorder
//! → checks → report, in one recording loop for every backend. Interrupts
//! and failures still clean up and write what was recorded.
//!
//! - `load_config`: the scenario's load as the engines take it.
//! - `sample`: one timeline sample from load statistics and an observation.
//! - `meta`: the run.json header.
//! - `out_dir`: claiming the run directory (lock, no silent reuse, safe names).

mod load_config;
mod meta;
pub(crate) mod out_dir;
mod sample;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;

use crate::backend::kube::{self, KubeCluster, KubeOptions};
use crate::backend::{local::LocalCluster, sim::SimCluster, Backend, Kind};
use crate::checks::{self, Verdict};
use crate::clock::Clock;
use crate::error::{InfraError, Interrupted, UsageError};
use crate::load::{self, Engine};
use crate::prepared::Prepared;
use crate::progress::Progress;
use crate::recorder::{self, Event, Recorder, RunData};
use crate::report;
use crate::scenario;

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: PathBuf,
    pub backend: Kind,
    pub speed: f64,
    pub out: Option<PathBuf>,
    pub progress: bool,
    pub seed: u64,
    pub kube: KubeOptions,
    /// Write one CSV row per request here (the load engine's raw log).
    pub raw_log: Option<PathBuf>,
    /// Replace a previous run's record in `out`.
    pub overwrite: bool,
    /// `--schedule-controller`, over the scenario's `schedule.controller`.
    pub schedule_controller: Option<scenario::ScheduleController>,
}

pub struct Outcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    pub interrupted: bool,
}

/// `--dry-run`: what the kube backend would apply, in order, after
/// validation; touches no cluster.
pub fn dry_run(path: &Path, schedule: Option<scenario::ScheduleController>) -> Result<String> {
    let mut p = Prepared::load(path)?;
    if let Some(c) = schedule {
        p.set_schedule_controller(c)?;
    }
    let (line, warnings) = load_destination(&p);
    for w in warnings {
        eprintln!("{w}");
    }
    // Run ids are random; the placeholder shows where it goes.
    Ok(format!("# {line}\n{}", kube::dry_run_yaml(&p, "xxxxxx")?))
}

/// Where the load goes, said plainly, and warnings: when `target.url`
/// leaves this machine (load at someone else's service is not a test), and
/// when a gateway tier may grow past seed 001's node range.
pub fn load_destination(p: &Prepared) -> (String, Vec<String>) {
    let host = p
        .host
        .as_deref()
        .map(|h| format!(" with Host: {h}"))
        .unwrap_or_default();
    let route = p.route_key();
    let mut warnings = Vec::new();
    let embedded = match p.gateway_tier() {
        Some(g) => {
            if let Some(h) = &g.hpa {
                let max = h.spec.as_ref().map_or(0, |s| s.max_replicas);
                if max > crate::prepared::SEED_MAX_GATEWAY_INSTANCES {
                    warnings.push(format!(
                        "warning: HPA {} may scale the gateway tier to {max} instances, beyond seed 001's node range of {}; it runs, and the report flags it",
                        h.metadata.name.as_deref().unwrap_or_default(),
                        crate::prepared::SEED_MAX_GATEWAY_INSTANCES
                    ));
                }
            }
            format!(
                "the gateway tier's Service on 127.0.0.1, which balances over the instances of Deployment {}",
                g.name()
            )
        }
        None => "the embedded gateway on 127.0.0.1".to_owned(),
    };
    let Some(url) = &p.scenario().target.url else {
        return (
            format!(
                "load: local and sim send it to {embedded} (route {route}{host}); --backend kube needs target.url"
            ),
            warnings,
        );
    };
    let line = match &p.in_cluster {
        Some(ih) => format!(
            "load: --backend kube sends it to {url} (target.url, route {route}{host}); the HPA {}/{} is the cluster's (target.hpa), so only --backend kube runs this scenario",
            ih.namespace, ih.name
        ),
        None => format!(
            "load: --backend kube sends it to {url} (target.url, route {route}{host}); local and sim use {embedded}"
        ),
    };
    // Validation already parsed it; a failure here cannot happen.
    if let Some(u) = scenario::target_url(url)
        .ok()
        .filter(|u| !scenario::is_loopback(u))
    {
        warnings.push(format!(
            "warning: target.url {url} is not on this machine (host {}): --backend kube will send real load there",
            u.host_str().unwrap_or_default()
        ));
    }
    (line, warnings)
}

/// Checks the flags against the scenario before anything starts; the speed
/// is checked here once for every backend.
fn check_options(p: &Prepared, opts: &Options) -> Result<()> {
    if !(opts.speed.is_finite() && opts.speed > 0.0 && opts.speed <= 1000.0) {
        return Err(UsageError(format!(
            "--speed {}: must be a number in (0, 1000]",
            opts.speed
        ))
        .into());
    }
    match opts.backend {
        Kind::Kube => {
            kube::check_speed(opts.speed)?;
            kube::gateway_url(&p.loaded)?;
        }
        Kind::Sim if p.scenario().load.is_users() => {
            return Err(UsageError(format!(
                "{}: `load.model: users` (Goose users) runs on `--backend local` only; the sim backend models an arrival rate",
                p.loaded.path.display()
            ))
            .into())
        }
        Kind::Sim | Kind::Local => p.require_manifest_hpa(opts.backend.name())?,
    }
    Ok(())
}

pub async fn experiment(opts: &Options) -> Result<Outcome> {
    let mut p = Prepared::load(&opts.scenario)?;
    if let Some(c) = opts.schedule_controller {
        p.set_schedule_controller(c)?;
    }
    check_options(&p, opts)?;
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| out_dir::default_dir("", &p.loaded.name()));
    // Held until the run's record is complete.
    let _claim = out_dir::claim(&dir, opts.overwrite)?;
    if let Some(path) = &opts.raw_log {
        // Find out now, not after the cluster has spent minutes warming up
        // (after the claim: the raw log may go into the run directory).
        std::fs::File::create(path)
            .map_err(|e| UsageError(format!("--raw-log {}: {e}", path.display())))?;
    }
    let mut rec = Recorder::create(
        &dir,
        meta::run_meta(&p, opts.backend, opts.speed, opts.seed),
    )?;
    let progress = Progress::new(p.scenario().duration.as_secs_f64(), opts.progress);
    progress.message(&headline(&p, opts, &dir));
    // From here a Ctrl-C or SIGTERM is the run's to handle, the backend's
    // opening included: what that creates must not be left behind.
    let signals = crate::signal::shutdown_signal;
    let mut signal = std::pin::pin!(signals());
    let backend =
        match open_unless_stopped(&p, opts, &dir, &progress, signal.as_mut(), &signals).await {
            Ok(b) => b,
            // Nothing is left running; the record says why it is empty.
            Err(e) => return Err(abandon(rec, &p, Vec::new(), e)),
        };
    if let Some((name, min, max)) = backend.watched_hpa() {
        let m = rec.meta_mut();
        (m.hpa_name, m.min_replicas, m.max_replicas) = (name, min, max);
    }
    let (_, verdict, interrupted) =
        record(&p, backend, rec, progress, opts, signal, signals).await?;
    Ok(Outcome {
        verdict,
        dir,
        interrupted,
    })
}

/// The first line a run prints.
fn headline(p: &Prepared, opts: &Options, dir: &Path) -> String {
    let s = p.scenario();
    let clock = match opts.backend {
        Kind::Sim => format!(
            "virtual clock, step {} ms",
            crate::backend::sim::STEP * 1000.0
        ),
        _ => format!("at speed {}×", opts.speed),
    };
    let mut line = format!(
        "autoscale-harness: {} on the {} backend ({clock}), {} of experiment time; run dir {}",
        p.loaded.name(),
        opts.backend.name(),
        scenario::fmt_dur(s.duration),
        dir.display()
    );
    if let Some(sched) = meta::schedule_headline(p, opts.backend) {
        line.push_str(&format!("\n{sched}"));
    }
    // The embedded cluster plans every firing in advance: say when.
    if let Some(sc) = p.schedule.as_ref().filter(|_| opts.backend != Kind::Kube) {
        line.push('\n');
        line.push_str(&sc.describe());
    }
    if opts.backend == Kind::Sim && s.local.pods.command.is_some() {
        line.push_str(
            "\nnote: the sim backend runs no programs; pods follow local.pods.model, not local.pods.command",
        );
    }
    line
}

/// How long a run stopped while its backend opens waits for the opening to
/// end, so that it can remove what was made (on kube, a namespace whose
/// creation was under way).
const OPEN_GRACE: Duration = Duration::from_secs(30);

/// `open`, or `Interrupted` when `signal` comes first. The opening is not
/// dropped half-way: it may finish (up to `OPEN_GRACE`, or until a second
/// signal, from `signals`) and what it opened is shut down at once.
async fn open_unless_stopped<F: Future<Output = ()>>(
    p: &Prepared,
    opts: &Options,
    dir: &Path,
    progress: &Progress,
    mut signal: std::pin::Pin<&mut F>,
    signals: &impl Fn() -> F,
) -> Result<Box<dyn Backend>> {
    let mut opening = std::pin::pin!(open(p, opts, dir, progress));
    let failed = tokio::select! {
        biased;
        _ = signal.as_mut() => None,
        r = &mut opening => match r {
            Ok(b) => return Ok(b),
            Err(e) => Some(e),
        },
    };
    let name = opts.backend.name();
    let stopped = |how: &str| {
        Err(anyhow::Error::new(Interrupted)
            .context(format!("stopped while the {name} backend opened{how}")))
    };
    if let Some(e) = failed {
        // The terminal's Ctrl-C also reaches a child the opening runs
        // (kind), which then fails: that is the interrupt, not the cause.
        let grace = Duration::from_millis(100);
        if tokio::time::timeout(grace, signal).await.is_ok() {
            return stopped(&format!(" ({e:#})"));
        }
        return Err(e);
    }
    progress.message(&format!(
        "stopping: letting the {name} backend finish opening so that what it made is removed (at most {}; Ctrl-C again to leave it)",
        scenario::fmt_dur(OPEN_GRACE)
    ));
    let opened = tokio::select! {
        r = &mut opening => Some(r),
        _ = tokio::time::sleep(OPEN_GRACE) => None,
        _ = signals() => None,
    };
    match opened {
        Some(Ok(b)) => match b.shutdown().await {
            Ok(()) => stopped("; removed what it made"),
            Err(e) => stopped(&format!(", and cleaning up failed: {e:#}")),
        },
        Some(Err(e)) => stopped(&format!(" ({e:#})")),
        None if opts.backend == Kind::Kube => stopped(
            ", before it finished: a namespace of this run may be left (`autoscale-harness cleanup` finds it)",
        ),
        None => stopped(", before it finished"),
    }
}

/// Opens the backend the options name.
async fn open(
    p: &Prepared,
    opts: &Options,
    dir: &Path,
    progress: &Progress,
) -> Result<Box<dyn Backend>> {
    let s = p.scenario();
    Ok(match opts.backend {
        Kind::Kube => {
            let mut ko = opts.kube.clone();
            if let Some(name) = &ko.kind {
                let root = std::env::current_dir()?;
                let mut say = |m: &str| progress.message(&format!("kind: {m}"));
                ko.context = Some(kube::kind::ensure(name, &root, &mut say)?);
            }
            let clients = kube::connect(&ko).await?;
            let c = KubeCluster::create(clients, p, ko.keep, opts.seed).await?;
            let waiting = match &p.lua {
                Some(l) => format!(
                    "the Deployment; the harness runs the Lua policy {} as its autoscaler from t = 0",
                    l.name
                ),
                None => "the Deployment and the HPA".into(),
            };
            progress.message(&format!(
                "namespace {}: applying {} objects, waiting for {waiting} (up to {})",
                c.ns,
                p.manifests.items.len(),
                scenario::fmt_dur(s.kube.ready_timeout)
            ));
            Box::new(c)
        }
        Kind::Local => {
            let targets = dir.join("targets.json");
            let c = LocalCluster::start(p, opts.speed, opts.seed, Some(targets)).await?;
            progress.message(&format!(
                "embedded cluster: gateway {} (metrics {}); waiting for pods and HPA",
                c.target().map(|t| t.base_url).unwrap_or_default(),
                c.metrics_url()
            ));
            Box::new(c)
        }
        Kind::Sim => Box::new(SimCluster::new(p, opts.seed)?),
    })
}

/// Runs a scenario on the sim backend into `dir` (run files, checks and
/// report), for each `sweep` value: the same loop, on a virtual clock,
/// without a runtime or signals.
pub fn record_sim(
    p: &Prepared,
    seed: u64,
    dir: &Path,
    progress: Progress,
) -> Result<(RunData, Verdict)> {
    let opts = Options {
        scenario: p.loaded.path.clone(),
        backend: Kind::Sim,
        speed: 1.0,
        out: Some(dir.to_path_buf()),
        progress: false,
        seed,
        kube: KubeOptions::default(),
        raw_log: None,
        overwrite: false,
        schedule_controller: None,
    };
    p.require_manifest_hpa(Kind::Sim.name())?;
    let rec = Recorder::create(dir, meta::run_meta(p, Kind::Sim, 1.0, seed))?;
    let backend = Box::new(SimCluster::new(p, seed)?);
    let never = std::future::pending::<()>;
    let (run, verdict, _) = futures::executor::block_on(record(
        p,
        backend,
        rec,
        progress,
        &opts,
        std::pin::pin!(never()),
        never,
    ))?;
    Ok((run, verdict))
}

/// The recording loop: waits for the backend to be ready, starts the load
/// (unless the backend models it), records one sample per interval with the
/// events since the previous one, and ends with checks and the report.
/// Returns the run, its verdict and whether it was interrupted.
/// `signal` completes on the first Ctrl-C or SIGTERM, and `signals` makes a
/// future that completes on the next.
async fn record<F: Future<Output = ()>>(
    p: &Prepared,
    mut backend: Box<dyn Backend>,
    mut rec: Recorder,
    mut progress: Progress,
    opts: &Options,
    mut signal: std::pin::Pin<&mut F>,
    signals: impl Fn() -> F,
) -> Result<(RunData, Verdict, bool)> {
    let s = p.scenario();
    let dir = rec.dir().to_path_buf();
    // Until the target is ready, experiment time counts from the start of
    // the wait: a run that never gets there is recorded on that clock.
    rec.meta_mut().started_at = wall_clock(std::time::SystemTime::now());
    let ready = tokio::select! {
        r = backend.ready() => r,
        _ = signal.as_mut() => Err(Interrupted.into()),
    };
    let origin = match ready {
        Ok(origin) => origin,
        Err(e) => {
            // Keep what the cluster said (failed pods, metric errors) for the report.
            let mut events = backend.observe(0.0).events;
            events.extend(backend.drain());
            backend.shutdown().await.ok();
            return Err(abandon(rec, p, events, e));
        }
    };

    // A backend without a load target models the load on a virtual clock.
    let target = backend.target();
    let speed = if target.is_some() { opts.speed } else { 1.0 };
    let origin = origin.unwrap_or_else(tokio::time::Instant::now);
    let clock = Clock::new(origin, speed);
    let (now, sys) = (tokio::time::Instant::now(), std::time::SystemTime::now());
    rec.meta_mut().started_at = wall_clock(if origin <= now {
        sys - (now - origin)
    } else {
        sys + (origin - now)
    });
    if let Some(m) = backend.schedule_started() {
        progress.message(&meta::schedule_started_line(&m));
        rec.meta_mut().schedule = Some(m);
    }
    let mut engine: Option<Engine> = match &target {
        Some(t) => Some(load_config::start_engine(&p.loaded, t, opts, &clock)?),
        None => None,
    };

    let interval = s.sample_interval.as_secs_f64();
    let n = (s.duration.as_secs_f64() / interval).ceil() as u64;
    let mut interrupted = false;
    let mut engine_failure = None;
    let mut finished = None;
    for k in 1..=n {
        let mut t = (k as f64 * interval).min(s.duration.as_secs_f64());
        if engine.is_some() {
            tokio::select! {
                _ = clock.sleep_until(t) => {}
                _ = signal.as_mut() => { interrupted = true; }
            }
            if interrupted {
                t = clock.now().min(t);
            }
        } else if signal.as_mut().now_or_never().is_some() {
            interrupted = true;
        }
        let mut obs = backend.observe(t);
        if let Some(e) = engine.as_ref().and_then(|e| e.failure()) {
            engine_failure = Some(e);
            interrupted = true;
        }
        let stats = match engine.as_mut() {
            // The last sample also holds what completes after its end, so
            // the samples add up to the engine's totals.
            Some(e) if interrupted || k == n => {
                let (f, cut) = drain(
                    e,
                    &clock,
                    s.load.timeout(),
                    interrupted,
                    &progress,
                    signal.as_mut(),
                    &signals,
                )
                .await;
                if f.is_none() && engine_failure.is_none() {
                    let left = e.in_flight();
                    let s = if left == 1 { "" } else { "s" };
                    progress.message(&format!(
                        "stopped waiting for {left} request{s} in flight; not in the record"
                    ));
                    rec.meta_mut().unrecorded_in_flight = Some(left);
                }
                interrupted |= cut;
                finished = f;
                Some(e.take_recorded())
            }
            // Counts go to the sample of their own timestamp; this waits
            // until sample k can receive nothing more.
            Some(e) => Some(e.sample(k - 1).await),
            None => None,
        };
        let stats = obs.load.take().or(stats).unwrap_or_default();
        backend.client_stats(t, &stats);
        let events = std::mem::take(&mut obs.events);
        let users = engine.as_ref().and_then(|e| e.users());
        let sample = sample::build(t, interval, &s.load, &stats, users, speed, obs);
        for mut ev in events {
            if ev.offered_qps.is_none() {
                ev.offered_qps = Some(sample::offered_at(&s.load, &ev, &sample));
            }
            progress.event(&ev);
            rec.event(ev)?;
        }
        progress.sample(&sample, interval);
        rec.sample(sample)?;
        if interrupted {
            break;
        }
    }
    progress.finish();
    if let Some(load::Finished {
        raw_log: Some(raw), ..
    }) = finished
    {
        println!("{}", load_config::raw_log_note(&raw));
    }
    let last_sample = rec.data().samples.last().cloned();
    for mut ev in backend.drain() {
        if let Some(l) = &last_sample {
            ev.offered_qps = Some(sample::offered_at(&s.load, &ev, l));
        }
        rec.event(ev)?;
    }
    let last = rec.data().samples.last().map(|s| s.t).unwrap_or(0.0);
    rec.meta_mut().pod_qps_unobservable = backend.pod_qps_unobservable();
    backend
        .shutdown()
        .await
        .context("cleaning up the cluster")?;
    rec.meta_mut().interrupted = interrupted;
    rec.meta_mut().ended_at_s = last;
    let run = rec.finish()?;
    let verdict = finish(&dir, &run, &s.expect)?;
    if let Some(e) = engine_failure {
        return Err(
            anyhow::Error::new(InfraError(format!("the load engine failed: {e}")))
                .context(format!("partial record in {}", dir.display())),
        );
    }
    Ok((run, verdict, interrupted))
}

/// Ends the load and gives the requests in flight their timeout (and a
/// second) to finish. An interrupted run stops sending at once; otherwise
/// the stages have ended by now (they end by `duration`), and what the
/// scheduler has yet to send, running late, still goes out. A signal ends
/// the wait at once: a first one, or the second after an interrupt
/// (`interrupted`), whose first was spent on stopping the load. Returns the
/// engine's end (None when the wait was cut short) and whether a signal cut
/// it.
async fn drain<F: Future<Output = ()>>(
    engine: &mut Engine,
    clock: &Clock,
    timeout: Duration,
    interrupted: bool,
    progress: &Progress,
    signal: std::pin::Pin<&mut F>,
    signals: impl Fn() -> F,
) -> (Option<load::Finished>, bool) {
    if interrupted {
        engine.stop();
    }
    let wait = clock.real(timeout) + Duration::from_secs(1);
    let in_flight = engine.in_flight();
    if in_flight > 0 && wait > Duration::from_secs(2) {
        progress.message(&format!(
            "waiting up to {} for {in_flight} requests in flight (Ctrl-C stops the wait)",
            scenario::fmt_dur(wait)
        ));
    }
    let in_flight = engine.in_flight_reader();
    let until = tokio::time::Instant::now() + wait;
    // The first signal ends the wait, or the second after an interrupt.
    let cut_by_signal = !interrupted;
    let mut stop = std::pin::pin!(if interrupted {
        futures::future::Either::Left(signals())
    } else {
        futures::future::Either::Right(signal)
    });
    // The bar counts down what is left rather than stand at the last sample.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let end = {
        let mut drain = std::pin::pin!(tokio::time::timeout_at(until, engine.finish()));
        loop {
            tokio::select! {
                f = &mut drain => break (f.ok(), false),
                _ = &mut stop => break (None, cut_by_signal),
                now = tick.tick() => progress.waiting(in_flight(), until.saturating_duration_since(now)),
            }
        }
    };
    // Whatever is left is not waited for.
    engine.stop();
    end
}

/// Ends a run that never started its load: the record keeps `events` and
/// says why, as an event, and is marked partial; returns the error.
fn abandon(mut rec: Recorder, p: &Prepared, events: Vec<Event>, e: anyhow::Error) -> anyhow::Error {
    let dir = rec.dir().to_path_buf();
    let why = Event {
        t: events.iter().map(|e| e.t).fold(0.0, f64::max),
        type_: "Warning".into(),
        reason: if e.is::<Interrupted>() {
            "Interrupted"
        } else {
            "SetupFailed"
        }
        .into(),
        object: format!("Harness/{}", p.loaded.name()),
        source: "autoscale-harness".into(),
        message: recorder::one_line(&format!("{e:#}")),
        ..Default::default()
    };
    let written = events
        .into_iter()
        .chain([why])
        .try_for_each(|ev| rec.event(ev))
        .and_then(|()| {
            rec.meta_mut().interrupted = true;
            let run = rec.finish()?;
            let verdict = checks::evaluate(&p.scenario().expect, &run);
            report::write(&dir, &run, &verdict)
        });
    match written {
        Ok(()) => e.context(format!("partial record in {}", dir.display())),
        Err(w) => e.context(format!(
            "and the record in {} is incomplete: {w:#}",
            dir.display()
        )),
    }
}

/// RFC 3339 UTC with milliseconds, as run.json's `started_at`.
fn wall_clock(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Checks and report for a recorded run (also `report RUN_DIR`).
pub fn finish(dir: &Path, run: &RunData, expect: &[scenario::Expectation]) -> Result<Verdict> {
    let verdict = checks::evaluate(expect, run);
    report::write(dir, run, &verdict)
        .with_context(|| format!("cannot write the report in {}", dir.display()))?;
    Ok(verdict)
}

/// Re-renders report.html, summary.json and junit.xml from a run directory.
pub fn rerender(dir: &Path) -> Result<Verdict> {
    let mut run = recorder::load_run(dir)?;
    if !run.meta.finished {
        // Killed (SIGKILL, power loss): render what was recorded as partial.
        run.meta.interrupted = true;
        run.meta.ended_at_s = run.samples.last().map_or(0.0, |s| s.t);
        eprintln!(
            "note: {} was never finalized: the run was killed at about {}; rendering it as partial",
            dir.join(recorder::RUN_META).display(),
            checks::fmt_t(run.meta.ended_at_s)
        );
    }
    let path = PathBuf::from(&run.meta.scenario_path);
    let scenario: scenario::Scenario = crate::yaml::from_str(&path, &run.meta.scenario_text)
        .context("the scenario stored in run.json no longer parses")?;
    finish(dir, &run, &scenario.expect)
}
