//! Process-wide state that Goose takes over when an attack starts: the
//! global `log` logger and the Ctrl-C handler. The harness claims both
//! first, so a closed-model run keeps a readable console and the harness's
//! own interrupt handling.

use std::sync::Once;

/// Claims the logger and the Ctrl-C handler before Goose does (once per
/// process; later calls do nothing).
pub(super) fn claim_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&ERRORS_ONLY).is_ok() {
            log::set_max_level(log::LevelFilter::Error);
        }
        #[cfg(unix)]
        keep_signal_handlers();
    });
}

/// Goose installs a global logger that prints its warnings to stdout, one
/// per failed request (a refused connection while a pod terminates, say).
/// The timeline counts those failures; on the console they would bury the
/// progress. Taking the logger slot first with one that passes only errors
/// makes Goose's own attempt fail quietly.
struct ErrorsOnly;

static ERRORS_ONLY: ErrorsOnly = ErrorsOnly;

impl log::Log for ErrorsOnly {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Error
    }
    fn log(&self, r: &log::Record) {
        // Goose raises the global max level before its logger fails to
        // install, so filter here too.
        if self.enabled(r.metadata()) {
            eprintln!("goose: {}", r.args());
        }
    }
    fn flush(&self) {}
}

/// Goose calls `ctrlc::set_handler` when an attack starts. That replaces the
/// process's SIGINT handler without chaining to it, so Ctrl-C would stop
/// Goose's users but never reach the harness's own interrupt handling (stop,
/// clean up, write the partial report, exit 130). ctrlc allows one handler
/// per process: take that slot first, then put back whatever handled the
/// signals before, so Goose's later attempt fails harmlessly (it logs and
/// carries on). The harness stops Goose itself when interrupted.
#[cfg(unix)]
fn keep_signal_handlers() {
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    // SAFETY: sigaction with a null new action only reads the current one
    // into a zeroed, properly sized struct; restoring writes back exactly
    // what was read.
    unsafe {
        let mut saved: [libc::sigaction; 3] = std::mem::zeroed();
        for (sig, old) in SIGNALS.iter().zip(saved.iter_mut()) {
            if libc::sigaction(*sig, std::ptr::null(), old) != 0 {
                return;
            }
        }
        if ctrlc::set_handler(|| {}).is_ok() {
            for (sig, old) in SIGNALS.iter().zip(saved.iter()) {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}
