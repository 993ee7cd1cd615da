//! One experiment end to end: scenario → backend → load + recorder → checks
//! → report. Interrupts and failures still clean up and write what was recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::backend::kube::{self, KubeCluster, KubeOptions};
use crate::backend::{self, local::LocalCluster, Backend, Kind};
use crate::checks::{self, Verdict};
use crate::clock::Clock;
use crate::error::{InfraError, Interrupted, UsageError};
use crate::load::{self, ClosedConfig, Engine, IntervalStats, LoadConfig, RequestSpec, StepSpec};
use crate::manifests::Manifests;
use crate::progress::Progress;
use crate::recorder::{self, Percentiles, Recorder, RunData, RunMeta, Sample};
use crate::report;
use crate::scenario::{self, Loaded};

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
}

pub struct Outcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    pub interrupted: bool,
}

/// How long the embedded cluster may take to become ready, in experiment time.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Loads and cross-checks a scenario and its manifests (the `validate` command).
pub fn prepare(path: &Path) -> Result<(Loaded, Manifests)> {
    let loaded = scenario::load(path)?;
    let manifests = Manifests::load(&loaded.manifest_paths()).map_err(|mut e| {
        e.message = format!(
            "{} (manifest listed in {})",
            e.message,
            loaded.path.display()
        );
        e
    })?;
    cross_check(&loaded, &manifests)?;
    Ok((loaded, manifests))
}

/// The scenario's references into its manifests (the HPA and route it names).
pub fn cross_check(loaded: &Loaded, manifests: &Manifests) -> Result<(), crate::error::InputError> {
    // Cross-reference errors point into the scenario file; give them its line.
    let locate = |mut e: crate::error::InputError| {
        if e.file == loaded.path && e.line.is_none() {
            e.line = e
                .field
                .as_deref()
                .and_then(|f| crate::yaml::nearest_line(&loaded.text, f));
        }
        e
    };
    manifests
        .hpa(&loaded.path, loaded.scenario.target.hpa.as_deref())
        .map_err(locate)?;
    manifests
        .route(&loaded.path, &loaded.scenario.target.route)
        .map_err(locate)?;
    Ok(())
}

/// `--dry-run`: what the kube backend would apply, in order, after
/// validation; touches no cluster.
pub fn dry_run(path: &Path) -> Result<String> {
    let (loaded, manifests) = prepare(path)?;
    // Run ids are random; the placeholder shows where it goes.
    kube::dry_run_yaml(&loaded, &manifests, "xxxxxx")
}

pub fn default_out_dir(name: &str) -> PathBuf {
    let ts = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    PathBuf::from("reports").join(format!("{name}-{ts}"))
}

pub async fn experiment(opts: &Options) -> Result<Outcome> {
    let (loaded, manifests) = prepare(&opts.scenario)?;
    if !(opts.speed.is_finite() && opts.speed > 0.0 && opts.speed <= 1000.0) {
        return Err(UsageError(format!(
            "--speed {}: must be a number in (0, 1000]",
            opts.speed
        ))
        .into());
    }
    if let Some(path) = &opts.raw_log {
        // Find out now, not after the cluster has spent minutes warming up.
        std::fs::File::create(path)
            .map_err(|e| UsageError(format!("--raw-log {}: {e}", path.display())))?;
    }
    match opts.backend {
        // Before the run directory exists: a scenario to fix, not a run.
        Kind::Kube => {
            kube::check_speed(opts.speed)?;
            kube::gateway_url(&loaded)?;
        }
        Kind::Sim if loaded.scenario.load.is_users() => {
            return Err(UsageError(format!(
                "{}: `load.model: users` (Goose users) runs on `--backend local` only; the sim backend models an arrival rate",
                loaded.path.display()
            ))
            .into())
        }
        Kind::Sim => return experiment_sim(opts, &loaded, &manifests),
        Kind::Local => {}
    }
    let s = &loaded.scenario;
    let name = loaded.name();
    let dir = opts.out.clone().unwrap_or_else(|| default_out_dir(&name));
    let meta = run_meta(&loaded, &manifests, opts.backend, opts.speed, opts.seed)?;
    let mut rec = Recorder::create(&dir, meta)?;
    let mut progress = Progress::new(s.duration.as_secs_f64(), opts.progress);
    progress.message(&format!(
        "autoscale-harness: {name} on the {} backend at speed {}×, {} of experiment time; run dir {}",
        opts.backend.name(),
        opts.speed,
        scenario::fmt_dur(s.duration),
        dir.display()
    ));

    let mut signal = std::pin::pin!(shutdown_signal());
    let mut backend: Box<dyn Backend> = match opts.backend {
        Kind::Kube => {
            let mut ko = opts.kube.clone();
            if let Some(name) = &ko.kind {
                let root = std::env::current_dir()?;
                let mut say = |m: &str| progress.message(&format!("kind: {m}"));
                ko.context = Some(kube::kind::ensure(name, &root, &mut say)?);
            }
            let client = kube::connect(&ko).await?;
            let c = KubeCluster::create(client, &loaded, &manifests, ko.keep).await?;
            progress.message(&format!(
                "namespace {}: applying {} objects, waiting for the Deployment and the HPA (up to {})",
                c.ns,
                manifests.items.len(),
                scenario::fmt_dur(s.kube.ready_timeout)
            ));
            Box::new(c)
        }
        _ => {
            let c = LocalCluster::start(&loaded, &manifests, opts.speed, opts.seed).await?;
            progress.message(&format!(
                "embedded cluster: gateway {} (metrics {}); waiting for pods and HPA",
                c.target().base_url,
                c.metrics_url()
            ));
            Box::new(c)
        }
    };
    let ready = tokio::select! {
        r = backend.ready() => r,
        _ = &mut signal => Err(Interrupted.into()),
    };
    if let Err(e) = ready {
        // Keep what the cluster said (failed pods, metric errors) for the report.
        let obs = backend.observe(0.0);
        for ev in obs.events {
            rec.event(ev)?;
        }
        backend.shutdown().await.ok();
        rec.meta_mut().interrupted = true;
        let run = rec.finish()?;
        let verdict = checks::evaluate(&s.expect, &run);
        report::write(&dir, &run, &verdict).ok();
        return Err(e.context(format!("partial record in {}", dir.display())));
    }

    let target = backend.target();
    let clock = Clock::new(tokio::time::Instant::now(), opts.speed);
    let engine = start_engine(&loaded, &target, opts, &clock)?;

    let interval = s.sample_interval.as_secs_f64();
    let n = (s.duration.as_secs_f64() / interval).ceil() as u64;
    let mut interrupted = false;
    let mut engine_failure = None;
    for k in 1..=n {
        let t = (k as f64 * interval).min(s.duration.as_secs_f64());
        tokio::select! {
            _ = clock.sleep_until(t) => {}
            _ = &mut signal => { interrupted = true; }
        }
        let t = if interrupted { clock.now().min(t) } else { t };
        let stats = engine.take_interval();
        let obs = backend.observe(t);
        let sample = build_sample(
            t,
            interval,
            &loaded,
            &stats,
            engine.users(),
            opts.speed,
            obs.replicas,
            obs.pods,
            obs.hpa,
        );
        for mut ev in obs.events {
            if ev.offered_qps.is_none() {
                ev.offered_qps = Some(if s.load.is_users() {
                    // A closed model has no schedule: what the users offered
                    // is what they sent in this sample.
                    sample.offered_qps
                } else {
                    s.load.rate_at(ev.t.max(0.0)).0
                });
            }
            progress.event(&ev);
            rec.event(ev)?;
        }
        progress.sample(&sample, interval);
        rec.sample(sample)?;
        if let Some(e) = engine.failure() {
            engine_failure = Some(e);
            interrupted = true;
        }
        if interrupted {
            break;
        }
    }
    progress.finish();
    engine.stop();
    // In-flight requests get their timeout to finish; they are not counted in samples.
    let finished = tokio::time::timeout(
        clock.real(s.load.timeout()) + Duration::from_secs(1),
        engine.finish(),
    )
    .await;
    if let Ok(load::Finished {
        raw_log: Some(raw), ..
    }) = finished
    {
        println!("{}", raw_log_note(&raw));
    }
    let last = rec.data().samples.last().map(|s| s.t).unwrap_or(0.0);
    backend
        .shutdown()
        .await
        .context("cleaning up the embedded cluster")?;
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
    Ok(Outcome {
        verdict,
        dir,
        interrupted,
    })
}

/// Starts the engine the scenario's load model asks for, at experiment time 0.
fn start_engine(
    l: &Loaded,
    target: &backend::LoadTarget,
    opts: &Options,
    clock: &Clock,
) -> Result<Engine> {
    if l.scenario.load.is_users() {
        let cfg = closed_config(l, target, opts);
        let h = load::closed::start(cfg, clock.start())
            .map_err(|e| InfraError(format!("cannot start the Goose users: {e}")))?;
        Ok(Engine::Closed(h))
    } else {
        let cfg = load_config(l, target, opts)?;
        let h = load::start(cfg, clock.start()).map_err(|e| match e {
            // A raw-log path that cannot be created is a flag to fix.
            load::LoadError::RawLog { .. } => {
                anyhow::Error::from(UsageError(format!("--raw-log: {e}")))
            }
            e => InfraError(format!("cannot start the load engine: {e}")).into(),
        })?;
        Ok(Engine::Open(h))
    }
}

/// The closed model's engine settings. The scenario was validated (methods,
/// headers, whole users), so nothing here can be bad input.
fn closed_config(l: &Loaded, target: &backend::LoadTarget, opts: &Options) -> ClosedConfig {
    let load = &l.scenario.load;
    let think = load
        .think_time
        .map(|t| (t.min, t.max))
        .unwrap_or((Duration::ZERO, Duration::ZERO));
    ClosedConfig {
        base_url: target.base_url.clone(),
        host: target.host.clone(),
        journey: load
            .journey
            .iter()
            .map(|s| StepSpec {
                name: s.label(),
                method: hyper::Method::from_bytes(s.method.as_bytes())
                    .unwrap_or(hyper::Method::GET),
                path: s.path.clone(),
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                body: s.body.clone().map(bytes::Bytes::from),
                timeout: s.timeout,
            })
            .collect(),
        think,
        plan: l.users_plan(),
        speed: opts.speed,
    }
}

/// The run.json header of an experiment.
fn run_meta(
    loaded: &Loaded,
    manifests: &Manifests,
    backend: Kind,
    speed: f64,
    seed: u64,
) -> Result<RunMeta> {
    let s = &loaded.scenario;
    let name = loaded.name();
    let hpa = manifests.hpa(&loaded.path, s.target.hpa.as_deref())?;
    let hpa_spec = hpa.spec.clone().unwrap_or_default();
    Ok(RunMeta {
        scenario_name: name.clone(),
        scenario_path: loaded.path.display().to_string(),
        scenario_text: loaded.text.clone(),
        backend: backend.name().into(),
        speed: if backend == Kind::Sim { 1.0 } else { speed },
        seed,
        started_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        duration_s: s.duration.as_secs_f64(),
        load_stop_s: s.load.load_stop(),
        interval_s: s.sample_interval.as_secs_f64(),
        hpa_name: format!(
            "{}/{}",
            hpa.metadata.namespace.as_deref().unwrap_or("default"),
            hpa.metadata.name.as_deref().unwrap_or_default()
        ),
        min_replicas: hpa_spec.min_replicas.unwrap_or(1),
        max_replicas: hpa_spec.max_replicas,
        interrupted: false,
        ended_at_s: 0.0,
        environment: environment(),
    })
}

/// `--backend sim`: the whole experiment on the virtual clock, then the
/// same record, checks and report as a local run.
fn experiment_sim(opts: &Options, loaded: &Loaded, manifests: &Manifests) -> Result<Outcome> {
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&loaded.name()));
    let progress = Progress::new(loaded.scenario.duration.as_secs_f64(), opts.progress);
    let (_, verdict) = record_sim(loaded, manifests, opts.seed, &dir, progress)?;
    Ok(Outcome {
        verdict,
        dir,
        interrupted: false,
    })
}

/// Runs a scenario on the sim backend into `dir` (run files, checks and
/// report), for `experiment --backend sim` and each `sweep` value.
pub fn record_sim(
    loaded: &Loaded,
    manifests: &Manifests,
    seed: u64,
    dir: &Path,
    mut progress: Progress,
) -> Result<(RunData, Verdict)> {
    let s = &loaded.scenario;
    let meta = run_meta(loaded, manifests, Kind::Sim, 1.0, seed)?;
    let mut rec = Recorder::create(dir, meta)?;
    progress.message(&format!(
        "autoscale-harness: {} on the sim backend (virtual clock, step {} ms), {} of experiment time; run dir {}",
        loaded.name(),
        backend::sim::STEP * 1000.0,
        scenario::fmt_dur(s.duration),
        dir.display()
    ));
    if s.local.pods.command.is_some() {
        progress.message(
            "note: the sim backend runs no programs; pods follow local.pods.model, not local.pods.command",
        );
    }
    let sim = match backend::sim::simulate(loaded, manifests, seed) {
        Ok(r) => r,
        Err(e) => {
            rec.meta_mut().interrupted = true;
            let run = rec.finish()?;
            let verdict = checks::evaluate(&s.expect, &run);
            report::write(dir, &run, &verdict).ok();
            return Err(e.context(format!("partial record in {}", dir.display())));
        }
    };
    let interval = s.sample_interval.as_secs_f64();
    let mut events = sim.events.into_iter().peekable();
    for sample in sim.samples {
        while let Some(ev) = events.next_if(|e| e.t <= sample.t) {
            progress.event(&ev);
            rec.event(ev)?;
        }
        progress.sample(&sample, interval);
        rec.sample(sample)?;
    }
    for ev in events {
        progress.event(&ev);
        rec.event(ev)?;
    }
    progress.finish();
    let last = rec.data().samples.last().map(|s| s.t).unwrap_or(0.0);
    rec.meta_mut().ended_at_s = last;
    let run = rec.finish()?;
    let verdict = finish(dir, &run, &s.expect)?;
    Ok((run, verdict))
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
    let run = recorder::load_run(dir)?;
    let path = PathBuf::from(&run.meta.scenario_path);
    let scenario: scenario::Scenario = crate::yaml::from_str(&path, &run.meta.scenario_text)
        .context("the scenario stored in run.json no longer parses")?;
    finish(dir, &run, &scenario.expect)
}

fn load_config(l: &Loaded, target: &backend::LoadTarget, opts: &Options) -> Result<LoadConfig> {
    let s = &l.scenario;
    let curve = l.rate_curve()?;
    let req = s.load.request();
    let url: hyper::Uri = format!("{}{}", target.base_url, req.path)
        .parse()
        .map_err(|e| {
            crate::error::InputError::new(&l.path, format!("not a valid URL path: {e}"))
                .field("load.request.path")
        })?;
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(h) = &target.host {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            headers.push(("host".into(), h.clone()));
        }
    }
    Ok(LoadConfig {
        curve,
        spacing: l.spacing(opts.seed),
        speed: opts.speed,
        request: RequestSpec {
            method: hyper::Method::from_bytes(req.method.as_bytes()).unwrap_or(hyper::Method::GET),
            url,
            headers,
            body: req.body.clone().map(bytes::Bytes::from),
            timeout: req.timeout,
        },
        max_in_flight: s.load.max_in_flight(),
        http2: req.http == scenario::HttpVersion::Http2,
        max_connections: s.load.connections,
        raw_log: opts.raw_log.clone(),
    })
}

/// One line on what the raw log holds, loss and errors included.
fn raw_log_note(r: &load::RawLogSummary) -> String {
    let mut s = format!("raw log: {} rows in {}", r.rows, r.path.display());
    if r.lost > 0 {
        s.push_str(&format!(
            "; {} rows LOST (the writer could not keep up)",
            r.lost
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("; write error: {e}"));
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn build_sample(
    t: f64,
    interval: f64,
    l: &Loaded,
    st: &IntervalStats,
    users: Option<u64>,
    speed: f64,
    replicas: crate::recorder::Replicas,
    pods: Vec<crate::recorder::PodSample>,
    hpa: Option<crate::recorder::HpaSample>,
) -> Sample {
    let (planned, stage) = l.scenario.load.rate_at((t - interval / 2.0).max(0.0));
    let stage = if t > l.scenario.load.total() + interval / 2.0 {
        "after load".to_string()
    } else {
        stage
    };
    // The open model offers its schedule. A closed model's stages count
    // users; what they offered is what they sent, and it falls when latency
    // rises.
    let offered = if l.scenario.load.is_users() {
        st.sent as f64 / interval
    } else {
        planned
    };
    let latency = scaled(&st.response_time, speed);
    Sample {
        t,
        stage,
        offered_qps: offered,
        intended: st.intended,
        sent: st.sent,
        completed: st.completed,
        dropped: st.dropped,
        late: st.late,
        status: st.status,
        latency_ms: percentiles(&latency),
        service_ms: percentiles(&scaled(&st.service_time, speed)),
        ttfb_ms: (!st.ttfb.is_empty()).then(|| percentiles(&scaled(&st.ttfb, speed))),
        send_lateness_ms: (!st.lateness.is_empty())
            .then(|| percentiles(&scaled(&st.lateness, speed))),
        latency_hdr: (!latency.is_empty())
            .then(|| recorder::encode_hist(&latency))
            .flatten(),
        users,
        replicas,
        pods,
        hpa,
    }
}

/// The engine records real microseconds; reports are in experiment time.
fn scaled(h: &Histogram<u64>, speed: f64) -> Histogram<u64> {
    let mut out =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid");
    for v in h.iter_recorded() {
        let x = ((v.value_iterated_to() as f64) * speed).round().max(1.0) as u64;
        let _ = out.record_n(x.min(3_600_000_000), v.count_at_value());
    }
    out
}

pub(crate) fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    Percentiles {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: h.max() as f64 / 1000.0,
    }
}

fn environment() -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("harness_version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("os".into(), std::env::consts::OS.into());
    m.insert("arch".into(), std::env::consts::ARCH.into());
    m.insert(
        "cpus".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
    );
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        m.insert("host".into(), h.trim().into());
    }
    m
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
