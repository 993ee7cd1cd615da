//! Command pods: a program started via `sh -c` in its own process group,
//! with the tail of its output kept, stopped by SIGTERM then SIGKILL, and
//! its CPU and memory read from `/proc`. A reaper task waits for the
//! program to exit, whenever that is, and publishes how it ended.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{lifeline, Exit, PodStats};

const TAIL_BYTES: usize = 16 * 1024;

/// How long the output readers may take to reach end-of-file after the
/// program exited, so the exit's output tail is complete.
const OUTPUT_DRAIN: Duration = Duration::from_millis(200);

pub(super) struct CommandPod {
    /// Process group id (= the shell's pid); always > 1.
    pgid: i32,
    tail: Arc<Mutex<VecDeque<u8>>>,
    /// `None` while the program runs; then how it ended, and whether its
    /// output has been read to the end.
    exit: watch::Receiver<Option<(Exit, bool)>>,
    /// Last CPU reading, so the counter never goes backwards when a
    /// descendant exits unreaped.
    cpu_ns: AtomicU64,
}

impl CommandPod {
    pub(super) async fn spawn(
        name: &str,
        command: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<(Self, SocketAddr)> {
        // Ask the kernel for a free port, then release it for the program.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .with_context(|| format!("pod {name}: pick a free port"))?
            .port();
        let script = command.replace("{port}", &port.to_string());
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&script)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Own process group so the whole tree can be signalled at once.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = lifeline::spawn(cmd)
            .await
            .with_context(|| format!("pod {name}: spawn `sh -c {script}`"))?;
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 1)
            .context("spawned child has no pid")?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect_tail(out, tail.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect_tail(err, tail.clone())));
        }
        let (tx, exit) = watch::channel(None);
        tokio::spawn(reap(child, pgid, readers, tail.clone(), tx));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        Ok((
            Self {
                pgid,
                tail,
                exit,
                cpu_ns: AtomicU64::new(0),
            },
            addr,
        ))
    }

    pub(super) fn is_running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Resolves as soon as the program has exited and its group is killed.
    pub(super) async fn gone(&self) {
        let mut rx = self.exit.clone();
        // An error means the reaper was dropped with the runtime: gone too.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// How the program ended, once it has and its output is read.
    pub(super) async fn exited(&self) -> Exit {
        let mut rx = self.exit.clone();
        let r = rx
            .wait_for(|e| e.as_ref().is_some_and(|(_, complete)| *complete))
            .await;
        match r {
            Ok(e) => e.as_ref().map(|(e, _)| e.clone()).unwrap_or_default(),
            Err(_) => Exit {
                tail: self.output_tail(),
                ..Exit::default()
            },
        }
    }

    pub(super) fn output_tail(&self) -> String {
        tail_text(&self.tail)
    }

    pub(super) fn stats(&self) -> PodStats {
        let (cpu, rss) = if self.is_running() {
            proc_tree_usage(self.pgid).unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        let cpu = self.cpu_ns.fetch_max(cpu, Ordering::Relaxed).max(cpu);
        PodStats {
            requests_known: false,
            cpu_busy_ns: cpu,
            memory_bytes: rss,
            ..PodStats::default()
        }
    }

    pub(super) async fn stop(&mut self, grace: Duration) {
        if self.is_running() {
            killpg(self.pgid, libc::SIGTERM);
            let _ = tokio::time::timeout(grace, self.exited()).await;
        }
        // Whatever is left of the group (workers that ignored SIGTERM, or
        // outlived the shell) is killed outright.
        if self.is_running() {
            killpg(self.pgid, libc::SIGKILL);
        }
        self.exited().await;
    }
}

impl Drop for CommandPod {
    fn drop(&mut self) {
        if self.is_running() {
            // The reaper then reaps the shell and tells the guard.
            killpg(self.pgid, libc::SIGKILL);
        }
    }
}

/// Waits for the shell to exit, then kills what is left of its group (as
/// a container's processes end with its main process) and publishes the
/// exit at once (the pod leaves the endpoints), then again with its output
/// read to the end (for the record).
async fn reap(
    mut child: tokio::process::Child,
    pgid: i32,
    readers: Vec<JoinHandle<()>>,
    tail: Arc<Mutex<VecDeque<u8>>>,
    tx: watch::Sender<Option<(Exit, bool)>>,
) {
    let status = child.wait().await;
    killpg(pgid, libc::SIGKILL);
    lifeline::forget_group(pgid);
    let (code, signal) = match status {
        Ok(s) => (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)),
        Err(_) => (None, None),
    };
    let exit = |tail| Exit { code, signal, tail };
    let _ = tx.send(Some((exit(tail_text(&tail)), false)));
    let aborts: Vec<_> = readers.iter().map(JoinHandle::abort_handle).collect();
    let _ = tokio::time::timeout(OUTPUT_DRAIN, futures::future::join_all(readers)).await;
    // A process that left the group may still hold a pipe: stop reading.
    for a in aborts {
        a.abort();
    }
    let _ = tx.send(Some((exit(tail_text(&tail)), true)));
}

fn tail_text(tail: &Mutex<VecDeque<u8>>) -> String {
    let t = tail.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = t.as_slices();
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    String::from_utf8_lossy(&v).into_owned()
}

fn killpg(pgid: i32, sig: i32) {
    // Never signal group 0/1 (our own group / init): pgid comes from our child.
    if pgid > 1 {
        // SAFETY: plain syscall on a process group we created; ESRCH is fine.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

async fn collect_tail<R: tokio::io::AsyncRead + Unpin>(mut r: R, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(TAIL_BYTES);
        t.drain(..excess);
    }
}

/// CPU (utime+stime plus reaped children's cutime+cstime, in ns) and RSS
/// (bytes) summed over `root` and all its live descendants.
fn proc_tree_usage(root: i32) -> Option<(u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let (tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (tck, page) = (u64::try_from(tck).ok()?.max(1), u64::try_from(page).ok()?);
    struct P {
        ppid: i32,
        ticks: u64,
        rss_pages: u64,
    }
    let mut procs: HashMap<i32, P> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm (field 2) may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        // Field n of stat(5) is f[n - 3] here.
        let Some(ppid) = f.get(1).and_then(|s| s.parse().ok()) else {
            continue;
        };
        procs.insert(
            pid,
            P {
                ppid,
                ticks: num(11) + num(12) + num(13) + num(14),
                rss_pages: num(21),
            },
        );
    }
    procs.get(&root)?;
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, p) in &procs {
        children.entry(p.ppid).or_default().push(pid);
    }
    let (mut ticks, mut pages) = (0u64, 0u64);
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(p) = procs.get(&pid) {
            ticks += p.ticks;
            pages += p.rss_pages;
        }
        if let Some(c) = children.get(&pid) {
            stack.extend(c);
        }
    }
    Some((
        ticks.saturating_mul(1_000_000_000) / tck,
        pages.saturating_mul(page),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, PodHandle, PodSpecKind};
    use super::*;

    /// The process group of a command pod.
    fn group_of(pod: &PodHandle) -> i32 {
        match &pod.kind {
            Kind::Command(c) => c.pgid,
            Kind::Builtin { .. } | Kind::Gateway(_) => unreachable!("a command pod"),
        }
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let st = s
                    .rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next());
                st != Some("Z")
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn command_pod_lifecycle() {
        let kind = PodSpecKind::Command {
            command: "python3 -m http.server {port} --bind 127.0.0.1".into(),
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
        };
        let pod = PodHandle::start("py-0", &kind, 1.0).await.unwrap();
        let pgid = group_of(&pod);
        let mut ready = false;
        for _ in 0..100 {
            if pod.probe("/").await {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ready,
            "python http.server never became ready: {}",
            pod.output_tail()
        );
        assert!(pod.is_running());
        let st = pod.stats();
        assert!(!st.requests_known);
        assert!(st.cpu_busy_ns > 0, "{st:?}");
        assert!(st.memory_bytes > 1 << 20, "{st:?}");
        pod.drain_and_stop(Duration::from_secs(2)).await;
        assert!(!alive(pgid), "process {pgid} still alive");
    }

    #[tokio::test]
    async fn command_pod_killed_on_drop_and_sigterm_ignored() {
        // The shell ignores SIGTERM, so stop must escalate to SIGKILL.
        let kind = PodSpecKind::Command {
            command: "trap '' TERM; sleep 30 & wait".into(),
            env: vec![],
        };
        let pod = PodHandle::start("stubborn", &kind, 1.0).await.unwrap();
        let pgid = group_of(&pod);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = std::time::Instant::now();
        pod.drain_and_stop(Duration::from_millis(200)).await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(!alive(pgid));

        let pod = PodHandle::start("dropped", &kind, 1.0).await.unwrap();
        let pgid = group_of(&pod);
        drop(pod);
        let mut gone = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !alive(pgid) {
                gone = true;
                break;
            }
        }
        assert!(gone, "dropped pod {pgid} left a process");
    }

    #[tokio::test]
    async fn exit_is_published_with_status_and_output() {
        // A background child that outlives the shell dies with it, as the
        // processes of a container do.
        let kind = PodSpecKind::Command {
            command: "sleep 30 & echo listening on {port}; echo bad config >&2; exit 7".into(),
            env: vec![],
        };
        let pod = PodHandle::start("crash", &kind, 1.0).await.unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(5), pod.exited())
            .await
            .expect("the exit is seen");
        assert_eq!(exit.code, Some(7));
        assert_eq!(exit.status(), "exited with code 7");
        assert!(exit.tail.contains("listening on") && exit.tail.contains("bad config"));
        assert!(!pod.is_running());
        let pgid = group_of(&pod);
        // SIGKILL is delivered, not awaited: give the group a moment to go.
        let in_group = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                // SAFETY: getpgid only reads; a vanished pid gives -1.
                .filter(|&pid| alive(pid) && unsafe { libc::getpgid(pid) } == pgid)
                .count()
        };
        let mut left = in_group();
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = in_group();
        }
        assert_eq!(left, 0, "processes left in group {pgid}");
        // Stopping an exited pod returns at once.
        let t0 = std::time::Instant::now();
        pod.drain_and_stop(Duration::from_secs(2)).await;
        assert!(t0.elapsed() < Duration::from_millis(500));
    }
}
