//! The run record: one `Sample` per experiment-second in `timeline.jsonl`, every
//! event in `events.jsonl`. Both are written as they happen and flushed each
//! line, so a crash loses at most the sample being built and `report RUN_DIR`
//! can re-render any run from these two files alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Requests by outcome. Transport failures are kept apart from HTTP statuses
/// because they mean different things (the server answered vs. it could not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub timeout: u64,
    pub connect_error: u64,
    pub other: u64,
}

impl StatusCounts {
    pub fn total(&self) -> u64 {
        self.s2xx
            + self.s3xx
            + self.s4xx
            + self.s5xx
            + self.timeout
            + self.connect_error
            + self.other
    }
    /// Everything that is not a 2xx or 3xx answer counts as an error.
    pub fn errors(&self) -> u64 {
        self.s4xx + self.s5xx + self.timeout + self.connect_error + self.other
    }
    pub fn add(&mut self, o: &StatusCounts) {
        self.s2xx += o.s2xx;
        self.s3xx += o.s3xx;
        self.s4xx += o.s4xx;
        self.s5xx += o.s5xx;
        self.timeout += o.timeout;
        self.connect_error += o.connect_error;
        self.other += o.other;
    }
}

/// Latency percentiles in milliseconds of experiment time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One pod as seen during a sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSample {
    pub name: String,
    /// Pending, Running, Terminating.
    pub phase: String,
    /// The Ready condition. A terminating pod keeps it while it drains, and
    /// the HPA still counts it ready (Value and AverageValue targets).
    pub ready: bool,
    /// Deleted and draining; the Service no longer sends to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminating: bool,
    /// Requests per experiment-second the gateway sent to this pod in the sample.
    pub qps: f64,
    /// CPU usage in millicores over the sample.
    pub cpu_millicores: f64,
    /// CPU usage as percent of the pod's CPU request (None without a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_utilization: Option<f64>,
    #[serde(default)]
    pub memory_bytes: u64,
    #[serde(default)]
    pub in_flight: u64,
    /// Times its container was restarted after exiting (restartCount).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicas {
    /// The scale target's spec.replicas.
    pub spec: i32,
    /// Pods that exist and are not terminating (status.replicas).
    pub current: i32,
    pub ready: i32,
    /// The HPA's status.desiredReplicas.
    pub desired: i32,
}

/// One HPA metric as the controller last read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// The upstream metric name, e.g. `cpu resource utilization (percentage of request)`.
    pub name: String,
    pub current: f64,
    pub target: f64,
    /// `%` for utilization, empty for plain quantities.
    #[serde(default)]
    pub unit: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionSample {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HpaSample {
    pub name: String,
    pub metrics: Vec<MetricSample>,
    #[serde(default)]
    pub conditions: Vec<ConditionSample>,
    /// spec.minReplicas and spec.maxReplicas at the sample, when a schedule
    /// (a CronHorizontalPodAutoscaler) may move them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

/// A workload other than the scale target during one sample: the gateway's
/// instances when the scenario's HPA scales the backend, or the backend
/// behind a gateway tier that is the scale target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierSample {
    pub deployment: String,
    /// `gateway` or `backend`.
    pub role: String,
    pub replicas: Replicas,
    pub pods: Vec<PodSample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSample>,
}

/// A workload of the embedded cluster, as `run.json` names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierMeta {
    pub deployment: String,
    /// `gateway` or `backend`.
    pub role: String,
    /// The scenario's HPA scales it: the samples' main fields are its own.
    pub target: bool,
    /// One pod's CPU limit and request, where the pod template sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_millicores: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_millicores: Option<f64>,
    /// The HPA that scales it and its bounds, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

/// One line of timeline.jsonl: what happened during `(t - interval, t]`.
/// Counts are per sample; with the default 1 s interval they read as rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// End of the sample interval, experiment seconds since the start.
    pub t: f64,
    /// Name of the load stage active at `t` (e.g. `ramp_to 110 over 27m`).
    pub stage: String,
    /// Offered load: the scenario's intended rate at `t`, requests per experiment-second.
    pub offered_qps: f64,
    /// Requests due in the interval.
    pub intended: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Requests completed (any outcome) in the interval; `completed / interval` is achieved QPS.
    pub completed: u64,
    /// Requests not sent because the in-flight cap was reached.
    pub dropped: u64,
    /// Requests sent more than 1 ms (real time) after their intended time.
    #[serde(default)]
    pub late: u64,
    pub status: StatusCounts,
    /// Response time measured from each request's intended send time.
    pub latency_ms: Percentiles,
    /// Service time measured from the actual send.
    pub service_ms: Percentiles,
    /// Time to first byte (response headers) from the actual send. Absent in
    /// older runs, on the sim backend and in samples without responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<Percentiles>,
    /// How late each request was sent after its intended time (0 when on
    /// time), over all requests sent in the sample: when the load generator
    /// fell behind, and by how much. Absent where `ttfb_ms` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lateness_ms: Option<Percentiles>,
    /// The sample's response-time histogram (microseconds of experiment time,
    /// HdrHistogram V2 deflate, base64), so any window's percentiles can be
    /// computed exactly later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hdr: Option<String>,
    /// Closed model (`load.model: users`): users running at `t`. Absent for
    /// the open model, whose load is `offered_qps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    pub replicas: Replicas,
    pub pods: Vec<PodSample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSample>,
    /// The cluster's other workloads (a gateway tier and the backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierSample>,
}

impl Sample {
    /// Sum of the QPS the ready pods served: the per-pod view of achieved load.
    pub fn pods_qps(&self) -> f64 {
        self.pods.iter().map(|p| p.qps).sum()
    }
}

/// Encodes a histogram for `Sample::latency_hdr`.
pub fn encode_hist(h: &hdrhistogram::Histogram<u64>) -> Option<String> {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Decodes `Sample::latency_hdr`; `None` if it is damaged.
pub fn decode_hist(s: &str) -> Option<hdrhistogram::Histogram<u64>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}

/// One line of events.jsonl, shaped like a Kubernetes Event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Experiment seconds since the start.
    pub t: f64,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    /// `HorizontalPodAutoscaler/httpbin`, `Deployment/httpbin`, `Pod/httpbin-x`, `Harness/run`.
    pub object: String,
    /// The component that emitted it, e.g. `horizontal-pod-autoscaler`.
    pub source: String,
    pub message: String,
    /// For SuccessfulRescale: the size before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_replicas: Option<i32>,
    /// Offered load (scenario rate) at the moment of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_qps: Option<f64>,
    /// A real cluster's own timestamp of the event (RFC 3339), as
    /// `kubectl get events` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_time: Option<String>,
}

impl Event {
    pub fn is_rescale(&self) -> bool {
        self.reason == "SuccessfulRescale"
    }
}

/// A message on one line, runs of whitespace (newlines too) as one space:
/// API servers and errors may span lines, event messages do not.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Facts about a run that are not per-sample, written to `run.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub scenario_name: String,
    /// Path of the scenario file as given.
    pub scenario_path: String,
    /// The scenario file's text, verbatim.
    pub scenario_text: String,
    pub backend: String,
    pub speed: f64,
    pub seed: u64,
    /// Wall-clock instant of experiment t = 0 (the scale target ready), RFC
    /// 3339 UTC; for a run that never got ready, the start of the wait.
    pub started_at: String,
    /// Planned experiment duration, seconds.
    pub duration_s: f64,
    /// When the load stops (last instant of non-zero offered rate), experiment seconds.
    pub load_stop_s: f64,
    /// Sample interval, experiment seconds.
    pub interval_s: f64,
    /// The HPA being watched (`namespace/name`) and its bounds, for the report.
    pub hpa_name: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// True when the run ended early (Ctrl-C, infrastructure failure).
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub ended_at_s: f64,
    /// Written false when the run starts and true when its record is
    /// complete: false on disk means the harness was killed mid-run.
    /// Records from before this field were complete.
    #[serde(default = "yes")]
    pub finished: bool,
    /// Requests still in flight when the final wait for them ended
    /// unfinished (a signal cut it, or they outlived their timeout by a
    /// second): sent, and in no sample of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecorded_in_flight: Option<u64>,
    /// Why per-pod request rates were not observed (a real cluster
    /// without Prometheus); the pods' `qps` are then not measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_qps_unobservable: Option<String>,
    /// The cluster's workloads, when it runs more than the scale target
    /// (a gateway tier in front of the backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierMeta>,
    /// The CronHorizontalPodAutoscaler of the run, when the manifests hold one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleMeta>,
    /// The Lua policy that scales the target in place of an HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyMeta>,
    /// harness version, host, etc.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A run's schedule: the object's jobs, who ran them, and the wall-clock
/// instant its experiment t = 0 was on the schedule's clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleMeta {
    /// `CronHorizontalPodAutoscaler/name`.
    pub object: String,
    /// `Deployment/name` or `HorizontalPodAutoscaler/name`.
    pub target: String,
    /// `harness`, `cluster` or `off`.
    pub controller: String,
    /// Experiment t = 0 on the schedule's clock (RFC 9557, with its zone).
    pub clock_start: String,
    pub jobs: Vec<ScheduleJob>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_dates: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleJob {
    pub name: String,
    pub schedule: String,
    pub target_size: i32,
    #[serde(default)]
    pub run_once: bool,
    /// When it fires within the run (experiment seconds), where the
    /// harness knows in advance (every backend but a cluster's controller).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fires_at: Vec<f64>,
}

/// A run's Lua policy (`target.autoscaler`): the script as the scenario
/// names it, its text (the record stands alone, as with the scenario's),
/// and its bounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyMeta {
    pub script: String,
    pub source: String,
    pub interval_s: f64,
    pub min: i32,
    pub max: i32,
    /// `Deployment/name`: what it scales.
    pub target: String,
}

/// The source of the events a CronHorizontalPodAutoscaler's jobs post.
pub const CRON_SOURCE: &str = "CronHorizontalPodAutoscaler";

impl Event {
    /// A CronHorizontalPodAutoscaler job's firing (`Succeed` or `Failed`).
    pub fn is_firing(&self) -> bool {
        self.source == CRON_SOURCE && (self.reason == "Succeed" || self.reason == "Failed")
    }
}

fn yes() -> bool {
    true
}

/// Everything recorded about one run.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    pub meta: RunMeta,
    pub samples: Vec<Sample>,
    pub events: Vec<Event>,
}

impl RunData {
    /// A rescale of the HPA the run watches: with a gateway tier, two HPAs
    /// may rescale, and the checks and Fig. 7 are about the scale target's.
    pub fn is_target_rescale(&self, e: &Event) -> bool {
        let target = self.meta.hpa_name.rsplit('/').next().unwrap_or_default();
        e.is_rescale()
            && e.object
                .strip_prefix("HorizontalPodAutoscaler/")
                .is_none_or(|name| name == target)
    }
}

pub const TIMELINE: &str = "timeline.jsonl";
pub const EVENTS: &str = "events.jsonl";
pub const RUN_META: &str = "run.json";

/// Streams samples and events to the run directory, one flushed line each.
pub struct Recorder {
    dir: PathBuf,
    timeline: BufWriter<File>,
    events: BufWriter<File>,
    data: RunData,
}

impl Recorder {
    pub fn create(dir: &Path, mut meta: RunMeta) -> Result<Self> {
        meta.finished = false;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create run directory {}", dir.display()))?;
        let open = |name: &str| -> Result<BufWriter<File>> {
            let p = dir.join(name);
            Ok(BufWriter::new(File::create(&p).with_context(|| {
                format!("cannot create {}", p.display())
            })?))
        };
        let rec = Self {
            dir: dir.to_path_buf(),
            timeline: open(TIMELINE)?,
            events: open(EVENTS)?,
            data: RunData {
                meta,
                ..Default::default()
            },
        };
        rec.write_meta()?;
        Ok(rec)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data(&self) -> &RunData {
        &self.data
    }

    pub fn meta_mut(&mut self) -> &mut RunMeta {
        &mut self.data.meta
    }

    pub fn write_meta(&self) -> Result<()> {
        let p = self.dir.join(RUN_META);
        let text = serde_json::to_string_pretty(&self.data.meta)?;
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    }

    pub fn sample(&mut self, s: Sample) -> Result<()> {
        write_line(&mut self.timeline, &s)?;
        self.data.samples.push(s);
        Ok(())
    }

    pub fn event(&mut self, e: Event) -> Result<()> {
        write_line(&mut self.events, &e)?;
        self.data.events.push(e);
        Ok(())
    }

    pub fn finish(mut self) -> Result<RunData> {
        self.timeline.flush()?;
        self.events.flush()?;
        self.data.meta.finished = true;
        self.write_meta()?;
        Ok(self.data)
    }
}

fn write_line<T: Serialize>(w: &mut BufWriter<File>, v: &T) -> Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// Reads a run directory back. A torn last line (the process died mid-write)
/// is skipped rather than failing the whole run.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let meta_path = dir.join(RUN_META);
    let meta: RunMeta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .with_context(|| format!("cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid run record", meta_path.display()))?;
    Ok(RunData {
        meta,
        samples: read_jsonl(&dir.join(TIMELINE))?,
        events: read_jsonl(&dir.join(EVENTS))?,
    })
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f).lines().collect::<Result<_, _>>()?;
    let n = lines.len();
    let mut out = Vec::with_capacity(n);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i + 1 == n => break,
            Err(e) => anyhow::bail!("{}:{}: {}", path.display(), i + 1, e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_written_before_ttfb_and_lateness_existed() {
        let old = r#"{"t":1.0,"stage":"hold","offered_qps":5.0,"intended":5,"sent":5,
            "completed":5,"dropped":0,"late":0,"status":{"2xx":5,"3xx":0,"4xx":0,"5xx":0,
            "timeout":0,"connect_error":0,"other":0},
            "latency_ms":{"p50":1.0,"p90":1.0,"p99":1.0,"p999":1.0,"max":1.0},
            "service_ms":{"p50":1.0,"p90":1.0,"p99":1.0,"p999":1.0,"max":1.0},
            "replicas":{"spec":1,"current":1,"ready":1,"desired":1},"pods":[]}"#;
        let s: Sample = serde_json::from_str(old).unwrap();
        assert_eq!((s.ttfb_ms, s.send_lateness_ms), (None, None));
        // And a sample without them writes neither key.
        let line = serde_json::to_string(&s).unwrap();
        assert!(!line.contains("ttfb_ms") && !line.contains("send_lateness_ms"));
    }

    #[test]
    fn round_trips_and_tolerates_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), RunMeta::default()).unwrap();
        rec.sample(Sample {
            t: 1.0,
            completed: 5,
            ..Default::default()
        })
        .unwrap();
        rec.event(Event {
            t: 1.0,
            reason: "SuccessfulRescale".into(),
            ..Default::default()
        })
        .unwrap();
        let data = rec.finish().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(TIMELINE))
            .unwrap()
            .write_all(b"{\"t\": 2.0, \"sta")
            .unwrap();
        let back = load_run(dir.path()).unwrap();
        assert_eq!(back.samples, data.samples);
        assert_eq!(back.events, data.events);
    }
}
