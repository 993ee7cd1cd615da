//! Open-model load engine: requests go out at their intended instants
//! whatever the server does; when `max_in_flight` requests are outstanding
//! the next one is dropped (counted), never queued or delayed.
//!
//! Because nothing waits for the server before sending, response time
//! (from the intended instant) and service time (from the actual send) only
//! differ by how late the generator itself was: a slow server shows up in
//! both, a stalled generator (CPU starvation, a blocked runtime thread) only
//! in response time and in `late`/`lateness`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::{HeaderMap, Method, Request, Uri};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::pool::{dial_h1, exchange, Failed, H2Conn, RawConn, SendError, Target, Times};
use super::rawlog::{RawLog, RawLogSummary};
use super::schedule::{RateCurve, Schedule, Spacing};
use super::stats::{micros, Completion, DispatchCounts, IntervalStats, Outcome, Recorder};
use super::workers::{Mailbox, Workers};
use crate::clock::Clock;
use crate::deadline::Deadline;
use crate::fine_timer;
use crate::http1_framing::put_header;

/// Requests due within this window of EXPERIMENT time after "now" go out in
/// the current batch (real: divided by the speed). At high rates it bounds
/// scheduler wake-ups to ~1000/s at speed 1; at `--speed 30` a send is
/// still within 1 ms of experiment time of its due instant, which the
/// 1-second samples need (sends on tokio's 1 ms ticks were 30 ms clumps).
const BATCH_WINDOW: Duration = Duration::from_millis(1);
/// An HTTP/1.1 connection worker idle this long ends and closes its
/// connection (hyper's pooled client keeps idle connections 90 s; shorter
/// here because a surplus connection only costs memory and the server's
/// attention).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Within one long catch-up batch, flush counts and yield this often so the
/// request tasks and `stop()` are not starved.
const YIELD_EVERY: u32 = 256;

/// What every request looks like.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    /// `http://host:port/path`; https is not supported.
    pub url: Uri,
    /// Extra headers. A `Host` entry overrides the one derived from `url`
    /// (HTTP/1.1; over HTTP/2 it is sent as a plain header next to
    /// `:authority`, which always comes from `url`).
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    /// Per-request timeout in EXPERIMENT time (divided by speed for real).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub curve: RateCurve,
    pub spacing: Spacing,
    /// Time compression: experiment time t runs at real t0 + t/speed.
    pub speed: f64,
    pub request: RequestSpec,
    /// Cap on outstanding requests; beyond it requests are dropped.
    pub max_in_flight: usize,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// Cap on open HTTP/1.1 connections; None = `max_in_flight`. A request
    /// due while all are busy waits for one (still in flight, the wait in its
    /// response time; see `pool`). HTTP/2 multiplexes everything over one
    /// connection.
    pub max_connections: Option<usize>,
    /// Write one CSV row per request here (see `rawlog`).
    pub raw_log: Option<PathBuf>,
    /// Width of a sample in experiment time: counts are kept per sample of
    /// their own timestamp (see `stats`).
    pub sample_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("speed must be finite and > 0, got {0}")]
    BadSpeed(f64),
    #[error("max_in_flight must be between 1 and {max}, got {got}")]
    BadMaxInFlight { got: usize, max: usize },
    #[error("connections must be at least 1")]
    BadConnections,
    #[error("url {0}: must be http://host[:port]/path (https is not supported)")]
    BadUrl(String),
    #[error("header {name:?}: {reason}")]
    BadHeader { name: String, reason: String },
    #[error("timeout {0:?} at this speed is not a usable real duration")]
    BadTimeout(Duration),
    #[error("sample interval {0:?} at this speed is not a usable real duration")]
    BadSampleInterval(Duration),
    #[error("load engine must be started inside a tokio runtime")]
    NoRuntime,
    #[error("raw log {path}: {reason}")]
    RawLog { path: String, reason: String },
}

/// The request, pre-built once so each send only clones cheap parts.
struct Prepared {
    method: Method,
    /// Origin form (`/path?query`) for HTTP/1.1, absolute for HTTP/2 (whose
    /// `:scheme` and `:authority` come from it).
    uri: Uri,
    target: Target,
    headers: HeaderMap,
    body: Bytes,
    /// The whole HTTP/1.1 request as written on the wire, every time.
    wire: Bytes,
    /// Real-time timeout.
    timeout: Duration,
}

impl Prepared {
    fn new(spec: &RequestSpec, speed: f64, http2: bool) -> Result<Self, LoadError> {
        let bad_url = || LoadError::BadUrl(spec.url.to_string());
        if spec.url.scheme_str() != Some("http") {
            return Err(bad_url());
        }
        let authority = spec.url.authority().ok_or_else(bad_url)?;
        let target = Target {
            // `[::1]` in a URL is `::1` to the resolver.
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(80),
        };
        let uri = if http2 {
            spec.url.clone()
        } else {
            let origin = spec.url.path_and_query().map_or("/", |p| p.as_str());
            origin.parse().map_err(|_| bad_url())?
        };
        let mut headers = HeaderMap::with_capacity(spec.headers.len() + 1);
        for (name, value) in &spec.headers {
            let bad = |reason: String| LoadError::BadHeader {
                name: name.clone(),
                reason,
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let v = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            headers.append(n, v);
        }
        if !http2 && !headers.contains_key(HOST) {
            // hyper_util formats Host per request when it is missing; doing it
            // once here saves an allocation per request.
            let host = match authority.port() {
                Some(p) => format!("{}:{}", authority.host(), p.as_u16()),
                None => authority.host().to_owned(),
            };
            let v = HeaderValue::from_str(&host).map_err(|_| bad_url())?;
            headers.insert(HOST, v);
        }
        let timeout = Duration::try_from_secs_f64(spec.timeout.as_secs_f64() / speed)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(LoadError::BadTimeout(spec.timeout))?;
        let body = spec.body.clone().unwrap_or_default();
        // HTTP/2 requests go through hyper, which builds each from the parts.
        let wire = if http2 {
            Bytes::new()
        } else {
            wire(&spec.method, &uri, &headers, &body)
        };
        Ok(Self {
            method: spec.method.clone(),
            uri,
            target,
            headers,
            body,
            wire,
            timeout,
        })
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// The HTTP/1.1 request `method uri` with `headers` and `body` as hyper's
/// client writes it: a content-length when there is a body, or when the
/// method is one that carries one (unless `headers` has its own), and the
/// body as one chunk when `headers` asks for a transfer-encoding.
fn wire(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Bytes {
    let mut w = Vec::with_capacity(128 + body.len());
    w.extend_from_slice(method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(uri.to_string().as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        put_header(&mut w, name.as_str(), value.as_bytes());
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        w.extend_from_slice(b"\r\n");
        if !body.is_empty() {
            w.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            w.extend_from_slice(body);
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"0\r\n\r\n");
        return Bytes::from(w);
    }
    let carries = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if (!body.is_empty() || carries) && !headers.contains_key(CONTENT_LENGTH) {
        w.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(body);
    Bytes::from(w)
}

/// How requests reach the server.
enum Transport {
    /// Connection workers, one connection each, up to the connection cap.
    Http1(Workers<Job>),
    /// One multiplexed connection; a task per request.
    Http2(H2Conn),
}

/// A request sent by the scheduler and not yet recorded.
struct Job {
    due: Due,
    /// When the scheduler sent it (on or after `due.at`, or up to a batch
    /// window before).
    started: Instant,
    permit: OwnedSemaphorePermit,
}

struct Shared {
    recorder: Recorder,
    transport: Transport,
    prepared: Prepared,
    /// One permit per allowed outstanding request.
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    /// Requests sent and not yet recorded. Not read off the semaphore: the
    /// final drain's acquire_many holds permits while it waits.
    outstanding: AtomicU64,
    stop: AtomicBool,
    stop_notify: Notify,
    raw: Option<RawLog>,
}

impl Shared {
    fn in_flight(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        // notify_one stores a permit, so a scheduler not yet waiting still
        // sees it.
        self.stop_notify.notify_one();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Control and statistics of a running engine. Dropping it stops the load
/// (in-flight requests still finish in the background).
pub struct LoadHandle {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl LoadHandle {
    /// Sample `k`'s stats (0-based: experiment time (k·interval,
    /// (k+1)·interval]), once they are complete: waits until a short grace
    /// after its end, then closes it (and any earlier sample still open).
    /// Also folded into `totals()`. Call once per sample, in order.
    pub async fn sample(&self, k: u64) -> IntervalStats {
        tokio::time::sleep_until(self.shared.recorder.closes_at(k)).await;
        self.shared.recorder.close(k, self.shared.in_flight())
    }

    /// Everything recorded and not yet taken, whatever its sample (the end
    /// of a run, or reads on a clock of the caller's own); also folded into
    /// `totals()`.
    pub fn take_recorded(&self) -> IntervalStats {
        self.shared.recorder.close_all(self.shared.in_flight())
    }

    /// Cumulative stats, including the current, not yet taken interval.
    pub fn totals(&self) -> IntervalStats {
        self.shared.recorder.totals(self.shared.in_flight())
    }

    /// Stops scheduling; in-flight requests run to completion or timeout.
    pub fn stop(&self) {
        self.shared.request_stop();
    }

    /// Requests currently outstanding.
    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight()
    }

    /// [`LoadHandle::in_flight`], readable while `finish` borrows the handle.
    pub fn in_flight_reader(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.in_flight()
    }

    /// Waits until the schedule is done (or stopped) and all in-flight
    /// requests finished, then returns the final totals.
    pub async fn join(mut self) -> IntervalStats {
        self.finish().await.totals
    }

    /// Like [`LoadHandle::join`], and also reports on the raw log. The
    /// handle stays usable (for what was recorded) if the wait is cut short.
    pub async fn finish(&mut self) -> Finished {
        if let Some(task) = self.task.as_mut() {
            // A panicked engine task still leaves valid counters behind.
            let _ = task.await;
            self.task = None;
        }
        Finished {
            totals: self.totals(),
            raw_log: self.shared.raw.as_ref().and_then(RawLog::summary),
        }
    }

    /// True once the schedule is done and nothing is in flight.
    pub fn finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// The end of a run: totals, and what happened to the raw log if any.
#[derive(Debug)]
pub struct Finished {
    pub totals: IntervalStats,
    pub raw_log: Option<RawLogSummary>,
}

impl Drop for LoadHandle {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

/// Starts driving load. `t0` is the real instant of experiment time 0 (may be
/// in the past: overdue requests go out at once and count as late). Must be
/// called inside a tokio runtime.
pub fn start(config: LoadConfig, t0: Instant) -> Result<LoadHandle, LoadError> {
    let speed = config.speed;
    if !speed.is_finite() || speed <= 0.0 {
        return Err(LoadError::BadSpeed(speed));
    }
    // acquire_many (used to drain) takes a u32.
    let max = Semaphore::MAX_PERMITS.min(u32::MAX as usize);
    if config.max_in_flight == 0 || config.max_in_flight > max {
        return Err(LoadError::BadMaxInFlight {
            got: config.max_in_flight,
            max,
        });
    }
    let max_connections = config.max_connections.unwrap_or(config.max_in_flight);
    if max_connections == 0 {
        return Err(LoadError::BadConnections);
    }
    let prepared = Prepared::new(&config.request, speed, config.http2)?;
    let interval = config.sample_interval;
    if Duration::try_from_secs_f64(interval.as_secs_f64() / speed).map_or(true, |d| d.is_zero()) {
        return Err(LoadError::BadSampleInterval(interval));
    }
    let clock = Clock::new(t0, speed);
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| LoadError::NoRuntime)?;
    let transport = if config.http2 {
        Transport::Http2(H2Conn::new(prepared.target.clone()))
    } else {
        Transport::Http1(Workers::new(max_connections, IDLE_TIMEOUT))
    };
    let raw = match &config.raw_log {
        Some(path) => Some(
            RawLog::create(path, t0, speed).map_err(|e| LoadError::RawLog {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
        ),
        None => None,
    };

    let shared = Arc::new(Shared {
        recorder: Recorder::new(clock, interval.as_secs_f64()),
        transport,
        prepared,
        slots: Arc::new(Semaphore::new(config.max_in_flight)),
        max_in_flight: config.max_in_flight,
        outstanding: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stop_notify: Notify::new(),
        raw,
    });
    let schedule = Schedule::new(config.curve, config.spacing);
    let task = runtime.spawn(run(shared.clone(), schedule, clock));
    Ok(LoadHandle {
        shared,
        task: Some(task),
    })
}

/// One scheduled request: experiment time and real instant.
#[derive(Clone, Copy)]
struct Due {
    t: f64,
    at: Instant,
}

async fn run(shared: Arc<Shared>, mut schedule: Schedule, clock: Clock) {
    let window = clock.real(BATCH_WINDOW);
    // An instant past what `Instant` holds ends the schedule.
    let mut next_due = || {
        schedule.next().and_then(|t| {
            Some(Due {
                t,
                at: clock.checked_instant(t)?,
            })
        })
    };
    let mut due = next_due();
    'schedule: while let Some(Due { at: first, .. }) = due {
        if first > Instant::now() {
            tokio::select! {
                biased;
                _ = shared.stop_notify.notified() => break 'schedule,
                _ = sleep_until(first, window) => {}
            }
        }
        if shared.stopping() {
            break;
        }
        let mut counts = DispatchCounts::default();
        // The sample the counts are for: a batch may span a boundary.
        let mut sample = 0;
        let mut horizon = Instant::now() + window;
        let mut batch = 0u32;
        while let Some(d) = due.filter(|d| d.at <= horizon) {
            let k = shared.recorder.sample_of(d.t);
            if k != sample && !counts.is_empty() {
                shared.recorder.record_dispatch(sample, counts);
                counts = DispatchCounts::default();
            }
            sample = k;
            counts.intended += 1;
            match shared.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    counts.sent += 1;
                    shared.outstanding.fetch_add(1, Ordering::Relaxed);
                    send(&shared, d, permit);
                }
                // At the cap: drop, never queue (open model).
                Err(_) => {
                    counts.dropped += 1;
                    if let Some(raw) = &shared.raw {
                        raw.dropped(d.t);
                    }
                }
            }
            due = next_due();
            batch += 1;
            if batch.is_multiple_of(YIELD_EVERY) {
                // Catching up on a backlog: let request tasks run and
                // observe stop, and keep the stats current.
                shared.recorder.record_dispatch(sample, counts);
                counts = DispatchCounts::default();
                tokio::task::yield_now().await;
                if shared.stopping() {
                    break 'schedule;
                }
                horizon = Instant::now() + window;
            }
        }
        if !counts.is_empty() {
            shared.recorder.record_dispatch(sample, counts);
        }
    }
    // Every request holds a permit until it has recorded its outcome, so
    // getting all permits back means everything is accounted for. Requests
    // are bounded by their own timeout.
    let _ = shared.slots.acquire_many(shared.max_in_flight as u32).await;
    if let Transport::Http1(workers) = &shared.transport {
        workers.close();
    }
    if let Some(raw) = &shared.raw {
        raw.finish().await;
    }
}

/// Sleeps until `first` is due, give or take the batch window. tokio's
/// timer ends a sleep on its next 1 ms tick, so with a window that long
/// (speed 1) it wakes a window early, as the tick may add one, and costs no
/// thread hop. Under time compression the window is shorter than a tick:
/// the fine timer wakes on time, and what is due within the window after
/// that goes out with the first, so wake-ups stay at most one per window.
async fn sleep_until(first: Instant, window: Duration) {
    if window >= Duration::from_millis(1) {
        tokio::time::sleep_until(first.checked_sub(window).unwrap_or(first)).await;
    } else {
        fine_timer::sleep_until(first).await;
    }
}

/// Sends one request: hands it to a connection worker (HTTP/1.1) or
/// starts its task on the multiplexed connection (HTTP/2).
fn send(shared: &Arc<Shared>, due: Due, permit: OwnedSemaphorePermit) {
    // The generator's side of the send: how late the scheduler got to it.
    let started = Instant::now();
    shared
        .recorder
        .record_send(started, micros(due.at, started));
    let job = Job {
        due,
        started,
        permit,
    };
    match &shared.transport {
        Transport::Http1(workers) => {
            let due = job.due.at;
            if let Some(job) = workers.dispatch(job, due, started) {
                tokio::spawn(worker(shared.clone(), job));
            }
        }
        Transport::Http2(_) => {
            tokio::spawn(send_h2(shared.clone(), job));
        }
    }
}

/// A connection worker: serves jobs on its own connection, dialling it
/// when it has none, until it is idle too long or the load is over.
async fn worker(shared: Arc<Shared>, first: Job) {
    let Transport::Http1(workers) = &shared.transport else {
        return;
    };
    let mailbox = Arc::new(Mailbox::default());
    let (mut idle, mut timeout) = (Deadline::default(), Deadline::default());
    let mut conn: Option<RawConn> = None;
    // Until its first dial ends, this worker counts against the dialling
    // limit.
    let mut dialling = true;
    let mut next = Some(first);
    let mut finished = Instant::now();
    loop {
        let job = match next.take() {
            Some(j) => j,
            None => match workers.next(&mailbox, &mut idle, finished).await {
                Some(j) => j,
                None => break,
            },
        };
        let taken = Instant::now();
        let deadline = job.started + shared.prepared.timeout;
        let mut times = Times::default();
        // A request that waited out its timeout in the queue is not sent.
        let outcome = if taken >= deadline {
            Outcome::Timeout
        } else {
            let exchange = exchange_h1(&shared, &mut conn, &mut dialling, &mut times);
            match timeout.within(deadline, exchange).await {
                Some(o) => o,
                None => {
                    if times.sent.is_some() {
                        // Cut mid-exchange: the connection's state is unknown.
                        conn = None;
                    }
                    Outcome::Timeout
                }
            }
        };
        if std::mem::take(&mut dialling) {
            // Timed out before its dial ended.
            dialled(&shared);
        }
        // The clock is read a few times per request at 150,000 a second:
        // the completion's instant stands for "now" until the next job.
        finished = times.done.unwrap_or_else(Instant::now);
        record(&shared, job, &times, outcome);
        workers.served(finished - taken, finished);
    }
}

/// A new worker's first dial ended: a request still waiting may start the
/// next worker.
fn dialled(shared: &Arc<Shared>) {
    if let Transport::Http1(workers) = &shared.transport {
        if let Some(job) = workers.dialled(Instant::now()) {
            tokio::spawn(worker(shared.clone(), job));
        }
    }
}

/// One request on the worker's connection (dialled first if there is none).
/// A request that never left because the server had just closed the
/// keep-alive connection is retried once on a new one, as browsers and
/// hyper's own pooled client do. `first_dial` is set while the worker's
/// first dial has not ended.
async fn exchange_h1(
    shared: &Arc<Shared>,
    conn: &mut Option<RawConn>,
    first_dial: &mut bool,
    t: &mut Times,
) -> Outcome {
    let p = &shared.prepared;
    for retry in [true, false] {
        let c = match conn {
            Some(c) => c,
            None => {
                let conn_or_err = dial_h1(&p.target).await;
                if std::mem::take(first_dial) {
                    dialled(shared);
                }
                match conn_or_err {
                    Ok(c) => conn.insert(c),
                    Err(_) => return Outcome::ConnectError,
                }
            }
        };
        match exchange(c, &p.wire, p.method == Method::HEAD, t).await {
            Ok((code, reusable)) => {
                if !reusable {
                    *conn = None;
                }
                return Outcome::Status(code);
            }
            Err(failed) => {
                *conn = None;
                if !(retry && failed == Failed::NotSent) {
                    return Outcome::Other;
                }
            }
        }
    }
    Outcome::Other
}

async fn send_h2(shared: Arc<Shared>, job: Job) {
    let Transport::Http2(h2) = &shared.transport else {
        return;
    };
    let mut times = Times::default();
    let deadline = job.started + shared.prepared.timeout;
    let outcome = tokio::time::timeout_at(
        deadline,
        exchange_h2(h2, shared.prepared.build(), &mut times),
    )
    .await
    .unwrap_or(Outcome::Timeout);
    record(&shared, job, &times, outcome);
}

/// One request on the multiplexed connection, retried once on a new one
/// if it never left.
async fn exchange_h2(h2: &H2Conn, mut req: Request<Full<Bytes>>, t: &mut Times) -> Outcome {
    for retry in [true, false] {
        let mut sender = match h2.checkout().await {
            Ok(s) => s,
            Err(SendError::Connect) => return Outcome::ConnectError,
        };
        t.sent = Some(Instant::now());
        let resp = match sender.try_send_request(req).await {
            Ok(resp) => resp,
            Err(mut e) => match e.take_message() {
                Some(back) if retry => {
                    req = back;
                    continue;
                }
                _ => return Outcome::Other,
            },
        };
        t.headers = Some(Instant::now());
        let code = resp.status().as_u16();
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Outcome::Other;
            }
        }
        t.done = Some(Instant::now());
        return Outcome::Status(code);
    }
    Outcome::Other
}

/// Records a finished request and gives its in-flight slot back.
fn record(shared: &Shared, job: Job, t: &Times, outcome: Outcome) {
    let Job {
        due,
        started,
        permit,
    } = job;
    let done = t.done.unwrap_or_else(Instant::now);
    // Service time starts when the request was written (a wait for a
    // connection at the connection cap is the client's, not the server's);
    // response time starts at the intended instant, or at the send for one
    // sent up to a batch window early, so it never drops below service time.
    let sent = t.sent.unwrap_or(started);
    let c = Completion {
        outcome,
        response_us: micros(due.at.min(started), done),
        service_us: micros(sent, done),
        ttfb_us: t.headers.map(|h| micros(sent, h)),
    };
    shared.recorder.record_completion(done, c);
    if let Some(raw) = &shared.raw {
        raw.finished(due.t, sent, done, &c);
    }
    shared.outstanding.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_written_as_hypers_client_writes_it() {
        let uri: Uri = "/post?x=1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("pod:80"));
        let text = |m: Method, h: &HeaderMap, b: &'static [u8]| {
            String::from_utf8(wire(&m, &uri, h, &Bytes::from_static(b)).to_vec()).unwrap()
        };
        assert_eq!(
            text(Method::GET, &h, b""),
            "GET /post?x=1 HTTP/1.1\r\nhost: pod:80\r\n\r\n"
        );
        assert_eq!(
            text(Method::POST, &h, b""),
            "POST /post?x=1 HTTP/1.1\r\nhost: pod:80\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            text(Method::PUT, &h, b"abc"),
            "PUT /post?x=1 HTTP/1.1\r\nhost: pod:80\r\ncontent-length: 3\r\n\r\nabc"
        );
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(
            text(Method::POST, &h, b"abc"),
            "POST /post?x=1 HTTP/1.1\r\nhost: pod:80\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        );
    }
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use tokio::net::TcpListener;

    type Resp = Response<Full<Bytes>>;

    /// Serves `handler` on 127.0.0.1:0 (HTTP/1.1 and h2c) until the runtime
    /// ends.
    async fn serve<F, Fut>(handler: F) -> SocketAddr
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Resp> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let h = handler.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let fut = h(req);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    async fn ok_server() -> SocketAddr {
        serve(|_req| async { Response::new(Full::new(Bytes::from_static(b"ok"))) }).await
    }

    fn config(addr: SocketAddr, curve: RateCurve) -> LoadConfig {
        LoadConfig {
            curve,
            spacing: Spacing::Uniform,
            speed: 1.0,
            request: RequestSpec {
                method: Method::GET,
                url: format!("http://{addr}/work").parse().expect("uri"),
                headers: vec![],
                body: None,
                timeout: Duration::from_secs(5),
            },
            max_in_flight: 1000,
            http2: false,
            max_connections: None,
            raw_log: None,
            sample_interval: Duration::from_secs(1),
        }
    }

    fn constant(rate: f64, secs: f64) -> RateCurve {
        RateCurve::constant(rate, secs).expect("curve")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_rate_500_for_2s() {
        let addr = ok_server().await;
        let t0 = Instant::now();
        let h = start(config(addr, constant(500.0, 2.0)), t0).expect("start");
        let s = h.join().await;
        let elapsed = t0.elapsed();
        assert_eq!(s.intended, 1000);
        assert_eq!(s.dropped, 0);
        assert!((998..=1000).contains(&s.completed), "{s:?}");
        assert_eq!(s.status.s2xx, s.completed);
        assert_eq!(s.response_time.len(), s.completed);
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
        assert_eq!(s.in_flight, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn speed_compresses_time_over_http2() {
        let addr = ok_server().await;
        let mut cfg = config(addr, constant(100.0, 10.0));
        cfg.speed = 10.0;
        cfg.http2 = true;
        cfg.spacing = Spacing::Poisson { seed: 3 };
        let t0 = Instant::now();
        let s = start(cfg, t0).expect("start").join().await;
        let elapsed = t0.elapsed();
        // ~1000 Poisson arrivals in 1 s real.
        assert!((900..=1100).contains(&s.intended), "{s:?}");
        assert_eq!(s.status.s2xx, s.intended);
        assert!(elapsed > Duration::from_millis(850), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_cap_requests_are_dropped_not_queued() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut cfg = config(addr, constant(1000.0, 0.1));
        cfg.max_in_flight = 10;
        cfg.request.timeout = Duration::from_millis(500);
        let t0 = Instant::now();
        let h = start(cfg, t0).expect("start");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mid = h.take_recorded();
        assert_eq!(mid.in_flight, 10);
        assert_eq!((mid.intended, mid.sent, mid.dropped), (100, 10, 90));
        assert_eq!(mid.completed, 0);
        let s = h.join().await;
        assert_eq!((s.intended, s.sent, s.dropped), (100, 10, 90));
        assert_eq!((s.completed, s.status.timeout), (10, 10));
        assert_eq!(s.response_time.len(), 0, "timeouts are not in histograms");
        assert!(t0.elapsed() >= Duration::from_millis(500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn latency_counts_from_intended_time() {
        // The engine starts 1 s "behind" (as after a CPU stall): the first
        // second's ~100 requests go out at once, late. Measured from the
        // intended instant they took up to ~1 s; measured from the actual
        // send they were fast. A sender-side clock would report the latter.
        let addr = ok_server().await;
        let now = Instant::now();
        let t0 = now.checked_sub(Duration::from_secs(1)).expect("clock");
        let s = start(config(addr, constant(100.0, 2.0)), t0)
            .expect("start")
            .join()
            .await;
        assert_eq!(s.status.s2xx, 200);
        // The backlog is late (later ones may be too on a busy machine).
        assert!(s.late >= 98, "late {}", s.late);
        let resp_p99 = s.response_time.value_at_quantile(0.99);
        let svc_p99 = s.service_time.value_at_quantile(0.99);
        assert!(resp_p99 >= 900_000, "response p99 {resp_p99} µs");
        assert!(svc_p99 < 300_000, "service p99 {svc_p99} µs");
        // The on-time second half is fast either way.
        assert!(s.response_time.value_at_quantile(0.25) < 300_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_hold_their_own_requests_and_add_up_to_totals() {
        let addr = ok_server().await;
        let mut cfg = config(addr, constant(400.0, 1.0));
        cfg.sample_interval = Duration::from_millis(200);
        let t0 = Instant::now();
        let h = start(cfg, t0).expect("start");
        let mut sum = IntervalStats::new();
        for k in 0..5u32 {
            // A sampler busy elsewhere reads up to 90 ms (45 %) late; that
            // moves no request between samples.
            tokio::time::sleep_until(
                t0 + Duration::from_millis(200 * u64::from(k + 1) + 30 * u64::from(k % 4)),
            )
            .await;
            let s = h.sample(u64::from(k)).await;
            // Uniform spacing: 80 due per 200 ms sample; a fast server
            // answers within the sample but near its edges.
            assert_eq!(s.intended, 80, "sample {k}");
            assert!(
                s.completed.abs_diff(80) <= 4,
                "sample {k}: {} completed",
                s.completed
            );
            sum.merge(&s);
        }
        let mut h = h;
        let t = h.finish().await.totals;
        sum.merge(&h.take_recorded());
        assert_eq!(t.intended, 400);
        assert_eq!(
            (sum.intended, sum.sent, sum.completed, sum.status),
            (t.intended, t.sent, t.completed, t.status)
        );
        assert_eq!(sum.response_time.len(), t.response_time.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_ends_a_long_run() {
        let addr = ok_server().await;
        let h = start(config(addr, constant(100.0, 600.0)), Instant::now()).expect("start");
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.stop();
        let s = tokio::time::timeout(Duration::from_secs(2), h.join())
            .await
            .expect("join after stop");
        assert!((10..=40).contains(&s.intended), "{}", s.intended);
        assert_eq!(s.completed, s.sent);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn classifies_statuses_errors_and_sends_headers() {
        let addr = serve(|req: Request<Incoming>| async move {
            let host_ok = req.headers().get(HOST).is_some_and(|h| h == "svc.example");
            let code = match (host_ok, req.method() == Method::POST) {
                (true, true) => StatusCode::SERVICE_UNAVAILABLE,
                (true, false) => StatusCode::NOT_FOUND,
                (false, _) => StatusCode::MISDIRECTED_REQUEST,
            };
            let mut r = Response::new(Full::new(Bytes::from_static(b"x")));
            *r.status_mut() = code;
            r
        })
        .await;
        let mut cfg = config(addr, constant(100.0, 0.2));
        cfg.request.headers = vec![("Host".into(), "svc.example".into())];
        cfg.request.method = Method::POST;
        cfg.request.body = Some(Bytes::from_static(b"{}"));
        let s = start(cfg.clone(), Instant::now())
            .expect("start")
            .join()
            .await;
        assert_eq!((s.completed, s.status.s5xx), (20, 20), "{:?}", s.status);
        assert_eq!(s.response_time.len(), 20);

        // Nothing listens on a just-released port.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let s = start(config(port, constant(100.0, 0.2)), Instant::now())
            .expect("start")
            .join()
            .await;
        assert_eq!((s.completed, s.status.connect_error), (20, 20));
    }

    #[test]
    fn handle_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LoadHandle>();
        assert_send_sync::<IntervalStats>();
    }

    #[tokio::test]
    async fn rejects_bad_config() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let base = config(addr, constant(1.0, 1.0));
        let mut c = base.clone();
        c.speed = 0.0;
        assert!(matches!(
            start(c, Instant::now()),
            Err(LoadError::BadSpeed(_))
        ));
        let mut c = base.clone();
        c.max_in_flight = 0;
        assert!(matches!(
            start(c, Instant::now()),
            Err(LoadError::BadMaxInFlight { .. })
        ));
        let mut c = base.clone();
        c.request.url = "https://127.0.0.1/".parse().expect("uri");
        assert!(matches!(
            start(c, Instant::now()),
            Err(LoadError::BadUrl(_))
        ));
        let mut c = base.clone();
        c.request.headers = vec![("bad header".into(), "v".into())];
        assert!(matches!(
            start(c, Instant::now()),
            Err(LoadError::BadHeader { .. })
        ));
        let mut c = base;
        c.request.timeout = Duration::ZERO;
        assert!(matches!(
            start(c, Instant::now()),
            Err(LoadError::BadTimeout(_))
        ));
    }

    /// Process CPU time (user + system) from /proc, assuming 100 ticks/s.
    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15; index 11/12 after "comm)".
        (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
    }

    /// Throughput probe, not a regression test:
    /// `LOAD_BENCH_RATES=5000,10000 cargo test --release -- --ignored --nocapture max_rate`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn max_rate_probe() {
        let rates: Vec<f64> = std::env::var("LOAD_BENCH_RATES")
            .unwrap_or_else(|_| "5000,10000,20000".into())
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect();
        let http2 = std::env::var("LOAD_BENCH_H2").is_ok();
        let addr = ok_server().await;
        for rate in rates {
            let mut cfg = config(addr, constant(rate, 5.0));
            cfg.http2 = http2;
            cfg.max_in_flight = 2000;
            let cpu0 = cpu_seconds();
            let t0 = Instant::now() + Duration::from_millis(50);
            let h = start(cfg, t0).expect("start");
            let mut held = true;
            for k in 1..=5u64 {
                let s = h.sample(k - 1).await;
                let ok = (s.completed as f64 - rate).abs() <= rate * 0.01
                    && (s.sent as f64 - rate).abs() <= rate * 0.01;
                held &= ok;
                println!(
                    "rate {rate} s{k}: intended {} sent {} completed {} dropped {} late {} \
                     in_flight {} resp p50/p99 {}/{} µs svc p99 {} µs {}",
                    s.intended,
                    s.sent,
                    s.completed,
                    s.dropped,
                    s.late,
                    s.in_flight,
                    s.response_time.value_at_quantile(0.5),
                    s.response_time.value_at_quantile(0.99),
                    s.service_time.value_at_quantile(0.99),
                    if ok { "ok" } else { "MISS" }
                );
            }
            let t = h.join().await;
            let cpu = cpu_seconds() - cpu0;
            println!(
                "rate {rate}: held={held} total completed {} errors {} cpu {:.2}s over ~5s ({:.0}% of one core, client+server)",
                t.completed,
                t.status.errors(),
                cpu,
                cpu / 5.0 * 100.0
            );
        }
    }
}
