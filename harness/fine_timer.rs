//! Sleeps that end within tens of microseconds of their deadline: the
//! embedded cluster's modelled service times and the load engine's sends.
//!
//! Why not `tokio::time`: its timer wheel ticks every millisecond and a
//! sleep ends on the first tick at or after its deadline. At `--speed 30` a
//! millisecond is 30 ms of experiment time: a 20 ms service time (0.67 ms
//! real) took 50-60 ms, a pod served well under its modelled capacity, and
//! sends and completions came in millisecond clumps that showed up as noise
//! in 1-second samples.
//!
//! Why not a crate: tokio-hrtime (one timerfd per sleep) panics when the
//! process runs out of file descriptors, which a run with thousands of
//! connections can reach. Here one thread keeps the deadlines in a heap and
//! waits on a condition variable with a nanosecond timeout; it wakes each
//! sleeper's task at its deadline. Sleeps longer than [`COARSE_ABOVE`] spend
//! all but their last stretch on tokio's timer, so the heap only holds the
//! few sleeps about to end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// Longer sleeps go to tokio's timer until this close to their deadline.
const COARSE_ABOVE: Duration = Duration::from_millis(3);

/// Sleeps until `deadline`, ending within tens of microseconds after it.
pub async fn sleep_until(deadline: Instant) {
    let deadline = deadline.into_std();
    if let Some(coarse) = deadline.checked_sub(COARSE_ABOVE) {
        if coarse > std::time::Instant::now() {
            tokio::time::sleep_until(coarse.into()).await;
        }
    }
    FineSleep {
        deadline,
        entry: None,
    }
    .await
}

struct Entry {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct FineSleep {
    deadline: std::time::Instant,
    entry: Option<Arc<Entry>>,
}

impl Future for FineSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::time::Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.entry {
            Some(e) => {
                if e.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                *lock(&e.waker) = Some(cx.waker().clone());
                // Fired between the check and the store: it woke the old waker.
                if e.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
            }
            None => {
                let e = Arc::new(Entry {
                    fired: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                timer().add(self.deadline, e.clone());
                self.entry = Some(e);
            }
        }
        Poll::Pending
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A deadline in the heap; the sequence number keeps equal deadlines apart.
struct Due(std::time::Instant, u64, Arc<Entry>);

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

#[derive(Default)]
struct Heap {
    due: BinaryHeap<Reverse<Due>>,
    seq: u64,
}

struct Timer {
    heap: Mutex<Heap>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            heap: Mutex::new(Heap::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("fine-timer".into())
            .spawn(move || t.run())
            .map(drop)
            // Without the thread, sleeps still end: tokio's timer, below.
            .unwrap_or_else(|_| FALLBACK.store(true, Ordering::Relaxed));
        t
    })
}

/// Set when the timer thread could not start.
static FALLBACK: AtomicBool = AtomicBool::new(false);

impl Timer {
    fn add(&self, deadline: std::time::Instant, e: Arc<Entry>) {
        if FALLBACK.load(Ordering::Relaxed) {
            // Rare enough to pay a task per sleep.
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                fire(&e);
            });
            return;
        }
        let mut h = lock(&self.heap);
        let earliest = h.due.peek().is_none_or(|Reverse(d)| deadline < d.0);
        h.seq += 1;
        let seq = h.seq;
        h.due.push(Reverse(Due(deadline, seq, e)));
        drop(h);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        // The kernel may defer a timed wake by the thread's timer slack (50 µs
        // by default) to batch it with others; 1 µs keeps deadlines sharp.
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only
        // affects this thread.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1_000u64);
        }
        let mut fired = Vec::new();
        let mut h = lock(&self.heap);
        loop {
            let now = std::time::Instant::now();
            while h.due.peek().is_some_and(|Reverse(d)| d.0 <= now) {
                if let Some(Reverse(d)) = h.due.pop() {
                    fired.push(d.2);
                }
            }
            if !fired.is_empty() {
                drop(h);
                for e in fired.drain(..) {
                    fire(&e);
                }
                h = lock(&self.heap);
                continue;
            }
            h = match h.due.peek().map(|Reverse(d)| d.0 - now) {
                Some(wait) => {
                    self.changed
                        .wait_timeout(h, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.changed.wait(h).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

fn fire(e: &Entry) {
    e.fired.store(true, Ordering::Release);
    if let Some(w) = lock(&e.waker).take() {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleeps_end_just_after_their_deadline_not_on_a_millisecond_tick() {
        let mut late = Vec::new();
        for i in 0..200u64 {
            // Deadlines spread over the millisecond: tokio's timer would end
            // most of them up to 1 ms late.
            let deadline = Instant::now() + Duration::from_micros(300 + 37 * (i % 27));
            sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline);
            late.push(now - deadline);
        }
        late.sort();
        // The median is what a shared CI machine cannot spoil.
        assert!(
            late[late.len() / 2] < Duration::from_micros(300),
            "median lateness {:?}",
            late[late.len() / 2]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_sleeps_all_end_after_their_deadline() {
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..500u64 {
            let deadline = t0 + Duration::from_micros(200 + 11 * i);
            set.spawn(async move {
                sleep_until(deadline).await;
                (deadline, Instant::now())
            });
        }
        // A long one crosses from tokio's timer to the fine one.
        set.spawn(async move {
            let deadline = t0 + Duration::from_millis(20);
            sleep_until(deadline).await;
            (deadline, Instant::now())
        });
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            let (deadline, ended) = r.unwrap();
            assert!(ended >= deadline);
            n += 1;
        }
        assert_eq!(n, 501);
    }
}
