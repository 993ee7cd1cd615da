//! Command pods never outlive the harness, even when it is killed outright
//! (SIGKILL, OOM), which runs no destructor.
//!
//! Two mechanisms, because each covers what the other cannot:
//! * every pod's shell gets `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills
//!   it when the harness dies. The signal belongs to the *thread* that forked
//!   the child, and tokio may retire the thread a task runs on (blocking
//!   threads idle out after 10 s; `block_in_place` hands a worker's core to a
//!   new thread), so all pods are forked by one thread that lives as long as
//!   the process;
//! * the death signal reaches only the shell, not what it started (a server
//!   run by a script). So a guard process, started once, holds the read end
//!   of a pipe from the harness and the list of the pods' process groups:
//!   when the harness dies the pipe reaches end-of-file and the guard kills
//!   every group still listed. Groups are taken off the list once the
//!   harness has killed them itself, so a group id the kernel hands out again
//!   later is never signalled.

use std::io::Write as _;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Reads `+ PGID` / `- PGID` lines; at end-of-file (the harness is gone)
/// kills every group still listed. It ignores the terminal's signals: a
/// Ctrl-C reaches the harness, which stops the pods itself.
const GUARD_SCRIPT: &str = r#"trap '' HUP INT QUIT TERM
groups=
while read -r op g; do
  case $op in
    +) groups="$groups $g" ;;
    -) rest=; for x in $groups; do [ "$x" = "$g" ] || rest="$rest $x"; done; groups=$rest ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

type Reply = oneshot::Sender<std::io::Result<Child>>;

struct Spawner {
    requests: Mutex<mpsc::Sender<(Command, Handle, Reply)>>,
    /// The guard's stdin; `None` if it could not be started (the death
    /// signal still covers the pods' shells).
    guard: Mutex<Option<std::process::ChildStdin>>,
}

fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Command, Handle, Reply)>();
        // The sender lives in a static, so `recv` never fails and this
        // thread (the parent of every pod, for PR_SET_PDEATHSIG) lives as
        // long as the process.
        let started = std::thread::Builder::new()
            .name("pod-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, rt, reply)) = rx.recv() {
                    // tokio registers the child with the caller's runtime.
                    let _in_rt = rt.enter();
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = started {
            // Spawns then fail with a clear error, see `spawn`.
            eprintln!("warning: cannot start the pod spawner thread: {e}");
        }
        Spawner {
            requests: Mutex::new(tx),
            guard: Mutex::new(start_guard()),
        }
    })
}

fn start_guard() -> Option<std::process::ChildStdin> {
    use std::os::unix::process::CommandExt as _;
    std::process::Command::new("sh")
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Its own group: a signal to the harness's group (a CI runner
        // killing the job) must not take the guard with it.
        .process_group(0)
        .spawn()
        .ok()?
        .stdin
        .take()
}

fn tell_guard(line: &str) {
    let mut g = spawner().guard.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = g.as_mut() {
        if w.write_all(line.as_bytes()).is_err() {
            // The guard is gone; nothing to tell any more.
            *g = None;
        }
    }
}

/// Spawns `cmd` (which must put the child in its own process group) so that
/// it dies with the harness: from the long-lived spawner thread, with a
/// parent-death signal, its group listed with the guard.
pub(super) async fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    arm_death_signal(&mut cmd);
    let (tx, rx) = oneshot::channel();
    let sent = spawner()
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, Handle::current(), tx));
    let gone = || std::io::Error::other("the pod spawner thread is not running");
    sent.map_err(|_| gone())?;
    let child = rx.await.map_err(|_| gone())??;
    if let Some(pgid) = child.id() {
        tell_guard(&format!("+ {pgid}\n"));
    }
    Ok(child)
}

/// The group `pgid` has been killed by the harness: the guard forgets it.
pub(super) fn forget_group(pgid: i32) {
    tell_guard(&format!("- {pgid}\n"));
}

#[cfg(target_os = "linux")]
fn arm_death_signal(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure only makes two syscalls
    // (async-signal-safe) and allocates nothing on success.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The harness may have died between fork and prctl: then no
            // signal will ever come, so give up now.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn arm_death_signal(_cmd: &mut Command) {
    // No parent-death signal outside Linux: the guard alone covers SIGKILL.
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The guard kills the groups still listed at end-of-file and spares
    /// the ones taken off the list.
    #[test]
    fn guard_kills_listed_groups_at_eof() {
        use std::os::unix::process::CommandExt as _;
        let start = || {
            std::process::Command::new("sleep")
                .arg("30")
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let (mut kept, mut forgotten) = (start(), start());
        let mut guard = std::process::Command::new("sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut w = guard.stdin.take().unwrap();
        write!(
            w,
            "+ {}\n+ {}\n- {}\n",
            kept.id(),
            forgotten.id(),
            forgotten.id()
        )
        .unwrap();
        drop(w);
        guard.wait().unwrap();
        let status = kept.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            forgotten.try_wait().unwrap().is_none(),
            "forgotten group killed"
        );
        forgotten.kill().unwrap();
        forgotten.wait().unwrap();
    }

    /// A pod's shell carries the parent-death signal: it asks the kernel
    /// for it (PR_GET_PDEATHSIG) and prints it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn children_get_the_parent_death_signal() {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-c",
            "import ctypes; s = ctypes.c_int(); \
             ctypes.CDLL(None).prctl(2, ctypes.byref(s), 0, 0, 0); print(s.value)",
        ])
        .stdout(std::process::Stdio::piped())
        .process_group(0);
        let out = spawn(cmd).await.unwrap().wait_with_output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "9");
    }
}
