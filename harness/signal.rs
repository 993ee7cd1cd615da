//! Ctrl-C and SIGTERM, as one future: the experiment loop and `bench` stop
//! early on it, clean up and write what they recorded. The exit code then
//! follows the shell's convention, 128 + the signal's number: 130 for
//! Ctrl-C (SIGINT), 143 for SIGTERM.

use std::sync::atomic::{AtomicI32, Ordering};

/// The number of the signal that stopped the run; SIGINT until one did.
static RECEIVED: AtomicI32 = AtomicI32::new(libc::SIGINT);

/// The exit code of a run the signal stopped.
pub(crate) fn exit_code() -> i32 {
    128 + RECEIVED.load(Ordering::Relaxed)
}

/// Completes on the first Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => RECEIVED.store(libc::SIGTERM, Ordering::Relaxed),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
