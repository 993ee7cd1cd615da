//! Command line: `experiment`, `sweep`, `cleanup`, `validate`, `report`,
//! `bench`, `serve`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::backend::kube::KubeOptions;
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
        #[command(flatten)]
        kube: KubeArgs,
        /// Keep the run namespace (kube backend) and print how to inspect it.
        #[arg(long)]
        keep: bool,
        /// Create or reuse a kind cluster (default name `autoscale`) from
        /// manifests/kind/cluster.yaml and use its context (kube backend).
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "autoscale")]
        kind: Option<String>,
        /// Print the objects the kube backend would apply, in order, and exit.
        #[arg(long)]
        dry_run: bool,
        /// Replace a previous run's record in --out (a directory holding
        /// anything else is never emptied).
        #[arg(long)]
        overwrite: bool,
        /// Who runs the manifests' CronHorizontalPodAutoscaler, over the
        /// scenario's `schedule.controller`: `harness` (plays the
        /// controller's rules), `cluster` (kube: kubernetes-cronhpa-controller
        /// in the cluster), `off` (left out: the metric-only baseline).
        #[arg(long, value_enum, value_name = "WHO")]
        schedule_controller: Option<crate::scenario::ScheduleController>,
    },
    /// Delete namespaces left behind by killed kube runs (labelled
    /// app.kubernetes.io/managed-by=autoscale-harness); a run still in
    /// progress (heartbeat annotation under a minute old) and namespaces
    /// already terminating are listed and kept.
    Cleanup {
        #[command(flatten)]
        kube: KubeArgs,
        /// List them without deleting.
        #[arg(long)]
        dry_run: bool,
        /// Also delete namespaces of runs still in progress (their heartbeat
        /// is less than a minute old).
        #[arg(long)]
        include_live: bool,
    },
    /// Run a scenario on the sim backend once per value of one or more
    /// settings and compare: a table here, index.html in the sweep directory.
    #[command(after_help = "Examples:\n  \
        sweep ramp --set hpa:spec.maxReplicas=3,4,5\n  \
        sweep ramp --set hpa:spec.metrics[1].pods.target.averageValue=10..30/5\n  \
        sweep ramp --set hpa:spec.behavior.scaleDown.stabilizationWindowSeconds=0,60,300\n  \
        sweep ramp --set load.stages[0].ramp_to=80,110 --set hpa:spec.maxReplicas=3,6\n\n\
        OBJECT is hpa (the scenario's HPA), deployment (its scale target), route (the \
        scenario's route), service, or Kind/name. Several --set combine into every \
        combination. Missing mapping keys are created; list items must exist.")]
    Sweep {
        /// Scenario file; `ramp.yaml` or `ramp` also finds `scenarios/ramp.yaml`.
        scenario: PathBuf,
        /// `[OBJECT:]PATH=V1,V2,...` or `PATH=FROM..TO[/STEP]`; repeat to combine.
        #[arg(long = "set", value_name = "[OBJECT:]PATH=VALUES", required = true)]
        sets: Vec<String>,
        /// Sweep directory (default: reports/sweep-<scenario>-<UTC timestamp>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed for every run (the same for all, so only the setting differs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Runs at once (default: one per CPU core).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Check a scenario and its manifests without running anything.
    Validate { scenario: PathBuf },
    /// Re-render report.html, summary.json and junit.xml from a run directory.
    Report { run_dir: PathBuf },
    /// Drive the load engine alone at one URL (constant rate or ramp) and report what it held.
    Bench(crate::bench::BenchArgs),
    /// Run built-in pods or the embedded gateway alone until Ctrl-C or
    /// SIGTERM (to measure the gateway next to another proxy).
    Serve {
        #[command(subcommand)]
        what: crate::serve::ServeCommand,
    },
}

/// Which cluster the kube backend talks to.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl Cli {
    /// Runtime threads the command wants; None: one per core.
    pub fn threads(&self) -> Option<usize> {
        match &self.command {
            Command::Bench(a) => Some(usize::from(a.threads)),
            _ => None,
        }
    }
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
            kube,
            keep,
            kind,
            dry_run,
            raw_log,
            overwrite,
            schedule_controller,
        } => {
            if dry_run {
                print!("{}", run::dry_run(&scenario, schedule_controller)?);
                return Ok(exit::PASSED);
            }
            let o = run::experiment(&Options {
                scenario,
                backend,
                speed,
                out,
                progress: !no_progress,
                seed,
                kube: KubeOptions {
                    kubeconfig: kube.kubeconfig,
                    context: kube.context,
                    keep,
                    kind,
                },
                raw_log,
                overwrite,
                schedule_controller,
            })
            .await?;
            println!("\n{}", checks::table(&o.verdict, terminal_width()));
            println!("report: {}", o.dir.join("report.html").display());
            Ok(if o.interrupted {
                eprintln!("interrupted: the run above is partial");
                crate::signal::exit_code()
            } else if o.verdict.passed() {
                exit::PASSED
            } else {
                exit::FAILED
            })
        }
        Command::Cleanup {
            kube,
            dry_run,
            include_live,
        } => {
            let client = crate::backend::kube::connect(&KubeOptions {
                kubeconfig: kube.kubeconfig,
                context: kube.context,
                ..Default::default()
            })
            .await?
            .api;
            use crate::backend::kube::cleanup;
            let found = cleanup::cleanup(&client, dry_run, include_live).await?;
            if found.is_empty() {
                println!("no namespaces left by autoscale-harness");
            }
            for (name, state) in &found {
                println!("{}", cleanup::describe(name, state, dry_run, include_live));
            }
            Ok(exit::PASSED)
        }
        Command::Sweep {
            scenario,
            sets,
            out,
            seed,
            jobs,
        } => {
            let started = std::time::Instant::now();
            let o = crate::sweep::sweep(&crate::sweep::Options {
                scenario,
                sets,
                seed,
                out,
                jobs,
            })?;
            println!("{}", o.table);
            println!(
                "{} runs on the sim backend in {:.1} s; report: {}",
                o.rows.len(),
                started.elapsed().as_secs_f64(),
                o.dir.join("index.html").display()
            );
            Ok(exit::PASSED)
        }
        Command::Validate { scenario } => {
            let p = crate::prepared::Prepared::load(&scenario)?;
            let (l, m) = (&p.loaded, &p.manifests);
            let n = |k: usize, one: &str, many: &str| {
                format!("{k} {}", if k == 1 { one } else { many })
            };
            println!(
                "{}: valid ({}, {} with {}, {})",
                l.path.display(),
                n(l.scenario.load.stages.len(), "stage", "stages"),
                n(l.scenario.manifests.len(), "manifest", "manifests"),
                n(m.items.len(), "object", "objects"),
                n(l.scenario.expect.len(), "expectation", "expectations"),
            );
            let (line, warnings) = crate::run::load_destination(&p);
            println!("{line}");
            if let Some(sc) = &p.schedule {
                println!("{}", sc.describe());
            }
            for w in warnings {
                eprintln!("{w}");
            }
            Ok(exit::PASSED)
        }
        Command::Report { run_dir } => {
            let v = run::rerender(&run_dir)?;
            println!("{}", checks::table(&v, terminal_width()));
            println!("report: {}", run_dir.join("report.html").display());
            Ok(if v.passed() {
                exit::PASSED
            } else {
                exit::FAILED
            })
        }
        Command::Bench(args) => crate::bench::run(args).await,
        Command::Serve { what } => crate::serve::run(what).await,
    }
}

/// The terminal's width when stdout is one: the verdict table wraps to it.
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    std::io::stdout()
        .is_terminal()
        .then(|| usize::from(console::Term::stdout().size().1))
}
