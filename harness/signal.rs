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

/// Completes on the first Ctrl-C or SIGTERM after the call. The handlers
/// are installed by the call itself, not at the first poll, so a process
/// that announces itself ready right after can already be stopped.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => RECEIVED.store(libc::SIGTERM, Ordering::Relaxed),
                },
                (Ok(mut int), Err(_)) => {
                    int.recv().await;
                }
                // No handler could be installed: SIGINT keeps its default
                // action (the process ends), so never complete here.
                (Err(_), _) => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
