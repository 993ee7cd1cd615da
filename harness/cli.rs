//! Command line: `experiment`, `validate`, `report`, `bench`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::backend::Kind;
use crate::checks;
use crate::error::exit;
use crate::run::{self, Options};

#[derive(Debug, Parser)]
#[command(
    name = "autoscale-harness",
    version,
    about = "Proves a service autoscales correctly: deploys it with its HPA, drives ramped load through a gateway route, asserts scale-out and scale-in, and writes a report."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario end to end and print the verdict.
    Experiment {
        /// Scenario file; `ramp.yaml` or `ramp` also finds `scenarios/ramp.yaml`.
        scenario: PathBuf,
        /// Where the scenario runs.
        #[arg(long, value_enum, default_value_t = Kind::Local)]
        backend: Kind,
        /// Compress experiment time N-fold (request rates rise N-fold in real time).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Run directory (default: reports/<scenario>-<UTC timestamp>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Plain progress lines instead of the live bar.
        #[arg(long)]
        no_progress: bool,
        /// Seed for pod names, Poisson spacing and anything else random.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write one CSV row per request to FILE (intended_s, sent_s,
        /// done_s, status, latency_us, service_us, ttfb_us, error), in
        /// experiment time.
        #[arg(long, value_name = "FILE")]
        raw_log: Option<PathBuf>,
    },
    /// Check a scenario and its manifests without running anything.
    Validate { scenario: PathBuf },
    /// Re-render report.html, summary.json and junit.xml from a run directory.
    Report { run_dir: PathBuf },
    /// Drive the load engine alone at one URL (constant rate or ramp) and report what it held.
    Bench(crate::bench::BenchArgs),
}

/// Runs the CLI and returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Experiment {
            scenario,
            backend,
            speed,
            out,
            no_progress,
            seed,
            raw_log,
        } => {
            let o = run::experiment(&Options {
                scenario,
                backend,
                speed,
                out,
                progress: !no_progress,
                seed,
                raw_log,
            })
            .await?;
            println!("\n{}", checks::table(&o.verdict));
            println!("report: {}", o.dir.join("report.html").display());
            Ok(if o.interrupted {
                eprintln!("interrupted: the run above is partial");
                exit::INTERRUPTED
            } else if o.verdict.passed() {
                exit::PASSED
            } else {
                exit::FAILED
            })
        }
        Command::Validate { scenario } => {
            let (l, m) = run::prepare(&scenario)?;
            println!(
                "{}: valid ({} stages, {} manifests with {} objects, {} expectations)",
                l.path.display(),
                l.scenario.load.stages.len(),
                l.scenario.manifests.len(),
                m.items.len(),
                l.scenario.expect.len()
            );
            Ok(exit::PASSED)
        }
        Command::Report { run_dir } => {
            let v = run::rerender(&run_dir)?;
            println!("{}", checks::table(&v));
            println!("report: {}", run_dir.join("report.html").display());
            Ok(if v.passed() {
                exit::PASSED
            } else {
                exit::FAILED
            })
        }
        Command::Bench(args) => crate::bench::run(args).await,
    }
}
