//! Live progress: an indicatif bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::checks::fmt_t;
use crate::recorder::{Event, Sample};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: f64,
    /// Plain mode prints a line every `every` experiment seconds.
    every: f64,
    next: f64,
    /// Prints nothing at all (each run of a `sweep`).
    quiet: bool,
}

impl Progress {
    pub fn new(total_s: f64, fancy: bool) -> Self {
        let bar = (fancy && std::io::stdout().is_terminal()).then(|| {
            let b = ProgressBar::new(total_s.ceil() as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:>9} [{bar:30.cyan/blue}] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        // About 60 lines for a whole run, never more than one per 10 s.
        let every = (total_s / 60.0).max(10.0);
        Self {
            bar,
            total: total_s,
            every,
            next: 0.0,
            quiet: false,
        }
    }

    /// No output: for runs whose progress a caller reports itself.
    pub fn silent() -> Self {
        Self {
            bar: None,
            total: 0.0,
            every: f64::INFINITY,
            next: f64::INFINITY,
            quiet: true,
        }
    }

    pub fn message(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(b) => b.println(msg),
            None => println!("{msg}"),
        }
    }

    pub fn sample(&mut self, s: &Sample, interval: f64) {
        if self.quiet {
            return;
        }
        let errors = s.status.errors() + s.dropped;
        // A closed model's load is its users; its offered rate only echoes what they sent.
        let load = match s.users {
            Some(u) => format!("{u:>5} users"),
            None => format!("offered {:>6.1}", s.offered_qps),
        };
        let line = format!(
            "{:<22} │ {:>6.1} QPS ({load}) │ pods {}/{} ready, desired {} │ p99 {:>7} │ errors {}",
            truncate(&s.stage, 22),
            s.completed as f64 / interval,
            s.replicas.ready,
            s.replicas.spec,
            s.replicas.desired,
            fmt_ms(s.latency_ms.p99),
            errors
        );
        match &self.bar {
            Some(b) => {
                b.set_position(s.t.max(0.0) as u64);
                b.set_prefix(format!("{}/{}", fmt_t(s.t), fmt_t(self.total)));
                b.set_message(line);
            }
            None => {
                if s.t + 1e-9 >= self.next {
                    println!("{:>7}/{} {line}", fmt_t(s.t), fmt_t(self.total));
                    self.next += self.every;
                }
            }
        }
    }

    pub fn event(&self, e: &Event) {
        if e.type_ == "Warning" || e.is_rescale() {
            self.message(&format!(
                "  {:>7} {:<7} {:<18} {}",
                // Negative: during the warm-up, before the load started.
                if e.t < 0.0 {
                    format!("-{}", fmt_t(-e.t))
                } else {
                    fmt_t(e.t)
                },
                e.type_,
                e.reason,
                e.message
            ));
        }
    }

    /// The final wait for the requests in flight: the bar says how many
    /// are left and for how long at most. Plain output said so once.
    pub fn waiting(&self, in_flight: u64, left: Duration) {
        if let Some(b) = &self.bar {
            let s = if in_flight == 1 { "" } else { "s" };
            b.set_prefix("finishing");
            b.set_message(format!(
                "waiting for {in_flight} request{s} in flight, at most {} more (Ctrl-C stops the wait)",
                // Whole seconds: a countdown in milliseconds only flickers.
                crate::scenario::fmt_dur(Duration::from_secs(left.as_secs_f64().ceil() as u64))
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}
