//! The scenario file's schema: the serde types, their defaults and the
//! small conversions on them. Unknown fields are rejected everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fmt_dur;

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
    /// Where experiment time sits on the wall clock, for schedules.
    #[serde(default)]
    pub clock: Clock,
    /// Who runs the CronHorizontalPodAutoscaler the manifests hold.
    #[serde(default)]
    pub schedule: ScheduleOptions,
}

/// `clock.start`: the wall-clock instant of experiment t = 0, with its time
/// zone (`2026-12-01T08:55:00Z`, `2026-12-01T08:55:00+08:00`, or
/// `2026-12-01T08:55:00+08:00[Asia/Shanghai]`). Cron schedules are read in
/// that zone. Without it, t = 0 is the moment the run starts, in UTC.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ClockStart>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockStart(pub jiff::Zoned);

impl TryFrom<String> for ClockStart {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = |why: String| {
            format!(
                "`{s}`: {why}; expected an instant with its zone, e.g. `2026-12-01T08:55:00Z`, \
                 `2026-12-01T08:55:00+08:00` or `2026-12-01T08:55:00+08:00[Asia/Shanghai]`"
            )
        };
        if s.contains('[') {
            return s
                .parse::<jiff::Zoned>()
                .map(ClockStart)
                .map_err(|e| bad(e.to_string()));
        }
        let pieces =
            jiff::fmt::temporal::Pieces::parse(s.as_str()).map_err(|e| bad(e.to_string()))?;
        let offset = match pieces.offset() {
            Some(jiff::fmt::temporal::PiecesOffset::Zulu) => jiff::tz::Offset::UTC,
            Some(jiff::fmt::temporal::PiecesOffset::Numeric(n)) => n.offset(),
            _ => return Err(bad("it has no time zone (add `Z` or an offset)".into())),
        };
        let ts: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
        Ok(ClockStart(ts.to_zoned(jiff::tz::TimeZone::fixed(offset))))
    }
}

impl From<ClockStart> for String {
    fn from(c: ClockStart) -> String {
        c.to_string()
    }
}

impl std::fmt::Display for ClockStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A fixed offset prints without a bracketed zone name.
        if self.0.time_zone().iana_name().is_some() {
            write!(f, "{}", self.0)
        } else {
            write!(
                f,
                "{}",
                self.0.timestamp().display_with_offset(self.0.offset())
            )
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOptions {
    #[serde(default)]
    pub controller: ScheduleController,
}

/// Who acts on the CronHorizontalPodAutoscaler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleController {
    /// The harness runs the controller's rules itself (the embedded
    /// backends always do; on kube it patches the HPA and the scale
    /// subresource and posts the Events).
    #[default]
    Harness,
    /// kube only: kubernetes-cronhpa-controller in the cluster runs it; the
    /// harness applies the object and records its status.
    Cluster,
    /// The object is left out: the metric-only baseline of the same run.
    Off,
}

impl ScheduleController {
    pub fn name(self) -> &'static str {
        match self {
            ScheduleController::Harness => "harness",
            ScheduleController::Cluster => "cluster",
            ScheduleController::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The HTTPRoute that load goes through (metadata.name).
    pub route: String,
    /// The HPA to watch (metadata.name); may be omitted when the manifests
    /// hold one HPA. `NAMESPACE/NAME` names an HPA that is in the cluster
    /// rather than among the manifests (one Envoy Gateway creates for its
    /// proxies); only `--backend kube` accepts that.
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
    /// A Lua policy scales the target instead of an HPA (seed 003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<LuaAutoscaler>,
}

/// `autoscaler: { lua: policies/cpu.lua, interval: 15s, min: 1, max: 10 }`:
/// the script (relative to the scenario file), how often it runs, and the
/// bounds its decisions are clamped to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LuaAutoscaler {
    pub lua: String,
    /// How often the script runs (default 15s, the HPA's sync period); a
    /// whole multiple of `local.controller.sync_period`.
    #[serde(default = "fifteen_seconds", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "one")]
    pub min: i32,
    pub max: i32,
    /// The Deployment it scales; by default the one behind the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}

fn one() -> i32 {
    1
}

/// `lua: checks/no_flap.lua`, or `lua: { script: checks/no_flap.lua,
/// params: { minutes: 5 } }`: a check written in Lua over the recorded run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LuaCheck {
    Script(String),
    WithParams {
        script: String,
        #[serde(default)]
        params: serde_json::Map<String, serde_json::Value>,
    },
}

impl LuaCheck {
    pub fn script(&self) -> &str {
        match self {
            LuaCheck::Script(s) | LuaCheck::WithParams { script: s, .. } => s,
        }
    }
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            LuaCheck::Script(_) => Default::default(),
            LuaCheck::WithParams { params, .. } => params.clone(),
        }
    }
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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kube {
    /// How long the Deployment may take to be Available and the HPA to
    /// report ScalingActive=True before the run fails (exit 3).
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
    /// Where per-pod request rates come from on a real cluster.
    #[serde(default)]
    pub prometheus: Prometheus,
}

impl Default for Kube {
    fn default() -> Self {
        Kube {
            ready_timeout: default_ready_timeout(),
            prometheus: Prometheus::default(),
        }
    }
}

/// The cluster's Prometheus, asked through the API server's service proxy
/// for each pod's request rate. The defaults are the kind setup's
/// (manifests/kind): its recording rules of Envoy's per-endpoint counters
/// (pods behind the gateway) and of its downstream counters (the gateway's
/// own proxy pods, when they are the scale target).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// `namespace/service[:port]`.
    #[serde(default = "default_prometheus_service")]
    pub service: String,
    /// PromQL giving one series per pod, labelled `pod`; `$namespace` is the
    /// watched pods' namespace: the run's, or that of an HPA in the cluster
    /// (`target.hpa: NAMESPACE/NAME`).
    #[serde(default = "default_prometheus_query")]
    pub query: String,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            service: default_prometheus_service(),
            query: default_prometheus_query(),
        }
    }
}

impl Prometheus {
    /// (namespace, service, port) of `service`; validation made sure the
    /// namespace and the name are there.
    pub fn parts(&self) -> (&str, &str, Option<&str>) {
        let (ns, rest) = self.service.split_once('/').unwrap_or(("", &self.service));
        match rest.split_once(':') {
            Some((name, port)) => (ns, name, Some(port)),
            None => (ns, rest, None),
        }
    }
}

fn default_prometheus_service() -> String {
    "monitoring/prometheus-server:80".into()
}

fn default_prometheus_query() -> String {
    // A pod is either behind the gateway or one of its proxies, so the two
    // series never overlap and their union serves both kinds of target.
    r#"sum by (pod) (pod:envoy_endpoint_rq:rate1m{namespace="$namespace"} or pod:envoy_downstream_rq:rate1m{namespace="$namespace"})"#.into()
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Local {
    #[serde(default)]
    pub pods: Pods,
    /// How the embedded cluster runs the gateway's instances, when the
    /// manifests declare a gateway Deployment.
    #[serde(default)]
    pub gateway: GatewayInstances,
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
            gateway: GatewayInstances::default(),
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

/// How the embedded cluster runs a gateway instance: a real proxy whose
/// capacity is its CPU. Each request costs `cpu_per_request` of CPU on one
/// of `concurrency` workers (the paper's Node.js gateway: one event loop);
/// a CPU limit below `concurrency` cores slows every worker as the kernel's
/// CFS quota would (docs/scenario.md, the gateway tier).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayInstances {
    #[serde(default)]
    pub model: GatewayModel,
    /// Time from creation until the instance is started and probed.
    #[serde(default = "default_startup", with = "humantime_serde")]
    pub startup_delay: Duration,
}

impl Default for GatewayInstances {
    fn default() -> Self {
        Self {
            model: GatewayModel::default(),
            startup_delay: default_startup(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayModel {
    /// Workers that process requests at once (1: an event loop).
    #[serde(default = "default_gateway_concurrency")]
    pub concurrency: usize,
    /// CPU one proxied request costs the instance.
    #[serde(default = "default_cpu_per_request", with = "humantime_serde")]
    pub cpu_per_request: Duration,
    #[serde(default = "default_memory_base")]
    pub memory_base_mib: u64,
}

impl Default for GatewayModel {
    fn default() -> Self {
        Self {
            concurrency: default_gateway_concurrency(),
            cpu_per_request: default_cpu_per_request(),
            memory_base_mib: default_memory_base(),
        }
    }
}

fn default_gateway_concurrency() -> usize {
    1
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
    /// The scale target's spec.replicas at an instant or over a window.
    Replicas(ReplicasAt),
    /// The watched HPA's minReplicas and maxReplicas at an instant (a
    /// schedule moves them).
    HpaRange(HpaRangeAt),
    /// A check written in Lua over the recorded run.
    Lua(LuaCheck),
}

/// `replicas: { at: 5m30s, is: 5 }` or `{ during: [16m, 20m], min: 7, max: 7 }`:
/// exactly one of `at` (the first sample at or after it) and `during`, and
/// `is` or one or both of `min` and `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicasAt {
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

impl ReplicasAt {
    /// The allowed range, from `is` or `min`/`max`.
    pub fn bounds(&self) -> (i32, i32) {
        match self.is {
            Some(n) => (n, n),
            None => (self.min.unwrap_or(0), self.max.unwrap_or(i32::MAX)),
        }
    }
}

/// `hpa_range: { at: 15m30s, min: 7, max: 10 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaRangeAt {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub min: i32,
    pub max: i32,
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
