//! Containers that exit, as kubelet handles them with `restartPolicy:
//! Always`: the pod is no longer ready (so the endpoints drop it), a
//! Warning event says how the container ended and what it last printed,
//! and it is restarted after kubelet's back-off (CrashLoopBackOff). A pod
//! that exits before it was ever ready fails the ready gate at once.

use super::{Core, Phase};

/// kubelet's restart back-off: the first restart at once, then 10 s
/// doubling to 5 min; a container that has run 10 min since its last
/// restart starts over (`flowcontrol.Backoff`, initial 10 s, max 300 s,
/// an entry expires after twice the max). Cluster seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BackOff {
    /// The delay the next exit waits; `None` before the first exit.
    next: Option<f64>,
    last_restart: f64,
}

const INITIAL: f64 = 10.0;
const MAX: f64 = 300.0;

impl BackOff {
    /// The container exited at `t`: the delay until it is restarted.
    pub(crate) fn delay(&mut self, t: f64) -> f64 {
        let delay = match self.next {
            Some(d) if t - self.last_restart <= 2.0 * MAX => d,
            _ => 0.0,
        };
        self.next = Some(if delay == 0.0 {
            INITIAL
        } else {
            (delay * 2.0).min(MAX)
        });
        self.last_restart = t + delay;
        delay
    }
}

/// How many output lines an exit event carries.
const EVENT_LINES: usize = 5;

/// How a container ended, as the driver saw it.
pub(crate) struct Exited<'a> {
    /// `exited with code 7`, `was killed by signal 9 (SIGKILL)`.
    pub(crate) status: &'a str,
    /// Its last output lines, oldest first.
    pub(crate) output: &'a [String],
}

impl<P> Core<P> {
    /// Pod `i`'s container exited at `t`: the pod is not ready from now,
    /// a Warning BackOff event tells how it ended and when it restarts.
    /// Returns when to restart it (cluster seconds), or `None` for a pod
    /// that is not running (being deleted: its exit is expected).
    pub(crate) fn container_exited(&mut self, i: usize, t: f64, exit: Exited) -> Option<f64> {
        let p = &mut self.pods[i];
        if p.phase != Phase::Running {
            return None;
        }
        let never_ready = p.ready_since.is_none() && p.restarts == 0;
        let ran = t - p.last_start.unwrap_or(t);
        p.ready_since = None;
        p.exited = Some(t);
        let delay = p.backoff.delay(t);
        let (name, restart) = (p.name.clone(), p.restarts + 1);
        let container = &self.cfg.container;
        let when = if delay > 0.0 {
            format!(
                "Back-off {} restarting failed container {container} in pod {name}",
                secs(delay)
            )
        } else {
            format!("Restarting failed container {container} in pod {name} at once")
        };
        let ran = secs(ran);
        let mut msg = format!("{when} (restart {restart}): it {} after {ran}", exit.status);
        let lines = &exit.output[exit.output.len().saturating_sub(EVENT_LINES)..];
        if lines.is_empty() {
            msg.push_str("; no output");
        } else {
            msg.push_str("; last output: ");
            msg.push_str(&lines.join(" | "));
        }
        if never_ready {
            // Waiting would only run into the ready timeout: say why now.
            let mut f = format!(
                "pod {name} {} before it became ready (after {ran})",
                exit.status
            );
            if exit.output.is_empty() {
                f.push_str("; it printed nothing");
            } else {
                f.push_str("; its last output:");
                for l in exit.output {
                    f.push_str("\n    ");
                    f.push_str(l);
                }
            }
            self.failures.push(f);
        }
        self.event(
            t,
            "Warning",
            "BackOff",
            format!("Pod/{name}"),
            "kubelet",
            msg,
        );
        Some(t + delay)
    }

    /// Pod `i`'s container was started again at `t` after an exit
    /// (`false` if the pod is no longer running: do not start it).
    pub(crate) fn container_restarted(&mut self, i: usize, t: f64) -> bool {
        let p = &mut self.pods[i];
        if p.phase != Phase::Running {
            return false;
        }
        p.restarts += 1;
        p.last_start = Some(t);
        let msg = format!(
            "Started container {} again (restart {})",
            self.cfg.container, p.restarts
        );
        let object = format!("Pod/{}", p.name);
        self.event(t, "Normal", "Started", object, "kubelet", msg);
        true
    }
}

/// Seconds as `40ms`, `2.3s`, `12s`, `5m`: events read at a glance.
fn secs(x: f64) -> String {
    let x = x.max(0.0);
    if x < 1.0 {
        format!("{}ms", (x * 1000.0).round())
    } else if x < 10.0 && x.fract() != 0.0 {
        format!("{x:.1}s")
    } else {
        crate::scenario::fmt_dur(std::time::Duration::from_secs(x.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_is_kubelets() {
        let mut b = BackOff::default();
        // Crash loop: at once, then 10, 20, 40, ... up to 300.
        let mut t = 5.0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            let d = b.delay(t);
            delays.push(d);
            t += d + 1.0;
        }
        assert_eq!(delays, [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]);
        // Ten minutes of running since the last restart: start over.
        let restart = t - 1.0;
        assert_eq!(b.delay(restart + 600.0), 300.0);
        let restart = restart + 600.0 + 300.0;
        assert_eq!(b.delay(restart + 600.5), 0.0);
        assert_eq!(b.delay(restart + 601.0), 10.0);
    }

    #[test]
    fn seconds_read_at_a_glance() {
        assert_eq!(secs(0.04), "40ms");
        assert_eq!(secs(0.0), "0ms");
        assert_eq!(secs(2.26), "2.3s");
        assert_eq!(secs(20.0), "20s");
        assert_eq!(secs(300.0), "5m");
        assert_eq!(secs(75.4), "1m15s");
    }
}
