//! Closed-model load engine: Goose users walk a journey of requests, with
//! think time after each step, ramped by a Goose test plan made from the
//! scenario's stages. Goose schedules the users; every request is timed here
//! and recorded into the same per-interval stats as the open engine, so the
//! timeline, checks and report do not care which model ran. Goose's own
//! metrics are switched off: they are end-of-run aggregates, and the
//! timeline needs per-interval histograms.
//!
//! What the numbers mean for a closed model: a user sends its next request
//! only after the previous response and its think time, so the request rate
//! is an outcome, not an input, and it falls when latency rises. `intended`
//! equals `sent` (a request is intended when a user is ready to send it),
//! nothing is ever `dropped` or `late`, and response time equals service
//! time: both are measured from the actual send, since no schedule exists to
//! measure from.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use goose::config::GooseConfiguration;
use goose::goose::{GooseResponse, TransactionFunction};
use goose::prelude::{
    GooseAttack, GooseMethod, GooseRequest, GooseUser, Scenario, Transaction, TransactionResult,
};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use hyper::Method;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::stats::{DispatchCounts, IntervalStats, Outcome, Recorder};
use crate::clock::Clock;

/// One step of the user ramp, in experiment time: reach `users` linearly
/// over `over` (equal to the previous count: hold it that long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStep {
    pub users: usize,
    pub over: Duration,
}

/// One request of the journey.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Label, also Goose's request name.
    pub name: String,
    pub method: Method,
    /// Path and query, joined to `ClosedConfig::base_url`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    /// Per-request timeout in EXPERIMENT time (divided by speed for real).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ClosedConfig {
    /// `http://host:port`.
    pub base_url: String,
    /// Host header for every step that does not set its own (the route's hostname).
    pub host: Option<String>,
    pub journey: Vec<StepSpec>,
    /// Think time after each step, uniform in `[min, max]`, experiment time.
    pub think: (Duration, Duration),
    pub plan: Vec<PlanStep>,
    /// Time compression: durations and think times are divided by it in real
    /// time; user counts are not.
    pub speed: f64,
    /// Width of a sample in experiment time: counts are kept per sample of
    /// their own timestamp (see `stats`).
    pub sample_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClosedError {
    #[error("speed must be finite and > 0, got {0}")]
    BadSpeed(f64),
    #[error("the journey has no steps")]
    EmptyJourney,
    #[error("the user plan never starts a user")]
    NoUsers,
    #[error("step {step:?}: method {method} is not one Goose sends (GET, HEAD, POST, PUT, PATCH, DELETE)")]
    BadMethod { step: String, method: String },
    #[error("step {step:?}: header {name:?}: {reason}")]
    BadHeader {
        step: String,
        name: String,
        reason: String,
    },
    #[error("step {step:?}: timeout {timeout:?} at this speed is not a usable real duration")]
    BadTimeout { step: String, timeout: Duration },
    #[error("Goose refused the attack: {0}")]
    Goose(String),
    #[error("load engine must be started inside a tokio runtime")]
    NoRuntime,
    #[error("sample interval {0:?} at this speed is not a usable real duration")]
    BadSampleInterval(Duration),
}

/// A journey step pre-built once: each send only clones cheap parts.
struct Prepared {
    name: String,
    method: GooseMethod,
    path: String,
    headers: HeaderMap,
    body: Option<Bytes>,
    /// Real-time timeout.
    timeout: Duration,
}

impl Prepared {
    fn new(spec: &StepSpec, host: Option<&str>, speed: f64) -> Result<Self, ClosedError> {
        let method = match spec.method {
            Method::GET => GooseMethod::Get,
            Method::HEAD => GooseMethod::Head,
            Method::POST => GooseMethod::Post,
            Method::PUT => GooseMethod::Put,
            Method::PATCH => GooseMethod::Patch,
            Method::DELETE => GooseMethod::Delete,
            _ => {
                return Err(ClosedError::BadMethod {
                    step: spec.name.clone(),
                    method: spec.method.to_string(),
                })
            }
        };
        let mut headers = HeaderMap::with_capacity(spec.headers.len() + 1);
        for (name, value) in &spec.headers {
            let bad = |reason: String| ClosedError::BadHeader {
                step: spec.name.clone(),
                name: name.clone(),
                reason,
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let v = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            headers.append(n, v);
        }
        if let Some(host) = host.filter(|_| !headers.contains_key(HOST)) {
            // The gateway routes by Host, as the open engine's requests are.
            let v = HeaderValue::from_str(host).map_err(|e| ClosedError::BadHeader {
                step: spec.name.clone(),
                name: "host".into(),
                reason: e.to_string(),
            })?;
            headers.insert(HOST, v);
        }
        let timeout = Duration::try_from_secs_f64(spec.timeout.as_secs_f64() / speed)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(ClosedError::BadTimeout {
                step: spec.name.clone(),
                timeout: spec.timeout,
            })?;
        Ok(Self {
            name: spec.name.clone(),
            method,
            path: spec.path.clone(),
            headers,
            body: spec.body.clone(),
            timeout,
        })
    }
}

struct Shared {
    recorder: Recorder,
    in_flight: AtomicU64,
    /// Users between their on_start and on_stop: the closed model's load.
    users: AtomicU64,
    stop: AtomicBool,
    stop_notify: Notify,
    /// Why Goose ended with an error, if it did.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        // notify_one stores a permit, so a driver not yet waiting still sees it.
        self.stop_notify.notify_one();
    }
}

/// Control and statistics of a running Goose attack; the same API as the
/// open engine's `LoadHandle`. Dropping it stops the users.
pub struct ClosedHandle {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl ClosedHandle {
    /// Sample `k`'s stats once complete, as [`super::LoadHandle::sample`].
    pub async fn sample(&self, k: u64) -> IntervalStats {
        tokio::time::sleep_until(self.shared.recorder.closes_at(k)).await;
        self.shared.recorder.close(k, self.in_flight())
    }

    /// Everything recorded and not yet taken, whatever its sample.
    pub fn take_recorded(&self) -> IntervalStats {
        self.shared.recorder.close_all(self.in_flight())
    }

    /// Cumulative stats, including the current, not yet taken interval.
    pub fn totals(&self) -> IntervalStats {
        self.shared.recorder.totals(self.in_flight())
    }

    /// Stops the users; a request in flight runs to completion or timeout.
    pub fn stop(&self) {
        self.shared.request_stop();
    }

    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// [`ClosedHandle::in_flight`], readable while `finish` borrows the handle.
    pub fn in_flight_reader(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.in_flight.load(Ordering::Relaxed)
    }

    /// Users running now.
    pub fn users(&self) -> u64 {
        self.shared.users.load(Ordering::Relaxed)
    }

    /// Goose's error, when the attack ended with one.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the plan is done (or stopped) and every user has exited,
    /// then returns the final totals.
    pub async fn join(mut self) -> IntervalStats {
        self.finish().await
    }

    /// Like [`ClosedHandle::join`]; the handle stays usable (for what was
    /// recorded) if the wait is cut short.
    pub async fn finish(&mut self) -> IntervalStats {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
        self.totals()
    }

    pub fn finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for ClosedHandle {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

/// Starts the attack. `t0` is the real instant of experiment time 0. Must be
/// called inside a tokio runtime; Goose's users run on it.
pub fn start(config: ClosedConfig, t0: Instant) -> Result<ClosedHandle, ClosedError> {
    let speed = config.speed;
    if !speed.is_finite() || speed <= 0.0 {
        return Err(ClosedError::BadSpeed(speed));
    }
    if config.journey.is_empty() {
        return Err(ClosedError::EmptyJourney);
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClosedError::NoRuntime)?;
    let interval = config.sample_interval;
    if Duration::try_from_secs_f64(interval.as_secs_f64() / speed).map_or(true, |d| d.is_zero()) {
        return Err(ClosedError::BadSampleInterval(interval));
    }
    let (lead, steps) = goose_plan(&config.plan, speed)?;
    let journey = config
        .journey
        .iter()
        .map(|s| Prepared::new(s, config.host.as_deref(), speed).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        recorder: Recorder::new(Clock::new(t0, speed), interval.as_secs_f64()),
        in_flight: AtomicU64::new(0),
        users: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stop_notify: Notify::new(),
        failure: Mutex::new(None),
    });
    let scenario = scenario(&shared, journey, config.think, speed)?;
    let attack = GooseAttack::initialize_with_config(configuration(&config.base_url, &steps)?)
        .map_err(|e| ClosedError::Goose(e.to_string()))?
        .register_scenario(scenario);
    super::goose_env::claim_once();
    let start_at = t0 + lead;
    let task = runtime.spawn(drive(shared.clone(), attack, start_at));
    Ok(ClosedHandle {
        shared,
        task: Some(task),
    })
}

/// Runs the attack from `start_at` until its plan ends or a stop is asked.
async fn drive(shared: Arc<Shared>, attack: GooseAttack, start_at: Instant) {
    tokio::select! {
        biased;
        _ = shared.stop_notify.notified() => return,
        _ = tokio::time::sleep_until(start_at) => {}
    }
    if shared.stop.load(Ordering::Acquire) {
        return;
    }
    let run = attack.execute();
    tokio::pin!(run);
    let result = tokio::select! {
        biased;
        r = &mut run => r,
        _ = shared.stop_notify.notified() => loop {
            // Goose's only stop switch is process-wide and cleared when an
            // attack starts, so a stop that lands while Goose is starting
            // would be lost: keep setting it until the attack returns.
            goose::trigger_killswitch("autoscale-harness stopped the load");
            tokio::select! {
                r = &mut run => break r,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        },
    };
    if let Err(e) = result {
        *shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }
}

/// The plan as Goose test-plan steps in real milliseconds, and how long to
/// wait before starting Goose. Goose starts counting users from 0 and its
/// first step must add users, so leading steps without users become that
/// delay; steps after the last user stops are dropped (Goose would idle
/// through them while the harness goes on observing anyway), and a plan
/// that ends with users gets a final step stopping them.
fn goose_plan(
    plan: &[PlanStep],
    speed: f64,
) -> Result<(Duration, Vec<(usize, usize)>), ClosedError> {
    let real = |d: Duration| d.div_f64(speed);
    let first = plan
        .iter()
        .position(|s| s.users > 0)
        .ok_or(ClosedError::NoUsers)?;
    let lead = plan[..first].iter().map(|s| real(s.over)).sum();
    let last = plan.iter().rposition(|s| s.users > 0).unwrap_or(first);
    // Keep the ramp down to 0 that follows the last step with users.
    let end = (last + 1).min(plan.len() - 1);
    let mut steps: Vec<(usize, usize)> = plan[first..=end]
        .iter()
        .map(|s| (s.users, real(s.over).as_millis() as usize))
        .collect();
    if steps.last().is_some_and(|s| s.0 > 0) {
        // Goose holds the last step's users until told to stop; the stages
        // end there, so stop them all at once.
        steps.push((0, 0));
    }
    Ok((lead, steps))
}

/// Goose's configuration: only what the plan and host need. Goose's metrics,
/// console report and telnet controller are off: the harness measures every
/// request itself, prints its own progress, and must not open ports
/// (parallel runs would collide on Goose's fixed 5116).
fn configuration(
    base_url: &str,
    steps: &[(usize, usize)],
) -> Result<GooseConfiguration, ClosedError> {
    let mut c = GooseConfiguration::default();
    c.host = Some(base_url.to_owned());
    c.no_metrics = true;
    c.no_print_metrics = true;
    c.no_telnet = true;
    c.quiet = 1;
    c.no_gzip = true;
    // The test plan field is not public, and its text form (`"10,1m;0,30s"`)
    // has whole seconds only: at --speed 20 a 30 s stage lasts 1.5 s. Goose's
    // serde form of the configuration holds the plan in milliseconds.
    let mut v = serde_json::to_value(&c).map_err(|e| ClosedError::Goose(e.to_string()))?;
    v["test_plan"] = serde_json::json!({ "steps": steps, "current": 0 });
    serde_json::from_value(v).map_err(|e| ClosedError::Goose(e.to_string()))
}

/// The Goose scenario: a gauge of running users (on start and stop) and the
/// journey's steps in order, with the think time after each.
fn scenario(
    shared: &Arc<Shared>,
    journey: Vec<Arc<Prepared>>,
    think: (Duration, Duration),
    speed: f64,
) -> Result<Scenario, ClosedError> {
    let gauge = |delta: i64| -> TransactionFunction {
        let shared = shared.clone();
        Arc::new(move |_user: &mut GooseUser| {
            if delta > 0 {
                shared.users.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.users.fetch_sub(1, Ordering::Relaxed);
            }
            Box::pin(async { Ok(()) })
        })
    };
    let mut s = Scenario::new("journey")
        .register_transaction(
            Transaction::new(gauge(1))
                .set_name("user start")
                .set_on_start(),
        )
        .register_transaction(
            Transaction::new(gauge(-1))
                .set_name("user stop")
                .set_on_stop(),
        );
    for (i, step) in journey.into_iter().enumerate() {
        let name = step.name.clone();
        let shared = shared.clone();
        let f: TransactionFunction = Arc::new(move |user: &mut GooseUser| {
            let shared = shared.clone();
            let step = step.clone();
            Box::pin(async move { send(&shared, user, &step).await })
        });
        s = s.register_transaction(Transaction::new(f).set_name(&name).set_sequence(i + 1));
    }
    let (min, max) = (think.0.div_f64(speed), think.1.div_f64(speed));
    if !max.is_zero() {
        s = s
            .set_wait_time(min, max)
            .map_err(|e| ClosedError::Goose(e.to_string()))?;
    }
    Ok(s)
}

/// Decrements the in-flight gauge however the request ends.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn inc(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        Self(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One timed request. Failures are counted, never returned to Goose: a
/// failed step does not end the user's journey, as a real user would retry
/// on their next pass.
async fn send(shared: &Shared, user: &mut GooseUser, step: &Prepared) -> TransactionResult {
    let started = Instant::now();
    let k = shared.recorder.sample_at(started);
    shared.recorder.record_dispatch(
        k,
        DispatchCounts {
            intended: 1,
            sent: 1,
            ..Default::default()
        },
    );
    let _in_flight = InFlight::inc(&shared.in_flight);
    let outcome = exchange(user, step).await;
    let done = Instant::now();
    let micros =
        u64::try_from(done.saturating_duration_since(started).as_micros()).unwrap_or(u64::MAX);
    // Goose hands back the response after the body is read here, so the
    // time to the first byte is not observable in this model.
    shared.recorder.record_completion(
        done,
        super::stats::Completion {
            outcome,
            response_us: micros,
            service_us: micros,
            ttfb_us: None,
        },
    );
    Ok(())
}

/// Sends the step through the user's Goose client and reads the whole body.
async fn exchange(user: &mut GooseUser, step: &Prepared) -> Outcome {
    let Ok(builder) = user.get_request_builder(&step.method, &step.path) else {
        return Outcome::Other;
    };
    let mut builder = builder.headers(step.headers.clone()).timeout(step.timeout);
    if let Some(body) = &step.body {
        builder = builder.body(body.clone());
    }
    let request = GooseRequest::builder()
        .name(step.name.as_str())
        .set_request_builder(builder)
        .build();
    match user.request(request).await {
        Ok(GooseResponse {
            response: Ok(resp), ..
        }) => {
            let code = resp.status().as_u16();
            // Done when the body is in, as in the open engine.
            match resp.bytes().await {
                Ok(_) => Outcome::Status(code),
                Err(e) => classify(&e),
            }
        }
        Ok(GooseResponse {
            response: Err(e), ..
        }) => classify(&e),
        Err(_) => Outcome::Other,
    }
}

fn classify(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::ConnectError
    } else {
        Outcome::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(users: usize, secs: u64) -> PlanStep {
        PlanStep {
            users,
            over: Duration::from_secs(secs),
        }
    }

    #[test]
    fn plan_becomes_goose_steps_in_real_milliseconds() {
        // Idle 10 s, ramp to 20 over 30 s, hold 60 s, down over 10 s, idle 100 s.
        let plan = [
            step(0, 10),
            step(20, 30),
            step(20, 60),
            step(0, 10),
            step(0, 100),
        ];
        let (lead, steps) = goose_plan(&plan, 20.0).unwrap();
        assert_eq!(lead, Duration::from_millis(500));
        assert_eq!(steps, vec![(20, 1500), (20, 3000), (0, 500)]);
        // Ending with users: they all stop when the last stage ends.
        let (lead, steps) = goose_plan(&[step(5, 0), step(5, 2)], 1.0).unwrap();
        assert_eq!(
            (lead, steps),
            (Duration::ZERO, vec![(5, 0), (5, 2000), (0, 0)])
        );
        assert_eq!(goose_plan(&[step(0, 5)], 1.0), Err(ClosedError::NoUsers));
    }

    #[test]
    fn configuration_keeps_the_plan_to_the_millisecond() {
        let c = configuration("http://127.0.0.1:9", &[(3, 1500), (0, 250)]).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["test_plan"]["steps"],
            serde_json::json!([[3, 1500], [0, 250]])
        );
        assert_eq!(c.host.as_deref(), Some("http://127.0.0.1:9"));
        assert!(c.no_metrics && c.no_telnet && c.no_print_metrics);
    }

    #[test]
    fn rejects_steps_goose_cannot_send() {
        let spec = StepSpec {
            name: "s".into(),
            method: Method::GET,
            path: "/".into(),
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(1),
        };
        let bad = |f: &dyn Fn(&mut StepSpec)| {
            let mut s = spec.clone();
            f(&mut s);
            Prepared::new(&s, Some("h.test"), 1.0).err()
        };
        assert!(matches!(
            bad(&|s| s.method = Method::OPTIONS),
            Some(ClosedError::BadMethod { .. })
        ));
        assert!(matches!(
            bad(&|s| s.headers = vec![("bad header".into(), "v".into())]),
            Some(ClosedError::BadHeader { .. })
        ));
        assert!(matches!(
            bad(&|s| s.timeout = Duration::ZERO),
            Some(ClosedError::BadTimeout { .. })
        ));
        let p = Prepared::new(&spec, Some("h.test"), 1.0).unwrap();
        assert_eq!(p.headers[HOST], "h.test");
    }

    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use tokio::net::TcpListener;

    /// What the test server saw: (method, path, Host header, body).
    type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

    /// A server on 127.0.0.1:0: `/a` answers 200, anything else 503.
    async fn server(seen: Seen) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let host = parts
                                .headers
                                .get(HOST)
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            seen.lock().unwrap().push((
                                parts.method.to_string(),
                                parts.uri.path().to_owned(),
                                host,
                                String::from_utf8_lossy(&body).into_owned(),
                            ));
                            let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
                            if parts.uri.path() != "/a" {
                                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            }
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    fn config(addr: SocketAddr, plan: Vec<PlanStep>) -> ClosedConfig {
        let ms = Duration::from_millis;
        ClosedConfig {
            base_url: format!("http://{addr}"),
            host: Some("svc.test".into()),
            journey: vec![
                StepSpec {
                    name: "a".into(),
                    method: Method::GET,
                    path: "/a".into(),
                    headers: vec![],
                    body: None,
                    timeout: Duration::from_secs(5),
                },
                StepSpec {
                    name: "b".into(),
                    method: Method::POST,
                    path: "/b?x=1".into(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: Some(Bytes::from_static(b"{}")),
                    timeout: Duration::from_secs(5),
                },
            ],
            think: (ms(10), ms(20)),
            plan,
            speed: 1.0,
            sample_interval: ms(100),
        }
    }

    /// Goose keeps process-wide state (its stop switch), so the live
    /// attacks run one after another in this one test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_walk_the_journey_are_counted_and_stop() {
        let ms = Duration::from_millis;
        let seen: Seen = Arc::default();
        let addr = server(seen.clone()).await;

        // Ramp to 4 users over 0.2 s, hold 0.6 s, leave over 0.2 s.
        let plan = vec![
            PlanStep {
                users: 4,
                over: ms(200),
            },
            PlanStep {
                users: 4,
                over: ms(600),
            },
            PlanStep {
                users: 0,
                over: ms(200),
            },
        ];
        let h = start(config(addr, plan), Instant::now()).expect("start");
        let (mut peak, mut taken) = (0, IntervalStats::new());
        for k in 0..10 {
            taken.merge(&h.sample(k).await);
            peak = peak.max(h.users());
        }
        let t = tokio::time::timeout(Duration::from_secs(10), h.join())
            .await
            .expect("the plan ends by itself");
        assert_eq!(peak, 4, "users running at the plateau");
        // Closed model: every request intended is sent, none dropped or late.
        assert!(t.completed > 20, "{t:?}");
        assert_eq!(
            (t.intended, t.sent, t.completed),
            (t.completed, t.completed, t.completed)
        );
        assert_eq!((t.dropped, t.late, t.in_flight), (0, 0, 0));
        assert!(taken.completed > 0 && taken.completed <= t.completed);
        // `/a` answers 200 and `/b` 503: the journey alternates them.
        assert_eq!(t.status.s2xx + t.status.s5xx, t.completed, "{:?}", t.status);
        assert!(t.status.s2xx.abs_diff(t.status.s5xx) <= 4, "{:?}", t.status);
        assert_eq!(t.response_time.len(), t.completed);
        assert_eq!(t.service_time.max(), t.response_time.max());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len() as u64, t.completed);
        assert!(
            seen.iter().all(|(_, _, host, _)| host == "svc.test"),
            "{seen:?}"
        );
        assert!(seen
            .iter()
            .filter(|(_, path, _, _)| path == "/b")
            .all(|(method, _, _, body)| method == "POST" && body == "{}"));

        // A long plan stops when asked, users and all.
        let plan = vec![
            PlanStep {
                users: 2,
                over: ms(0),
            },
            PlanStep {
                users: 2,
                over: Duration::from_secs(60),
            },
        ];
        let h = start(config(addr, plan), Instant::now()).expect("start");
        tokio::time::sleep(ms(300)).await;
        assert_eq!(h.users(), 2);
        h.stop();
        let t = tokio::time::timeout(Duration::from_secs(5), h.join())
            .await
            .expect("stop ends the attack");
        assert!(t.completed > 0);

        // Nothing listens on a just-released port: connection errors, counted.
        let dead = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let plan = vec![
            PlanStep {
                users: 1,
                over: ms(0),
            },
            PlanStep {
                users: 1,
                over: ms(300),
            },
        ];
        let t = start(config(dead, plan), Instant::now())
            .expect("start")
            .join()
            .await;
        assert!(t.status.connect_error > 0, "{:?}", t.status);
        assert_eq!(t.status.connect_error, t.completed);
        assert!(t.response_time.is_empty());
    }
}
