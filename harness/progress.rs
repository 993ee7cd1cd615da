//! Live progress: an indicatif bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

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
        // The bar and the lines printed above it go to stderr.
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (fancy && terminal).then(|| {
            let b = ProgressBar::with_draw_target(
                Some(total_s.ceil() as u64),
                ProgressDrawTarget::term_like_with_hz(
                    Box::new(RoomForCtrlC(console::Term::buffered_stderr())),
                    20,
                ),
            );
            // One line: indicatif keeps a multi-line bar in place only
            // with lines as wide as the terminal, and RoomForCtrlC's
            // are not. The message is fitted to what is left (`sample`).
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:>11} [{bar:16.cyan/blue}] {msg}",
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
            // Not `println`: it pads the line to the bar's narrower width,
            // and the terminal wraps it at its own.
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => println!("{msg}"),
        }
    }

    pub fn sample(&mut self, s: &Sample, interval: f64) {
        if self.quiet {
            return;
        }
        let fields = figures(s, interval);
        match &self.bar {
            Some(b) => {
                b.set_position(s.t.max(0.0) as u64);
                b.set_prefix(format!("{}/{}", fmt_t(s.t), fmt_t(self.total)));
                // The spinner, prefix and bar take 33 columns of the bar's.
                let width = usize::from(RoomForCtrlC::width_of(&console::Term::stderr()))
                    .saturating_sub(33);
                b.set_message(fit(&fields, width));
            }
            None => {
                if s.t + 1e-9 >= self.next {
                    println!(
                        "{:>7}/{} {}",
                        fmt_t(s.t),
                        fmt_t(self.total),
                        fields.join(FIELD_SEP)
                    );
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

/// stderr as indicatif draws to it, two columns narrower. indicatif pads
/// each line to the width and leaves the cursor past the last column, so
/// the terminal's echo of a Ctrl-C ("^C") wrapped to a line of its own,
/// which the final clear took for the bar's, and the bar's last frame
/// stayed on screen. With two columns spare the echo lands on the bar's
/// line and is cleared with it.
#[derive(Debug)]
struct RoomForCtrlC(console::Term);

impl RoomForCtrlC {
    fn width_of(term: &console::Term) -> u16 {
        TermLike::width(term).saturating_sub(2).max(1)
    }
}

impl TermLike for RoomForCtrlC {
    fn width(&self) -> u16 {
        Self::width_of(&self.0)
    }
    fn height(&self) -> u16 {
        TermLike::height(&self.0)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A run that ends early (an error, a signal while the backend opens) does
/// not leave the bar's last frame on the terminal: indicatif's own drop
/// leaves it drawn.
impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

const FIELD_SEP: &str = " │ ";

/// A sample's figures as printed: the stage, the achieved rate against the
/// load (achieved "of" offered), the pods, the errors, the p99.
fn figures(s: &Sample, interval: f64) -> Vec<String> {
    let qps = s.completed as f64 / interval;
    vec![
        format!("{:<22}", truncate(&s.stage, 22)),
        // A closed model's load is its users; its offered rate only echoes what they sent.
        match s.users {
            Some(u) => format!("{qps:>5.1} QPS, {u} users"),
            None => format!("{qps:>5.1} of {:.1} QPS", s.offered_qps),
        },
        format!(
            "pods {}/{} ready, {} desired",
            s.replicas.ready, s.replicas.spec, s.replicas.desired
        ),
        format!("{} errors", s.status.errors() + s.dropped),
        format!("p99 {}", fmt_ms(s.latency_ms.p99)),
    ]
}

/// `figures`' indices, most telling first: on a narrow terminal the stage
/// goes first, then the p99, the errors.
const KEEP_FIRST: [usize; 5] = [1, 2, 3, 4, 0];

/// The whole figures that fit in `width` columns, taken in `KEEP_FIRST`'s
/// order and printed in their own (at least the first): a figure cut off in
/// the middle would read as another number.
fn fit(fields: &[String], width: usize) -> String {
    let line = |kept: &[bool]| -> String {
        let shown: Vec<&str> = (fields.iter().zip(kept))
            .filter(|(_, k)| **k)
            .map(|(f, _)| f.trim_end())
            .collect();
        shown.join(FIELD_SEP)
    };
    let mut kept = vec![false; fields.len()];
    for (n, &i) in KEEP_FIRST.iter().filter(|&&i| i < fields.len()).enumerate() {
        kept[i] = true;
        if n > 0 && line(&kept).chars().count() > width {
            kept[i] = false;
        }
    }
    line(&kept)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_whole_fields_most_telling_first() {
        let f: Vec<String> = [
            "ramp_to 9   ",
            "  46.9 QPS",
            "pods 3/3",
            "0 errors",
            "p99 7ms",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            fit(&f, 80),
            "ramp_to 9 │   46.9 QPS │ pods 3/3 │ 0 errors │ p99 7ms"
        );
        assert_eq!(fit(&f, 42), "  46.9 QPS │ pods 3/3 │ 0 errors │ p99 7ms");
        assert_eq!(fit(&f, 41), "  46.9 QPS │ pods 3/3 │ 0 errors");
        assert_eq!(fit(&f, 21), "  46.9 QPS │ pods 3/3");
        assert_eq!(fit(&f, 3), "  46.9 QPS");
    }
}
