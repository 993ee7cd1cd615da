//! `bench`: the load engine alone against one URL, at a constant rate or a
//! linear ramp, to show what the generator itself can hold: achieved vs
//! intended rate per second, drops, late sends, latency, and its own CPU and
//! memory. The flags become a [`Plan`] (validated, pure); [`run`] does the
//! I/O; [`summary`] turns the numbers into the report (pure, unit-tested).

pub mod rusage;
pub mod summary;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgGroup, Args, ValueEnum};
use tokio::time::Instant;

use crate::error::{exit, InfraError, UsageError};
use crate::load::{self, LoadConfig, LoadError, RateCurve, RequestSpec, Segment, Spacing};

use self::summary::{Measured, Setup, Window};

/// Lead time between starting the engine and its t0, so the first requests
/// are not late because of set-up work.
const LEAD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("profile").required(true).args(["rate", "ramp"])))]
pub struct BenchArgs {
    /// Target URL, http://host[:port]/path (https is not supported).
    #[arg(long)]
    pub url: String,
    /// Constant rate, requests per second.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Linear ramp over the whole duration, FROM..TO requests per second (e.g. 100..5000).
    #[arg(long, value_name = "FROM..TO")]
    pub ramp: Option<Ramp>,
    /// How long to send, e.g. 30s or 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Send at the starting rate for this long first and count none of it
    /// (the pool opens its connections then, as wrk does before it measures).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Open at most C HTTP/1.1 connections (default: the in-flight cap). A request
    /// due while all C are busy waits for one: it stays in flight, and the wait is
    /// in its response time but not in its service time.
    #[arg(long, value_name = "C")]
    pub connections: Option<usize>,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Per-request timeout, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Requests outstanding at once; a request due beyond it is dropped (counted).
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Spacing of requests along the curve.
    #[arg(long, value_enum, default_value_t = SpacingArg::Uniform)]
    pub spacing: SpacingArg,
    /// Seed for Poisson spacing.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write one CSV row per request to FILE.
    #[arg(long, value_name = "FILE")]
    pub raw_log: Option<PathBuf>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Runtime threads generating load (1 to 64). One, like `wrk -t1`, costs
    /// the least CPU per request: no hand-offs between threads; more only
    /// help past what one core can send.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpacingArg {
    Uniform,
    Poisson,
}

/// `--ramp FROM..TO`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
}

impl FromStr for Ramp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected FROM..TO in requests per second, e.g. 100..5000");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let num = |x: &str| x.trim().parse::<f64>().map_err(|_| bad());
        Ok(Ramp {
            from: num(a)?,
            to: num(b)?,
        })
    }
}

/// A validated bench run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: LoadConfig,
    pub setup: Setup,
    /// The warm-up's whole samples (see [`warmup_samples`]), if it is cut
    /// into any.
    warmup_samples: Option<u64>,
}

impl Plan {
    /// Checks the flags; every error is a `UsageError` naming the flag.
    pub fn new(a: &BenchArgs) -> Result<Self, UsageError> {
        let bad = |m: String| UsageError(m);
        let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
        let (from, to) = match (a.rate, a.ramp) {
            (Some(r), None) if rate_ok(r) && r > 0.0 => (r, r),
            (Some(r), None) => {
                return Err(bad(format!(
                    "--rate {r}: must be a number of requests per second > 0"
                )))
            }
            (None, Some(Ramp { from, to })) if rate_ok(from) && rate_ok(to) && from + to > 0.0 => {
                (from, to)
            }
            (None, Some(Ramp { from, to })) => {
                return Err(bad(format!(
                    "--ramp {from}..{to}: rates must be ≥ 0 and not both 0"
                )))
            }
            _ => return Err(bad("give exactly one of --rate R or --ramp FROM..TO".into())),
        };
        // The scenario's limits: far beyond what one machine sends, and a
        // schedule that large would keep the engine busy past any signal.
        use crate::scenario::{MAX_DURATION, MAX_RATE};
        if from.max(to) > MAX_RATE {
            return Err(bad(format!(
                "--rate/--ramp {}: at most {MAX_RATE} requests per second",
                from.max(to)
            )));
        }
        if a.duration > MAX_DURATION || a.warmup > MAX_DURATION {
            return Err(bad(format!(
                "--duration/--warmup: at most {}",
                crate::scenario::fmt_dur(MAX_DURATION)
            )));
        }
        let duration = a.duration.as_secs_f64();
        if a.duration.is_zero() {
            return Err(bad("--duration: must be more than 0s".into()));
        }
        if a.timeout.is_zero() {
            return Err(bad("--timeout: must be more than 0s".into()));
        }
        if a.max_in_flight == 0 {
            return Err(bad("--max-in-flight: must be at least 1".into()));
        }
        let url: hyper::Uri = a
            .url
            .parse()
            .map_err(|e| bad(format!("--url {}: {e}", a.url)))?;
        if url.scheme_str() != Some("http") || url.authority().is_none() {
            return Err(bad(format!(
                "--url {}: must be http://host[:port]/path (https is not supported)",
                a.url
            )));
        }
        // The warm-up is the first piece of the same curve, so the measured
        // part starts on an already warm connection pool.
        let warmup = a.warmup.as_secs_f64();
        let warm_samples = warmup_samples(warmup);
        let mut segments = Vec::with_capacity(2);
        if warmup > 0.0 {
            segments.push(Segment {
                start: 0.0,
                end: warmup,
                from_rate: from,
                to_rate: from,
            });
        }
        segments.push(Segment {
            start: warmup,
            end: warmup + duration,
            from_rate: from,
            to_rate: to,
        });
        let curve = RateCurve::new(segments)
            .map_err(|e| bad(format!("--rate/--ramp/--duration/--warmup: {e}")))?;
        let connections = a.connections.unwrap_or(a.max_in_flight);
        if connections == 0 {
            return Err(bad("--connections must be at least 1".into()));
        }
        let config = LoadConfig {
            curve,
            spacing: match a.spacing {
                SpacingArg::Uniform => Spacing::Uniform,
                SpacingArg::Poisson => Spacing::Poisson { seed: a.seed },
            },
            speed: 1.0,
            request: RequestSpec {
                method: hyper::Method::GET,
                url,
                headers: vec![],
                body: None,
                timeout: a.timeout,
            },
            max_in_flight: a.max_in_flight,
            http2: a.http2,
            max_connections: Some(connections),
            raw_log: a.raw_log.clone(),
            // The warm-up ends on a sample boundary, so it is cut by each
            // count's own timestamp; the windows after it are cut at the
            // instants they are read (`measure`).
            sample_interval: Duration::from_secs_f64(warm_samples.map_or(1.0, |(_, len)| len)),
        };
        let setup = Setup {
            url: a.url.clone(),
            http: if a.http2 { "2" } else { "1.1" },
            from_rate: from,
            to_rate: to,
            duration_s: duration,
            warmup_s: warmup,
            spacing: match a.spacing {
                SpacingArg::Uniform => "uniform",
                SpacingArg::Poisson => "poisson",
            },
            max_in_flight: a.max_in_flight,
            max_connections: connections,
            timeout_s: a.timeout.as_secs_f64(),
            threads: a.threads,
        };
        Ok(Self {
            config,
            setup,
            warmup_samples: warm_samples.map(|(n, _)| n),
        })
    }
}

/// Runs the bench and prints its summary; returns the exit code (130 when
/// Ctrl-C or SIGTERM cut it short: the summary of what ran is still printed).
pub async fn run(args: BenchArgs) -> Result<i32> {
    let plan = Plan::new(&args)?;
    let summary = measure(plan, crate::signal::shutdown_signal).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary::render_text(&summary));
    }
    Ok(if summary.interrupted_after_s.is_some() {
        crate::signal::exit_code()
    } else {
        exit::PASSED
    })
}

/// The warm-up as whole samples of half a second to two seconds, so that
/// it ends on a sample boundary: how many, and their length. None for no
/// warm-up or one under half a second: samples that short would cost the
/// engine a set of histograms each.
fn warmup_samples(warmup: f64) -> Option<(u64, f64)> {
    (warmup >= 0.5).then(|| {
        let n = warmup.floor().max(1.0);
        (n as u64, warmup / n)
    })
}

/// Drives the engine, reading its stats at the end of the warm-up and then
/// once per second, and summarises the measured part. `signals` makes a
/// future that completes on the next Ctrl-C or SIGTERM: the first stops
/// sending (what was sent is still awaited and summarised), a second one
/// stops the wait for it.
pub async fn measure<F: std::future::Future<Output = ()>>(
    plan: Plan,
    signals: impl Fn() -> F,
) -> Result<summary::Summary> {
    let mut interrupt = std::pin::pin!(signals());
    let usage_at = || rusage::now().map_err(|e| InfraError(format!("getrusage: {e}")));
    let (warmup, duration) = (plan.setup.warmup_s, plan.setup.duration_s);
    let curve = plan.config.curve.clone();
    let mut before = usage_at()?;
    let t0 = Instant::now() + LEAD;
    let mut handle = load::start(plan.config, t0).map_err(|e| match e {
        LoadError::NoRuntime => anyhow::Error::from(InfraError(e.to_string())),
        e => UsageError(e.to_string()).into(),
    })?;
    let since_t0 = |at: Instant| at.saturating_duration_since(t0).as_secs_f64();
    let at_s = |s: f64| t0 + Duration::from_secs_f64(s);
    let mut start_s = 0.0;
    let mut interrupted_at = None;
    if warmup > 0.0 {
        // A warm-up of whole samples is cut by each count's own timestamp (a
        // request due by its end is the warm-up's, whenever this wakes),
        // once what happened in it has landed. A shorter one ends at the
        // instant it is read: a request due right then lands on either side.
        // CPU counts from the boundary itself, not from when its samples
        // close (up to the recorder's grace later).
        let samples = plan.warmup_samples;
        let ended = async {
            tokio::time::sleep_until(at_s(warmup)).await;
            let at_end = usage_at();
            if let Some(n) = samples {
                drop(handle.sample(n - 1).await);
            }
            at_end
        };
        let at_end = tokio::select! {
            u = ended => Some(u),
            _ = &mut interrupt => None,
        };
        if at_end.is_none() {
            interrupted_at = Some(Instant::now());
        }
        start_s = if samples.is_some() && at_end.is_some() {
            warmup
        } else {
            let _ = handle.take_recorded();
            since_t0(Instant::now())
        };
        before = match at_end {
            Some(u) => u?,
            None => usage_at()?,
        };
    }
    // Sleeps until `s`; the instant of the interrupt if it came first.
    let mut wait_until = async |s: f64| {
        tokio::select! {
            _ = tokio::time::sleep_until(at_s(s)) => None,
            _ = &mut interrupt => Some(Instant::now()),
        }
    };
    // Read once a second: the anonymous part of the RSS is what grows.
    // (None < Some: a failed read keeps the peak.)
    let mut peak_anon = rusage::anon_rss_bytes();
    let mut read_anon = || peak_anon = peak_anon.max(rusage::anon_rss_bytes());
    let full_seconds = duration.floor() as u64;
    let mut windows = Vec::with_capacity(usize::try_from(full_seconds).unwrap_or(0));
    let mut measured = load::IntervalStats::new();
    for k in 1..=full_seconds {
        if interrupted_at.is_some() {
            break;
        }
        interrupted_at = wait_until(warmup + k as f64).await;
        if interrupted_at.is_some() {
            break;
        }
        // The read's own instant is the window's end, so lateness in waking
        // up moves the boundary instead of counting as rate error.
        let stats = handle.take_recorded();
        let end_s = since_t0(Instant::now());
        windows.push(Window::new(start_s, end_s, &stats));
        read_anon();
        measured.merge(&stats);
        start_s = end_s;
    }
    if interrupted_at.is_some() {
        handle.stop();
    }
    // The rest: a partial last second and requests still in flight, until
    // they end or a signal (the first, or a second after an interrupt).
    let rest = async {
        while !handle.finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let cut = if interrupted_at.is_some() {
        tokio::select! { _ = rest => false, _ = signals() => true }
    } else {
        tokio::select! { _ = rest => false, _ = &mut interrupt => true }
    };
    if cut {
        handle.stop();
        interrupted_at.get_or_insert_with(Instant::now);
    }
    measured.merge(&handle.take_recorded());
    // After a cut, requests still out are not waited for.
    let raw_log = if cut {
        None
    } else {
        handle.finish().await.raw_log
    };
    let usage = usage_at()?.since(&before);
    read_anon();
    Ok(summary::summarize(
        plan.setup,
        &Measured {
            curve: &curve,
            windows: &windows,
            totals: &measured,
            user_s: usage.user.as_secs_f64(),
            sys_s: usage.sys.as_secs_f64(),
            peak_rss_bytes: usage.max_rss_bytes,
            peak_anon_rss_bytes: peak_anon,
            raw_log: raw_log.as_ref(),
            interrupted_after_s: interrupted_at.map(|at| (since_t0(at) - warmup).max(0.0)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &str) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.split_whitespace())).map(|c| c.args)
    }

    fn plan(argv: &str) -> Result<Plan, String> {
        let a = parse(argv).map_err(|e| e.to_string())?;
        Plan::new(&a).map_err(|e| e.to_string())
    }

    #[test]
    fn a_warm_up_of_half_a_second_or_more_is_whole_samples() {
        assert_eq!(warmup_samples(0.0), None);
        assert_eq!(warmup_samples(0.49), None);
        assert_eq!(warmup_samples(0.5), Some((1, 0.5)));
        assert_eq!(warmup_samples(1.0), Some((1, 1.0)));
        assert_eq!(warmup_samples(2.5), Some((2, 1.25)));
        assert_eq!(warmup_samples(10.0), Some((10, 1.0)));
    }

    #[test]
    fn constant_and_ramp_plans() {
        let p = plan("--url http://127.0.0.1:1/x --rate 500 --duration 2s").expect("plan");
        assert_eq!(p.config.curve.total_requests(), 1000.0);
        assert_eq!(p.config.max_connections, Some(1000));
        assert_eq!((p.setup.http, p.setup.spacing), ("1.1", "uniform"));

        let p = plan(
            "--url http://127.0.0.1:1/ --ramp 100..300 --duration 10s --connections 8 \
             --http2 --spacing poisson --seed 9 --timeout 250ms --raw-log r.csv --warmup 2s",
        )
        .expect("plan");
        // 2 s of warm-up at 100 req/s, then the ramp.
        assert_eq!(p.config.curve.total_requests(), 2200.0);
        assert_eq!(p.config.curve.rate_at(1.0), 100.0);
        assert_eq!(p.config.curve.rate_at(7.0), 200.0);
        assert_eq!(p.setup.warmup_s, 2.0);
        assert_eq!(p.config.max_connections, Some(8));
        assert!(p.config.http2);
        assert_eq!(p.config.spacing, Spacing::Poisson { seed: 9 });
        assert_eq!(p.config.request.timeout, Duration::from_millis(250));
        assert_eq!(p.config.raw_log, Some(PathBuf::from("r.csv")));
        assert_eq!((p.setup.from_rate, p.setup.to_rate), (100.0, 300.0));
    }

    #[test]
    fn bad_flags_are_explained() {
        let err = |argv: &str| plan(argv).expect_err(argv);
        for (argv, says) in [
            ("--url http://h/ --duration 1s", "--rate"),
            (
                "--url http://h/ --rate 1 --ramp 1..2 --duration 1s",
                "cannot be used with",
            ),
            (
                "--url http://h/ --rate 0 --duration 1s",
                "--rate 0: must be",
            ),
            (
                "--url http://h/ --rate -3 --duration 1s",
                "--rate -3: must be",
            ),
            (
                "--url http://h/ --rate NaN --duration 1s",
                "--rate NaN: must be",
            ),
            ("--url http://h/ --ramp 0..0 --duration 1s", "not both 0"),
            (
                "--url http://h/ --ramp 5-10 --duration 1s",
                "expected FROM..TO",
            ),
            (
                "--url http://h/ --rate 1 --duration 0s",
                "--duration: must be",
            ),
            ("--url http://h/ --rate 1 --duration soon", "--duration"),
            (
                "--url http://h/ --rate 1 --duration 1s --timeout 0s",
                "--timeout",
            ),
            (
                "--url http://h/ --rate 1 --duration 1s --max-in-flight 0",
                "--max-in-flight",
            ),
            (
                "--url https://h/ --rate 1 --duration 1s",
                "https is not supported",
            ),
            ("--url h:80 --rate 1 --duration 1s", "must be http://"),
        ] {
            let e = err(argv);
            assert!(e.contains(says), "{argv}: {e}");
        }
    }

    #[test]
    fn ramp_syntax() {
        assert_eq!(
            "0..2000".parse(),
            Ok(Ramp {
                from: 0.0,
                to: 2000.0
            })
        );
        assert_eq!(
            " 10 .. 2.5".parse(),
            Ok(Ramp {
                from: 10.0,
                to: 2.5
            })
        );
        assert!("10..".parse::<Ramp>().is_err());
        assert!("10".parse::<Ramp>().is_err());
    }
}
