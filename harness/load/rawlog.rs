//! `--raw-log FILE`: one CSV row per request (sent or dropped), for analysis
//! the histograms cannot answer. Rows go through a bounded channel to a
//! writer thread, so the request path never touches the file and memory
//! stays bounded however long the run: when the writer falls behind, rows are
//! lost and counted instead of queueing without limit or delaying requests.
//!
//! Rows are in completion order. Times are experiment seconds since the
//! engine's t0 and durations experiment microseconds (real × speed, like the
//! timeline), so at speed 1 both are plain real time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::stats::{Completion, Outcome};

/// Rows buffered between the request tasks and the writer (~80 bytes each).
const CHANNEL_ROWS: usize = 65_536;

/// One CSV row. Field order is the column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Row {
    /// Intended send time.
    intended_s: f64,
    /// Actual send: the request got a connection (or, when it never got one,
    /// its task started); empty when dropped.
    sent_s: Option<f64>,
    /// Completion (response read, error or timeout); empty when dropped.
    done_s: Option<f64>,
    /// HTTP status; empty when no complete response arrived.
    status: Option<u16>,
    /// Completion - intended (or the task start, for one started up to the
    /// 1 ms batch window early): the response time.
    latency_us: Option<u64>,
    /// Completion - sent: the service time.
    service_us: Option<u64>,
    /// Response headers - sent; empty when no headers arrived.
    ttfb_us: Option<u64>,
    /// Empty, or one of dropped, timeout, connect, other.
    error: &'static str,
}

/// The header line; a test keeps it equal to `Row`'s field names.
const HEADER: [&str; 8] = [
    "intended_s",
    "sent_s",
    "done_s",
    "status",
    "latency_us",
    "service_us",
    "ttfb_us",
    "error",
];

enum Msg {
    Row(Row),
    /// Everything is sent: flush and report.
    End,
}

/// What happened to the raw log, once the engine has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLogSummary {
    pub path: PathBuf,
    /// Rows written (not counting the header).
    pub rows: u64,
    /// Rows lost because the writer fell behind (or had failed).
    pub lost: u64,
    /// The first write error, after which nothing more was written.
    pub error: Option<String>,
}

/// Writer result: rows written and the first error.
type WriterResult = (u64, Option<String>);

pub(super) struct RawLog {
    path: PathBuf,
    t0: Instant,
    speed: f64,
    tx: mpsc::Sender<Msg>,
    lost: AtomicU64,
    result: Mutex<Option<oneshot::Receiver<WriterResult>>>,
    summary: Mutex<Option<RawLogSummary>>,
}

impl RawLog {
    /// Creates (truncates) `path`, writes the header and starts the writer
    /// thread. `t0` and `speed` turn real instants into experiment time.
    pub fn create(path: &Path, t0: Instant, speed: f64) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .buffer_capacity(64 * 1024)
            .from_writer(file);
        w.write_record(HEADER)?;
        w.flush()?;
        let (tx, rx) = mpsc::channel(CHANNEL_ROWS);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("raw-log".into())
            .spawn(move || {
                let _ = done_tx.send(write_rows(w, rx));
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            t0,
            speed,
            tx,
            lost: AtomicU64::new(0),
            result: Mutex::new(Some(done_rx)),
            summary: Mutex::new(None),
        })
    }

    /// Experiment seconds of a real instant, to the microsecond (negative
    /// for a request sent within the batch window before t0).
    fn secs(&self, at: Instant) -> f64 {
        let real = match at.checked_duration_since(self.t0) {
            Some(d) => d.as_secs_f64(),
            None => -self.t0.duration_since(at).as_secs_f64(),
        };
        (real * self.speed * 1e6).round() / 1e6
    }

    fn us(&self, real_us: u64) -> u64 {
        (real_us as f64 * self.speed).round() as u64
    }

    fn push(&self, row: Row) {
        if self.tx.try_send(Msg::Row(row)).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request due at experiment time `t` that was dropped at the cap.
    pub fn dropped(&self, t: f64) {
        self.push(Row {
            intended_s: t,
            sent_s: None,
            done_s: None,
            status: None,
            latency_us: None,
            service_us: None,
            ttfb_us: None,
            error: "dropped",
        });
    }

    /// A request due at experiment time `t`, sent at `sent`, finished at `done`.
    pub fn finished(&self, t: f64, sent: Instant, done: Instant, c: &Completion) {
        let (status, error) = match c.outcome {
            Outcome::Status(code) => (Some(code), ""),
            Outcome::Timeout => (None, "timeout"),
            Outcome::ConnectError => (None, "connect"),
            Outcome::Other => (None, "other"),
        };
        self.push(Row {
            intended_s: t,
            sent_s: Some(self.secs(sent)),
            done_s: Some(self.secs(done)),
            status,
            latency_us: Some(self.us(c.response_us)),
            service_us: Some(self.us(c.service_us)),
            ttfb_us: c.ttfb_us.map(|u| self.us(u)),
            error,
        });
    }

    /// Call once every row has been pushed: flushes the file and keeps the
    /// summary for [`RawLog::summary`].
    pub async fn finish(&self) {
        // A closed channel means the writer is gone; its result says why.
        let _ = self.tx.send(Msg::End).await;
        let rx = self.result.lock().ok().and_then(|mut r| r.take());
        let Some(rx) = rx else { return };
        let (rows, error) = rx
            .await
            .unwrap_or_else(|_| (0, Some("the raw-log writer thread panicked".into())));
        let summary = RawLogSummary {
            path: self.path.clone(),
            rows,
            lost: self.lost.load(Ordering::Relaxed),
            error,
        };
        if let Ok(mut s) = self.summary.lock() {
            *s = Some(summary);
        }
    }

    /// Set by `finish`.
    pub fn summary(&self) -> Option<RawLogSummary> {
        self.summary.lock().ok().and_then(|s| s.clone())
    }
}

/// The writer thread: rows until `End` (or every sender is gone), then flush.
fn write_rows(mut w: csv::Writer<File>, mut rx: mpsc::Receiver<Msg>) -> WriterResult {
    let mut rows = 0u64;
    let mut error: Option<String> = None;
    while let Some(Msg::Row(row)) = rx.blocking_recv() {
        if error.is_some() {
            continue; // keep draining so senders never see a full channel forever
        }
        match w.serialize(&row) {
            Ok(()) => rows += 1,
            Err(e) => error = Some(e.to_string()),
        }
    }
    if let Err(e) = w.flush() {
        error.get_or_insert(e.to_string());
    }
    (rows, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_matches_row_fields() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(Row {
            intended_s: 1.5,
            sent_s: Some(1.5),
            done_s: Some(1.501),
            status: Some(200),
            latency_us: Some(1000),
            service_us: Some(900),
            ttfb_us: None,
            error: "",
        })
        .expect("serialize");
        let text = String::from_utf8(w.into_inner().expect("flush")).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER.join(",").as_str()));
        assert_eq!(lines.next(), Some("1.5,1.5,1.501,200,1000,900,,"));
    }

    #[tokio::test]
    async fn writes_rows_in_experiment_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raw.csv");
        let t0 = Instant::now();
        let log = RawLog::create(&path, t0, 10.0).expect("create");
        log.dropped(0.25);
        let c = Completion {
            outcome: Outcome::Timeout,
            response_us: 2_000,
            service_us: 1_000,
            ttfb_us: None,
        };
        // Real 0.1 s after t0 at speed 10 is experiment second 1.
        let started = t0 + Duration::from_millis(100);
        log.finished(1.0, started, started + Duration::from_micros(1_000), &c);
        log.finish().await;
        let s = log.summary().expect("summary");
        assert_eq!((s.rows, s.lost, s.error), (2, 0, None));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "intended_s,sent_s,done_s,status,latency_us,service_us,ttfb_us,error\n\
             0.25,,,,,,,dropped\n\
             1.0,1.0,1.01,,20000,10000,,timeout\n"
        );
    }
}
