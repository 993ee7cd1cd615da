//! The scenario file: which manifests, the local cluster model, the load
//! profile, the expectations and report options. Decoded with serde (unknown
//! fields rejected) and validated; every error names file, line and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::yaml;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file name without extension.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Total experiment length; observation goes on after the load stops.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Sample interval of timeline.jsonl (experiment time).
    #[serde(default = "one_second", with = "humantime_serde")]
    pub sample_interval: Duration,
    /// Kubernetes manifests, applied in this order; paths relative to the scenario file.
    pub manifests: Vec<PathBuf>,
    pub target: Target,
    pub load: Load,
    /// Settings of the embedded cluster (`--backend local`).
    #[serde(default)]
    pub local: Local,
    /// Settings for a real cluster (`--backend kube`).
    #[serde(default)]
    pub kube: Kube,
    /// Written as a list of one-key maps (`- scale_out: {...}`), not YAML tags.
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub expect: Vec<Expectation>,
    #[serde(default)]
    pub report: ReportOptions,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The HTTPRoute that load goes through (metadata.name).
    pub route: String,
    /// The HPA to watch (metadata.name); may be omitted when the manifests hold one HPA.
    #[serde(default)]
    pub hpa: Option<String>,
    /// Gateway URL for the `kube` backend; the local backend uses its own gateway.
    #[serde(default)]
    pub url: Option<String>,
    /// Host header to send; defaults to the route's first hostname.
    #[serde(default)]
    pub host: Option<String>,
    /// Start the scale target at this many replicas (overrides the Deployment's spec.replicas).
    #[serde(default)]
    pub replicas: Option<i32>,
}

/// The load profile. `model` decides which other fields apply: the open
/// model sends `request` on the stages' schedule; the closed `users` model
/// runs Goose users that walk `journey` with `think_time` between steps.
/// Fields of the other model are rejected rather than ignored, so a scenario
/// never reads as doing something it does not.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// `open` (arrival rate, the default) or `users` (closed model).
    #[serde(default)]
    pub model: LoadModel,
    /// Open model: request spacing (default uniform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<Spacing>,
    /// Open model: requests outstanding at once; beyond it requests are
    /// counted as dropped (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Open model, HTTP/1.1: cap on open connections (default
    /// `max_in_flight`). A request due while all are busy waits for one,
    /// in flight, the wait counted in its response time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Open model: the request sent on schedule (default `GET /get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// From 0: requests per second (open model) or users (`users` model).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Users model: pause after each journey step (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<ThinkTime>,
    /// Users model: the requests each user makes in order, over and over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journey: Vec<JourneyStep>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// Arrival rate: requests go out on schedule whatever the latency.
    #[default]
    Open,
    /// Closed: a number of users, each waiting for its response (and its
    /// think time) before the next request. Driven by Goose.
    Users,
}

/// Most users a scenario may start: each is a task with its own request
/// loop, and far beyond this the harness, not the service, is measured.
pub const MAX_USERS: f64 = 10_000.0;

/// HTTP methods a journey step may use (the ones Goose's requests take).
pub const JOURNEY_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// One request of a user's journey.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyStep {
    /// Label of the step; default `METHOD path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl JourneyStep {
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }
}

/// A pause, written `2s` (fixed) or `1s..3s` (uniform in the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

impl TryFrom<String> for ThinkTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parse = |part: &str| {
            humantime::parse_duration(part.trim()).map_err(|e| {
                format!(
                    "`{}`: {e}; write a duration (`2s`) or a range (`1s..3s`)",
                    part.trim()
                )
            })
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let d = parse(&s)?;
                (d, d)
            }
        };
        if min > max {
            return Err(format!(
                "`{s}`: the range's start is above its end; write `min..max`"
            ));
        }
        Ok(ThinkTime { min, max })
    }
}

impl From<ThinkTime> for String {
    fn from(t: ThinkTime) -> String {
        if t.min == t.max {
            fmt_dur(t.min)
        } else {
            format!("{}..{}", fmt_dur(t.min), fmt_dur(t.max))
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    #[default]
    Uniform,
    Poisson,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `"1.1"` (default) or `"2"`: HTTP/2 with prior knowledge (h2c).
    #[serde(default)]
    pub http: HttpVersion,
}

impl Default for Request {
    fn default() -> Self {
        Self {
            method: default_method(),
            path: default_path(),
            headers: BTreeMap::new(),
            body: None,
            timeout: default_timeout(),
            http: HttpVersion::default(),
        }
    }
}

/// The HTTP version the load engine speaks. Written `"1.1"` or `"2"`; the
/// unquoted YAML numbers `1.1` and `2` are accepted too, since that is how
/// people write versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HttpVersionText", into = "HttpVersionText")]
pub enum HttpVersion {
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (cleartext h2c, no upgrade).
    Http2,
}

/// What a YAML scalar for `http` may be.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum HttpVersionText {
    Text(String),
    Number(f64),
}

impl TryFrom<HttpVersionText> for HttpVersion {
    type Error = String;
    fn try_from(v: HttpVersionText) -> Result<Self, String> {
        let text = match v {
            HttpVersionText::Text(t) => t,
            HttpVersionText::Number(n) => n.to_string(),
        };
        match text.as_str() {
            "1.1" => Ok(HttpVersion::Http1),
            "2" => Ok(HttpVersion::Http2),
            other => Err(format!(
                "invalid HTTP version `{other}`: expected \"1.1\" or \"2\" (HTTP/2 with prior knowledge)"
            )),
        }
    }
}

impl From<HttpVersion> for HttpVersionText {
    fn from(v: HttpVersion) -> Self {
        HttpVersionText::Text(
            match v {
                HttpVersion::Http1 => "1.1",
                HttpVersion::Http2 => "2",
            }
            .into(),
        )
    }
}

/// A request rate in requests per experiment-second: finite and ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Rate(pub f64);

impl TryFrom<f64> for Rate {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.is_finite() && v >= 0.0 {
            Ok(Rate(v))
        } else {
            Err(format!(
                "invalid value {v}: expected a number ≥ 0 (requests per second; users with `model: users`)"
            ))
        }
    }
}

impl From<Rate> for f64 {
    fn from(r: Rate) -> f64 {
        r.0
    }
}

/// One load stage. Written as one of:
/// `{ramp_to: 110, over: 27m}` (linear from the current rate),
/// `{hold: 1m}` (keep the current rate),
/// `{rate: 50, for: 2m}` (instant step, then constant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StageFields", into = "StageFields")]
pub enum Stage {
    Ramp { to: Rate, over: Duration },
    Hold { duration: Duration },
    Step { rate: Rate, duration: Duration },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ramp_to: Option<Rate>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    over: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    hold: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<Rate>,
    #[serde(
        default,
        rename = "for",
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    for_: Option<Duration>,
}

impl TryFrom<StageFields> for Stage {
    type Error = String;
    fn try_from(f: StageFields) -> Result<Self, String> {
        const ALLOWED: &str =
            "a stage is one of {ramp_to: R, over: D}, {hold: D} or {rate: R, for: D}";
        match (f.ramp_to, f.over, f.hold, f.rate, f.for_) {
            (Some(to), Some(over), None, None, None) => Ok(Stage::Ramp { to, over }),
            (Some(_), None, None, None, None) => Err(format!("`ramp_to` needs `over`; {ALLOWED}")),
            (None, None, Some(d), None, None) => Ok(Stage::Hold { duration: d }),
            (None, None, None, Some(rate), Some(d)) => Ok(Stage::Step { rate, duration: d }),
            (None, None, None, Some(_), None) => Err(format!("`rate` needs `for`; {ALLOWED}")),
            _ => Err(format!("unexpected combination of keys; {ALLOWED}")),
        }
    }
}

impl From<Stage> for StageFields {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Ramp { to, over } => StageFields {
                ramp_to: Some(to),
                over: Some(over),
                ..Default::default()
            },
            Stage::Hold { duration } => StageFields {
                hold: Some(duration),
                ..Default::default()
            },
            Stage::Step { rate, duration } => StageFields {
                rate: Some(rate),
                for_: Some(duration),
                ..Default::default()
            },
        }
    }
}

impl Stage {
    pub fn duration(&self) -> Duration {
        match self {
            Stage::Ramp { over, .. } => *over,
            Stage::Hold { duration } | Stage::Step { duration, .. } => *duration,
        }
    }
    /// `unit` follows the number, e.g. ` users` for the closed model.
    pub fn label(&self, unit: &str) -> String {
        match self {
            Stage::Ramp { to, over } => {
                format!("ramp_to {}{unit} over {}", to.0, fmt_dur(*over))
            }
            Stage::Hold { duration } => format!("hold {}", fmt_dur(*duration)),
            Stage::Step { rate, duration } => format!("rate {} for {}", rate.0, fmt_dur(*duration)),
        }
    }
}

/// A linear piece of the offered-rate curve, in experiment seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePiece {
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
    pub label: String,
}

impl Load {
    pub fn is_users(&self) -> bool {
        self.model == LoadModel::Users
    }

    /// The open model's request (its default when not written).
    pub fn request(&self) -> Request {
        self.request.clone().unwrap_or_default()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.unwrap_or_else(default_max_in_flight)
    }

    /// The longest any one request may take, in experiment time: what the
    /// gateway allows upstream and how long in-flight requests get at the end.
    pub fn timeout(&self) -> Duration {
        match self.model {
            LoadModel::Open => self.request().timeout,
            LoadModel::Users => self
                .journey
                .iter()
                .map(|s| s.timeout)
                .max()
                .unwrap_or_else(default_timeout),
        }
    }

    /// The stages as contiguous linear pieces from t = 0 and rate 0 (or 0
    /// users: the pieces' values are users for the closed model).
    pub fn pieces(&self) -> Vec<RatePiece> {
        let unit = if self.is_users() { " users" } else { "" };
        let mut t = 0.0;
        let mut rate = 0.0;
        let mut out = Vec::new();
        for s in &self.stages {
            let d = s.duration().as_secs_f64();
            let (from, to) = match s {
                Stage::Ramp { to, .. } => (rate, to.0),
                Stage::Hold { .. } => (rate, rate),
                Stage::Step { rate: r, .. } => (r.0, r.0),
            };
            out.push(RatePiece {
                start: t,
                end: t + d,
                from,
                to,
                label: s.label(unit),
            });
            t += d;
            rate = to;
        }
        out
    }

    /// When the load stops: the last instant the offered rate (or, for the
    /// closed model, the user count) is above zero.
    pub fn load_stop(&self) -> f64 {
        self.pieces()
            .iter()
            .rev()
            .find(|p| p.from > 0.0 || p.to > 0.0)
            .map(|p| p.end)
            .unwrap_or(0.0)
    }

    pub fn total(&self) -> f64 {
        self.pieces().last().map(|p| p.end).unwrap_or(0.0)
    }

    /// Offered rate and stage label at experiment time `t`.
    pub fn rate_at(&self, t: f64) -> (f64, String) {
        for p in self.pieces() {
            if t < p.end || (p.end == p.start && t <= p.end) {
                if t < p.start {
                    break;
                }
                let f = if p.end > p.start {
                    (t - p.start) / (p.end - p.start)
                } else {
                    1.0
                };
                return (p.from + (p.to - p.from) * f, p.label);
            }
        }
        (0.0, "after load".into())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kube {
    /// How long the Deployment may take to be Available and the HPA to
    /// report ScalingActive=True before the run fails (exit 3).
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl Default for Kube {
    fn default() -> Self {
        Kube {
            ready_timeout: default_ready_timeout(),
        }
    }
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Local {
    #[serde(default)]
    pub pods: Pods,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub controller: Controller,
    /// How long the embedded cluster (local and sim) may take until every
    /// replica is ready and the HPA is active before the run fails (exit 3).
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            pods: Pods::default(),
            metrics: Metrics::default(),
            controller: Controller::default(),
            ready_timeout: default_ready_timeout(),
        }
    }
}

/// How the embedded cluster runs a pod.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    /// Capacity model of the built-in httpbin-compatible server.
    #[serde(default)]
    pub model: PodModel,
    /// Run this program per pod instead (`{port}` is replaced), e.g.
    /// `gunicorn httpbin:app -b 127.0.0.1:{port}`.
    #[serde(default)]
    pub command: Option<String>,
    /// Time from creation until the container is started and probed.
    #[serde(default = "default_startup", with = "humantime_serde")]
    pub startup_delay: Duration,
    /// Readiness probe path; default: the Deployment's readinessProbe, else `/health`
    /// (`/` for a command pod).
    #[serde(default)]
    pub readiness_path: Option<String>,
    /// How long a terminating pod may take to finish in-flight requests.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub termination_grace: Duration,
}

impl Default for Pods {
    fn default() -> Self {
        Self {
            model: PodModel::default(),
            command: None,
            startup_delay: default_startup(),
            readiness_path: None,
            termination_grace: default_grace(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodModel {
    /// Requests served at once; more wait in a queue.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Time a request holds a slot.
    #[serde(default = "default_service_time", with = "humantime_serde")]
    pub service_time: Duration,
    /// CPU time a request costs; utilization = CPU time / (wall time × CPU request).
    #[serde(default = "default_cpu_per_request", with = "humantime_serde")]
    pub cpu_per_request: Duration,
    #[serde(default = "default_memory_base")]
    pub memory_base_mib: u64,
}

impl Default for PodModel {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            service_time: default_service_time(),
            cpu_per_request: default_cpu_per_request(),
            memory_base_mib: default_memory_base(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Window of rate-type metrics (pods QPS, route QPS), like Prometheus `rate(...[60s])`.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Window of CPU usage as metrics-server reports it.
    #[serde(default = "default_resource_window", with = "humantime_serde")]
    pub resource_window: Duration,
    /// How often counters are scraped.
    #[serde(default = "default_scrape", with = "humantime_serde")]
    pub scrape_interval: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            window: default_window(),
            resource_window: default_resource_window(),
            scrape_interval: default_scrape(),
        }
    }
}

/// kube-controller-manager's HPA flags.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    #[serde(default = "default_sync", with = "humantime_serde")]
    pub sync_period: Duration,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default = "default_downscale", with = "humantime_serde")]
    pub downscale_stabilization: Duration,
    #[serde(default = "default_cpu_init", with = "humantime_serde")]
    pub cpu_initialization_period: Duration,
    #[serde(default = "default_readiness_delay", with = "humantime_serde")]
    pub initial_readiness_delay: Duration,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            sync_period: default_sync(),
            tolerance: default_tolerance(),
            downscale_stabilization: default_downscale(),
            cpu_initialization_period: default_cpu_init(),
            initial_readiness_delay: default_readiness_delay(),
        }
    }
}

/// A closed time window `[from, to]` in experiment time, written `[10m, 14m]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<humantime_serde::Serde<Duration>>")]
pub struct Window {
    pub from: Duration,
    pub to: Duration,
}

impl TryFrom<Vec<humantime_serde::Serde<Duration>>> for Window {
    type Error = String;
    fn try_from(v: Vec<humantime_serde::Serde<Duration>>) -> Result<Self, String> {
        match v.as_slice() {
            [a, b] if **a <= **b => Ok(Window { from: **a, to: **b }),
            [_, _] => Err("the window's start is after its end; write [from, to]".into()),
            _ => Err(format!(
                "expected two durations [from, to], e.g. [10m, 14m]; got {} values",
                v.len()
            )),
        }
    }
}

/// A closed numeric range `[low, high]`, written `[40, 50]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>")]
pub struct Range {
    pub low: f64,
    pub high: f64,
}

impl TryFrom<Vec<f64>> for Range {
    type Error = String;
    fn try_from(v: Vec<f64>) -> Result<Self, String> {
        match v.as_slice() {
            [a, b] if a.is_finite() && b.is_finite() && a <= b => Ok(Range { low: *a, high: *b }),
            [_, _] => Err("expected [low, high] with low ≤ high".into()),
            _ => Err(format!(
                "expected two numbers [low, high], e.g. [40, 50]; got {} values",
                v.len()
            )),
        }
    }
}

impl Range {
    pub fn contains(&self, x: f64) -> bool {
        x >= self.low && x <= self.high
    }
}

/// What the run must show. Each entry is a map with one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// The first rescale from `from` to `to` happens inside the window, at an offered rate inside the range.
    ScaleOut(ScaleOut),
    /// After the anchor, the target reaches `to` replicas within the given time.
    ScaleIn(ScaleIn),
    /// Spec replicas never exceed this.
    MaxReplicas(i32),
    /// Spec replicas never fall below this.
    MinReplicas(i32),
    /// Failed requests (non-2xx/3xx, timeouts, connection errors) over completed.
    ErrorRatio(ErrorRatio),
    /// A response-time percentile (from intended send time) over the run or a window.
    Latency(Latency),
    /// Mean QPS per ready pod over a window lies in a range.
    PodQps(PodQps),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    #[serde(default)]
    pub from: Option<i32>,
    pub to: i32,
    #[serde(default)]
    pub between: Option<Window>,
    #[serde(default)]
    pub offered_qps: Option<Range>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleIn {
    pub to: i32,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    #[serde(default)]
    pub after: Anchor,
}

/// Where a `scale_in` window starts: `load_stop` (default) or a time into
/// the run such as `20h` (for load that never stops, like a daily curve).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Anchor {
    #[default]
    LoadStop,
    At(Duration),
}

impl TryFrom<String> for Anchor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "load_stop" {
            return Ok(Anchor::LoadStop);
        }
        humantime::parse_duration(&s).map(Anchor::At).map_err(|_| {
            format!("`{s}`: expected `load_stop` or a time into the run such as `20h`")
        })
    }
}

impl From<Anchor> for String {
    fn from(a: Anchor) -> String {
        match a {
            Anchor::LoadStop => "load_stop".into(),
            Anchor::At(d) => fmt_dur(d),
        }
    }
}

impl Anchor {
    /// Experiment seconds, given when the load stopped.
    pub fn at(self, load_stop_s: f64) -> f64 {
        match self {
            Anchor::LoadStop => load_stop_s,
            Anchor::At(d) => d.as_secs_f64(),
        }
    }
    pub fn describe(self) -> String {
        match self {
            Anchor::LoadStop => "load stop".into(),
            Anchor::At(d) => fmt_dur(d),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRatio {
    pub below: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// 50, 90, 99 or 99.9.
    pub percentile: f64,
    #[serde(with = "humantime_serde")]
    pub below: Duration,
    #[serde(default)]
    pub during: Option<Window>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodQps {
    pub during: Window,
    pub between: Range,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportOptions {
    #[serde(default)]
    pub title: Option<String>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn default_max_in_flight() -> usize {
    2000
}
fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/get".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_startup() -> Duration {
    Duration::from_secs(5)
}
fn default_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_concurrency() -> usize {
    4
}
fn default_service_time() -> Duration {
    Duration::from_millis(20)
}
fn default_cpu_per_request() -> Duration {
    Duration::from_millis(2)
}
fn default_memory_base() -> u64 {
    24
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_resource_window() -> Duration {
    Duration::from_secs(30)
}
fn default_scrape() -> Duration {
    Duration::from_secs(15)
}
fn default_sync() -> Duration {
    Duration::from_secs(15)
}
fn default_tolerance() -> f64 {
    0.1
}
fn default_downscale() -> Duration {
    Duration::from_secs(300)
}
fn default_cpu_init() -> Duration {
    Duration::from_secs(300)
}
fn default_readiness_delay() -> Duration {
    Duration::from_secs(30)
}

/// `humantime` prints `1m 30s`; we want the compact `1m30s` as kubectl does.
pub fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// A scenario together with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub path: PathBuf,
    pub text: String,
}

impl Loaded {
    pub fn name(&self) -> String {
        self.scenario.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        })
    }

    /// Manifest paths resolved against the scenario's folder.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        self.scenario
            .manifests
            .iter()
            .map(|m| {
                if m.is_absolute() {
                    m.clone()
                } else {
                    base.join(m)
                }
            })
            .collect()
    }

    /// The load stages as the engine's rate curve (shared by every backend).
    pub fn rate_curve(&self) -> Result<crate::load::RateCurve, InputError> {
        if self.scenario.load.is_users() {
            // Stages count users here; read as a rate they would mean something else.
            return Err(self.err(
                "load.model",
                "the `users` model has no request-rate curve; it runs on `--backend local`",
            ));
        }
        let segments = self
            .scenario
            .load
            .pieces()
            .into_iter()
            // A zero-length stage only sets the level the next ramp starts from.
            .filter(|p| p.end > p.start)
            .map(|p| crate::load::Segment {
                start: p.start,
                end: p.end,
                from_rate: p.from,
                to_rate: p.to,
            })
            .collect();
        crate::load::RateCurve::new(segments)
            .map_err(|e| InputError::new(&self.path, e.to_string()).field("load.stages"))
    }

    /// The users model's stages as Goose test-plan steps: each piece reaches
    /// its user count linearly over its duration (a hold keeps it).
    pub fn users_plan(&self) -> Vec<crate::load::closed::PlanStep> {
        self.scenario
            .load
            .pieces()
            .into_iter()
            .map(|p| crate::load::closed::PlanStep {
                // Validation makes these whole numbers within MAX_USERS.
                users: p.to.round() as usize,
                over: Duration::from_secs_f64(p.end - p.start),
            })
            .collect()
    }

    /// The engine's spacing; Poisson draws from `seed`.
    pub fn spacing(&self, seed: u64) -> crate::load::Spacing {
        match self.scenario.load.spacing.unwrap_or_default() {
            Spacing::Uniform => crate::load::Spacing::Uniform,
            Spacing::Poisson => crate::load::Spacing::Poisson { seed },
        }
    }

    fn err(&self, field: &str, msg: impl Into<String>) -> InputError {
        InputError::new(&self.path, msg)
            .field(field)
            .at(yaml::nearest_line(&self.text, field), None)
    }
}

/// Finds a scenario: the path as given, else under `scenarios/` (with or without `.yaml`).
pub fn resolve(arg: &Path) -> Result<PathBuf, InputError> {
    if arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    let mut tried = vec![arg.to_path_buf()];
    for cand in [
        Path::new("scenarios").join(arg),
        Path::new("scenarios").join(arg).with_extension("yaml"),
    ] {
        if cand.is_file() {
            return Ok(cand);
        }
        tried.push(cand);
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(InputError::new(
        arg,
        format!("scenario file not found (looked for {})", list.join(", ")),
    ))
}

/// Reads, decodes and validates a scenario file.
pub fn load(arg: &Path) -> Result<Loaded, InputError> {
    let path = resolve(arg)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InputError::new(&path, format!("cannot read: {e}")))?;
    parse(path, text)
}

/// Decodes and validates scenario text read from `path` (manifest paths
/// resolve against it). `sweep` calls this with edited text.
pub fn parse(path: PathBuf, text: String) -> Result<Loaded, InputError> {
    let scenario: Scenario = yaml::from_str(&path, &text)?;
    let loaded = Loaded {
        scenario,
        path,
        text,
    };
    validate(&loaded)?;
    Ok(loaded)
}

fn validate(l: &Loaded) -> Result<(), InputError> {
    let s = &l.scenario;
    if s.duration.is_zero() {
        return Err(l.err("duration", "must be longer than 0s, e.g. `35m`"));
    }
    if s.sample_interval.is_zero() || s.sample_interval > s.duration {
        return Err(l.err(
            "sample_interval",
            "must be more than 0s and no longer than `duration`",
        ));
    }
    if s.manifests.is_empty() {
        return Err(l.err(
            "manifests",
            "list at least one manifest file (Deployment, Service, HPA, HTTPRoute)",
        ));
    }
    match s.load.model {
        LoadModel::Open => validate_open(l)?,
        LoadModel::Users => validate_users(l)?,
    }
    let total = s.load.total();
    if total > s.duration.as_secs_f64() + 1e-9 {
        return Err(l.err(
            "duration",
            format!(
                "is {} but the load stages last {}; make `duration` at least as long",
                fmt_dur(s.duration),
                fmt_dur(Duration::from_secs_f64(total))
            ),
        ));
    }
    if s.target.replicas.is_some_and(|n| n < 1) {
        return Err(l.err("target.replicas", "must be ≥ 1"));
    }
    let m = &s.local.pods.model;
    if m.concurrency == 0 {
        return Err(l.err("local.pods.model.concurrency", "must be at least 1"));
    }
    if m.service_time.is_zero() {
        return Err(l.err("local.pods.model.service_time", "must be more than 0s"));
    }
    if let Some(cmd) = &s.local.pods.command {
        if !cmd.contains("{port}") {
            return Err(l.err(
                "local.pods.command",
                "must contain `{port}`, where the pod's port is put",
            ));
        }
    }
    // The engine's own checks on the curve, at validation time, not mid-run
    // (the users model has stages of users, not a rate curve).
    if !s.load.is_users() {
        l.rate_curve()?;
    }
    let c = &s.local.controller;
    if c.sync_period.is_zero() {
        return Err(l.err("local.controller.sync_period", "must be more than 0s"));
    }
    if !(c.tolerance.is_finite() && c.tolerance >= 0.0) {
        return Err(l.err(
            "local.controller.tolerance",
            "must be a number ≥ 0, e.g. 0.1",
        ));
    }
    let mt = &s.local.metrics;
    for (f, d) in [
        ("local.ready_timeout", s.local.ready_timeout),
        ("kube.ready_timeout", s.kube.ready_timeout),
        ("local.metrics.window", mt.window),
        ("local.metrics.resource_window", mt.resource_window),
        ("local.metrics.scrape_interval", mt.scrape_interval),
    ] {
        if d.is_zero() {
            return Err(l.err(f, "must be more than 0s"));
        }
    }
    for (i, e) in s.expect.iter().enumerate() {
        let f = |k: &str| format!("expect[{i}].{k}");
        match e {
            Expectation::ScaleOut(so)
                if so.to < 1 || so.from.is_some_and(|f| f < 0 || f >= so.to) =>
            {
                return Err(l.err(
                    &f("scale_out"),
                    "needs `to` ≥ 1 and, when given, 0 ≤ `from` < `to`",
                ));
            }
            Expectation::ScaleIn(si) if si.to < 0 => {
                return Err(l.err(&f("scale_in.to"), "must be ≥ 0"));
            }
            Expectation::MaxReplicas(n) | Expectation::MinReplicas(n) if *n < 0 => {
                return Err(l.err(&format!("expect[{i}]"), "replica bounds must be ≥ 0"));
            }
            Expectation::ErrorRatio(r) if !(0.0..=1.0).contains(&r.below) => {
                return Err(l.err(&f("error_ratio.below"), "must be between 0 and 1"));
            }
            Expectation::Latency(lat) if !(lat.percentile > 0.0 && lat.percentile <= 100.0) => {
                return Err(l.err(
                    &f("latency.percentile"),
                    "must be in (0, 100], e.g. 99 or 99.9",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The open model: a rate schedule and one request; no journey.
fn validate_open(l: &Loaded) -> Result<(), InputError> {
    let load = &l.scenario.load;
    for (field, written) in [
        ("load.journey", !load.journey.is_empty()),
        ("load.think_time", load.think_time.is_some()),
    ] {
        if written {
            return Err(l.err(
                field,
                "only with `model: users` (the closed model); the open model sends `load.request` on the stages' schedule",
            ));
        }
    }
    if load.stages.is_empty() {
        return Err(l.err(
            "load.stages",
            "list at least one stage: {ramp_to: R, over: D}, {hold: D} or {rate: R, for: D}",
        ));
    }
    if load.max_in_flight() == 0 {
        return Err(l.err("load.max_in_flight", "must be at least 1"));
    }
    if load.connections == Some(0) {
        return Err(l.err(
            "load.connections",
            "must be at least 1 (leave it out to allow one per request in flight)",
        ));
    }
    let req = load.request();
    if req.timeout.is_zero() {
        return Err(l.err("load.request.timeout", "must be more than 0s"));
    }
    if !req.path.starts_with('/') {
        return Err(l.err("load.request.path", "must start with `/`, e.g. `/get`"));
    }
    if hyper::Method::from_bytes(req.method.as_bytes()).is_err() {
        return Err(l.err(
            "load.request.method",
            format!(
                "`{}` is not an HTTP method (GET, POST, PUT, ...)",
                req.method
            ),
        ));
    }
    Ok(())
}

/// The closed model: stages in whole users, a journey, no open-model fields.
fn validate_users(l: &Loaded) -> Result<(), InputError> {
    let load = &l.scenario.load;
    for (field, written, why) in [
        (
            "load.request",
            load.request.is_some(),
            "each `load.journey` step carries its own method, path, headers, body and timeout",
        ),
        (
            "load.spacing",
            load.spacing.is_some(),
            "a user sends when its previous response and its think time are over",
        ),
        (
            "load.max_in_flight",
            load.max_in_flight.is_some(),
            "each user has at most one request in flight, so the user count is the cap",
        ),
        (
            "load.connections",
            load.connections.is_some(),
            "each user keeps its own connection",
        ),
    ] {
        if written {
            return Err(l.err(
                field,
                format!("only for `model: open`; with `model: users` {why}"),
            ));
        }
    }
    const SHAPES: &str = "{ramp_to: N, over: D} (N users; `over: 0s` jumps) or {hold: D}";
    if load.stages.is_empty() {
        return Err(l.err(
            "load.stages",
            format!("list at least one stage, in users: {SHAPES}"),
        ));
    }
    for (i, stage) in load.stages.iter().enumerate() {
        match stage {
            Stage::Step { .. } => {
                return Err(l.err(
                    &format!("load.stages[{i}]"),
                    format!(
                        "with `model: users` a stage is {SHAPES}; `rate` is for the open model"
                    ),
                ));
            }
            Stage::Ramp { to, .. } if to.0.fract() != 0.0 || to.0 > MAX_USERS => {
                return Err(l.err(
                    &format!("load.stages[{i}].ramp_to"),
                    format!(
                        "counts users with `model: users`: a whole number from 0 to {MAX_USERS}, got {}",
                        to.0
                    ),
                ));
            }
            _ => {}
        }
    }
    if load.load_stop() == 0.0 {
        return Err(l.err(
            "load.stages",
            "no stage starts a user; ramp to at least 1, e.g. {ramp_to: 10, over: 1m}",
        ));
    }
    if load.journey.is_empty() {
        return Err(l.err(
            "load.journey",
            "required with `model: users`: the steps each user repeats, e.g. `- { name: home, path: /get }`",
        ));
    }
    for (i, step) in load.journey.iter().enumerate() {
        let f = |k: &str| format!("load.journey[{i}].{k}");
        if !step.path.starts_with('/') {
            return Err(l.err(&f("path"), "must start with `/`, e.g. `/get`"));
        }
        if !JOURNEY_METHODS.contains(&step.method.as_str()) {
            return Err(l.err(
                &f("method"),
                format!(
                    "`{}` is not one of {}",
                    step.method,
                    JOURNEY_METHODS.join(", ")
                ),
            ));
        }
        if step.timeout.is_zero() {
            return Err(l.err(&f("timeout"), "must be more than 0s"));
        }
        for (name, value) in &step.headers {
            let bad = hyper::header::HeaderName::from_bytes(name.as_bytes())
                .err()
                .map(|e| format!("`{name}` is not a header name: {e}"))
                .or_else(|| {
                    hyper::header::HeaderValue::from_str(value)
                        .err()
                        .map(|e| format!("`{name}: {value}` is not a header value: {e}"))
                });
            if let Some(msg) = bad {
                return Err(l.err(&f("headers"), msg));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, InputError> {
        let path = PathBuf::from("t.yaml");
        let scenario: Scenario = yaml::from_str(&path, text)?;
        let l = Loaded {
            scenario,
            path,
            text: text.into(),
        };
        validate(&l)?;
        Ok(l)
    }

    const BASE: &str = "\
duration: 10m
manifests: [a.yaml]
target: { route: httpbin }
load:
  stages:
    - ramp_to: 10
      over: 1m
    - hold: 1m
    - rate: 0
      for: 1m
";

    #[test]
    fn pieces_and_load_stop() {
        let l = parse(BASE).unwrap();
        let p = l.scenario.load.pieces();
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].from, p[0].to), (0.0, 10.0));
        assert_eq!((p[1].start, p[1].end, p[1].from), (60.0, 120.0, 10.0));
        assert_eq!(l.scenario.load.load_stop(), 120.0);
        assert_eq!(l.scenario.load.rate_at(30.0).0, 5.0);
        assert_eq!(l.scenario.load.rate_at(150.0).0, 0.0);
    }

    #[test]
    fn negative_rate_names_field_and_line() {
        let e = parse(&BASE.replace("ramp_to: 10", "ramp_to: -5")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("load.stages[0].ramp_to"));
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("≥ 0"), "{}", e.message);
    }

    #[test]
    fn http_version_is_optional_and_accepts_quoted_or_bare() {
        let with =
            |v: &str| BASE.replace("load:\n", &format!("load:\n  request: {{ http: {v} }}\n"));
        assert_eq!(
            parse(BASE).unwrap().scenario.load.request().http,
            HttpVersion::Http1
        );
        for (v, want) in [
            ("\"2\"", HttpVersion::Http2),
            ("2", HttpVersion::Http2),
            ("\"1.1\"", HttpVersion::Http1),
            ("1.1", HttpVersion::Http1),
        ] {
            assert_eq!(
                parse(&with(v)).unwrap().scenario.load.request().http,
                want,
                "{v}"
            );
        }
        let e = parse(&with("\"3\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("load.request.http"));
        assert!(e.message.contains("expected \"1.1\" or \"2\""), "{e}");
    }

    #[test]
    fn stage_with_missing_key_is_explained() {
        let e = parse(&BASE.replace("      over: 1m\n", "")).unwrap_err();
        assert!(e.message.contains("`ramp_to` needs `over`"), "{e}");
    }

    const USERS: &str = "\
duration: 10m
manifests: [a.yaml]
target: { route: httpbin }
load:
  model: users
  think_time: 1s..3s
  journey:
    - name: home
      path: /get
    - method: POST
      path: /anything/cart
      headers: { content-type: application/json }
      body: '{}'
      timeout: 5s
  stages:
    - ramp_to: 20
      over: 2m
    - hold: 3m
    - ramp_to: 0
      over: 30s
    - hold: 1m
";

    /// The error for `text`, which must fail validation.
    fn error(text: &str) -> InputError {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn users_model_reads_journey_think_time_and_user_stages() {
        let l = parse(USERS).unwrap();
        let load = &l.scenario.load;
        assert!(load.is_users());
        assert_eq!(
            load.think_time,
            Some(ThinkTime {
                min: Duration::from_secs(1),
                max: Duration::from_secs(3)
            })
        );
        assert_eq!(load.journey.len(), 2);
        assert_eq!(load.journey[0].label(), "home");
        assert_eq!(load.journey[1].label(), "POST /anything/cart");
        assert_eq!(load.journey[1].method, "POST");
        // Defaults: GET and 10 s; the longest step bounds the gateway timeout.
        assert_eq!(load.journey[0].method, "GET");
        assert_eq!(load.journey[0].timeout, Duration::from_secs(10));
        assert_eq!(load.timeout(), Duration::from_secs(10));
        // Load stops when the last user has left, not when the stages end.
        assert_eq!(load.load_stop(), 330.0);
        assert_eq!(
            load.rate_at(60.0),
            (10.0, "ramp_to 20 users over 2m".into())
        );
        let plan = l.users_plan();
        assert_eq!(
            plan.iter()
                .map(|p| (p.users, p.over.as_secs()))
                .collect::<Vec<_>>(),
            vec![(20, 120), (20, 180), (0, 30), (0, 60)]
        );
        // A users scenario has no rate curve to hand to the open engine or the sim.
        assert_eq!(
            l.rate_curve().unwrap_err().field.as_deref(),
            Some("load.model")
        );
    }

    #[test]
    fn think_time_is_a_duration_or_a_range() {
        let fixed = parse(&USERS.replace("1s..3s", "2s")).unwrap();
        let t = fixed.scenario.load.think_time.unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
        assert_eq!(String::from(t), "2s");
        let e = error(&USERS.replace("1s..3s", "3s..1s"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("start is above its end"), "{e}");
        let e = error(&USERS.replace("1s..3s", "soon"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("`soon`"), "{e}");
    }

    #[test]
    fn open_model_fields_are_rejected_with_users_and_named() {
        for (field, insert) in [
            ("load.request", "  request: { path: /get }\n"),
            ("load.spacing", "  spacing: poisson\n"),
            ("load.max_in_flight", "  max_in_flight: 10\n"),
            ("load.connections", "  connections: 4\n"),
        ] {
            let e = error(&USERS.replace("  model: users\n", &format!("  model: users\n{insert}")));
            assert_eq!(e.field.as_deref(), Some(field));
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.message.contains("only for `model: open`"), "{e}");
        }
    }

    #[test]
    fn users_fields_are_rejected_with_the_open_model() {
        let e = error(&BASE.replace("load:\n", "load:\n  think_time: 1s\n"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("only with `model: users`"), "{e}");
        let e = error(&BASE.replace("load:\n", "load:\n  journey: [{ path: /get }]\n"));
        assert_eq!(e.field.as_deref(), Some("load.journey"));
    }

    #[test]
    fn users_stages_count_whole_users() {
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 2.5"));
        assert_eq!(e.field.as_deref(), Some("load.stages[0].ramp_to"));
        assert_eq!(e.line, Some(16));
        assert!(e.message.contains("whole number"), "{e}");
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 20000"));
        assert!(e.message.contains("10000"), "{e}");
        let e = error(&USERS.replace("    - hold: 3m\n", "    - rate: 5\n      for: 3m\n"));
        assert_eq!(e.field.as_deref(), Some("load.stages[1]"));
        assert!(e.message.contains("`rate` is for the open model"), "{e}");
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 0"));
        assert_eq!(e.field.as_deref(), Some("load.stages"));
        assert!(e.message.contains("no stage starts a user"), "{e}");
    }

    #[test]
    fn journey_is_required_and_its_steps_checked() {
        let no_journey = USERS.replace(
            &USERS[USERS.find("  journey:").unwrap()..USERS.find("  stages:").unwrap()],
            "",
        );
        let e = error(&no_journey);
        assert_eq!(e.field.as_deref(), Some("load.journey"));
        assert!(e.message.contains("required with `model: users`"), "{e}");
        for (from, to, field, says) in [
            (
                "path: /get",
                "path: get",
                "load.journey[0].path",
                "must start with `/`",
            ),
            (
                "method: POST",
                "method: OPTIONS",
                "load.journey[1].method",
                "GET, HEAD",
            ),
            (
                "timeout: 5s",
                "timeout: 0s",
                "load.journey[1].timeout",
                "more than 0s",
            ),
            (
                "content-type: application/json",
                "\"content type\": x",
                "load.journey[1].headers",
                "not a header name",
            ),
        ] {
            let e = error(&USERS.replace(from, to));
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        let e = error(&USERS.replace("      path: /get\n", ""));
        assert_eq!(e.field.as_deref(), Some("load.journey[0]"));
        assert!(e.message.contains("missing field `path`"), "{e}");
    }
}
