//! Hands due requests to long-lived connection workers (HTTP/1.1), the
//! open model without a task per request (k6's arrival-rate executors with
//! pre-allocated VUs, wrk2's per-connection schedule).
//!
//! A due request goes to the worker that went idle last (its connection is
//! the warmest), else starts a new worker if fewer than `cap` are alive and
//! fewer than [`MAX_DIALING`] are still dialling, else waits in a FIFO queue
//! for the next worker to be free. The dialling limit is what keeps the
//! connection count (and memory) flat: after the generator itself stalled
//! for a few milliseconds, its backlog is all due at once, and opening a
//! connection for each (hundreds at 5,000 req/s) would cost far more than
//! the microseconds the open connections need to serve it; a slow server
//! still gets a new connection per arrival, since a dial ends long before
//! the next arrival. The wait is
//! the request's, part of its response time, and it holds its in-flight
//! permit meanwhile, so nothing is hidden: the open model still drops at
//! the in-flight cap, it just stops opening connections at the connection
//! cap. A worker idle for `idle_timeout` ends and closes its connection, so
//! the workers follow the current concurrency rather than the highest a
//! long run ever reached (memory is per worker). A queued request is a few
//! dozen bytes, not a task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::deadline::Deadline;

/// New connections being dialled at once, at most.
const MAX_DIALING: usize = 4;

/// An idle worker's slot: a job is put here, then the worker is woken.
pub(super) struct Mailbox<J> {
    job: Mutex<Option<J>>,
    wake: Notify,
}

impl<J> Default for Mailbox<J> {
    fn default() -> Self {
        Self {
            job: Mutex::new(None),
            wake: Notify::new(),
        }
    }
}

pub(super) struct Workers<J> {
    cap: usize,
    idle_timeout: Duration,
    state: Mutex<State<J>>,
    closed: AtomicBool,
}

struct State<J> {
    /// Jobs no worker has taken yet, oldest first.
    queue: VecDeque<J>,
    /// Workers waiting for a job, the most recently idle last.
    idle: Vec<Arc<Mailbox<J>>>,
    /// Workers started and not ended.
    alive: usize,
    /// Workers started and not yet through their first dial.
    dialing: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain bookkeeping: a panic elsewhere leaves it consistent enough.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J> Workers<J> {
    pub fn new(cap: usize, idle_timeout: Duration) -> Self {
        Self {
            cap: cap.max(1),
            idle_timeout,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: Vec::new(),
                alive: 0,
                dialing: 0,
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// Gives `job` to an idle worker or queues it; `Some(job)` when the
    /// caller is to start a new worker with it (counted alive and dialling
    /// already; it calls [`Workers::dialled`] after its first dial).
    pub fn dispatch(&self, job: J) -> Option<J> {
        let mut st = lock(&self.state);
        if let Some(mb) = st.idle.pop() {
            // Stored under the state lock: a worker no longer in `idle`
            // always finds its job (see `next`).
            *lock(&mb.job) = Some(job);
            drop(st);
            mb.wake.notify_one();
            return None;
        }
        if st.alive < self.cap && st.dialing < MAX_DIALING {
            st.alive += 1;
            st.dialing += 1;
            return Some(job);
        }
        st.queue.push_back(job);
        None
    }

    /// The worker's next job, waiting up to the idle timeout (on `idle`,
    /// the worker's own timer); None: the worker is to end (it is no
    /// longer counted alive).
    pub async fn next(&self, mb: &Arc<Mailbox<J>>, idle: &mut Deadline) -> Option<J> {
        {
            let mut st = lock(&self.state);
            if let Some(j) = st.queue.pop_front() {
                return Some(j);
            }
            if self.closed.load(Ordering::Acquire) {
                st.alive -= 1;
                return None;
            }
            st.idle.push(mb.clone());
        }
        let deadline = tokio::time::Instant::now() + self.idle_timeout;
        loop {
            let woken = idle.within(deadline, mb.wake.notified()).await.is_some();
            if let Some(j) = lock(&mb.job).take() {
                return Some(j);
            }
            if woken && !self.closed.load(Ordering::Acquire) {
                continue;
            }
            let mut st = lock(&self.state);
            match st.idle.iter().position(|m| Arc::ptr_eq(m, mb)) {
                Some(i) => {
                    st.idle.remove(i);
                    st.alive -= 1;
                    return None;
                }
                // Taken out of `idle` under this lock: by a dispatch, which
                // left its job in the mailbox, or by close.
                None => {
                    if let Some(j) = lock(&mb.job).take() {
                        return Some(j);
                    }
                    st.alive -= 1;
                    return None;
                }
            }
        }
    }

    /// A new worker's first dial ended (connected or not). If requests
    /// still wait, the oldest may start a worker of its own (returned, for
    /// the caller to start as with [`Workers::dispatch`]): the queue then
    /// gets connections as fast as dials end, not only on new arrivals.
    pub fn dialled(&self) -> Option<J> {
        let mut st = lock(&self.state);
        st.dialing = st.dialing.saturating_sub(1);
        if st.alive < self.cap && !self.closed.load(Ordering::Acquire) {
            let job = st.queue.pop_front()?;
            st.alive += 1;
            st.dialing += 1;
            return Some(job);
        }
        None
    }

    /// Ends idle workers now and busy ones when they finish (the load is
    /// over); queued jobs are still served first.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut lock(&self.state).idle);
        for mb in idle {
            // Out of `idle` with no job: `next` ends the worker.
            mb.wake.notify_one();
        }
    }

    /// Workers alive now.
    #[cfg(test)]
    pub fn alive(&self) -> usize {
        lock(&self.state).alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_go_to_idle_workers_then_new_ones_then_the_queue() {
        let w = Workers::new(2, Duration::from_secs(30));
        assert_eq!(w.dispatch(1), Some(1), "no worker yet: start one");
        assert_eq!(w.dispatch(2), Some(2), "below the cap: start another");
        assert_eq!(w.dialled(), None);
        assert_eq!(w.dialled(), None);
        assert_eq!(w.dispatch(3), None, "at the cap: queued");
        assert_eq!(w.dispatch(4), None);
        let mb = Arc::new(Mailbox::default());
        assert_eq!(
            w.next(&mb, &mut Deadline::default()).await,
            Some(3),
            "oldest queued first"
        );
        assert_eq!(w.next(&mb, &mut Deadline::default()).await, Some(4));
        // Queue empty: the worker goes idle and the next job is handed to it.
        let mut idle = Deadline::default();
        let wait = w.next(&mb, &mut idle);
        tokio::pin!(wait);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut wait)
            .await
            .is_err());
        assert_eq!(w.dispatch(5), None, "handed to the idle worker");
        assert_eq!(wait.await, Some(5));
        assert_eq!(w.alive(), 2);
    }

    #[test]
    fn no_more_than_a_few_connections_are_dialled_at_once() {
        let w = Workers::new(100, Duration::from_secs(30));
        let started = (0..10).filter_map(|j| w.dispatch(j)).count();
        assert_eq!(started, MAX_DIALING, "the rest wait for a free worker");
        // A dial ended: the oldest waiting request starts the next one.
        assert_eq!(w.dialled(), Some(MAX_DIALING));
        assert_eq!(w.dispatch(10), None);
        assert_eq!(lock(&w.state).queue.len(), 6);
        // Nothing waits: a dial ending starts none.
        for _ in 0..20 {
            while w.dialled().is_some() {}
        }
        assert_eq!(w.dispatch(11), Some(11));
    }

    #[tokio::test]
    async fn an_idle_worker_ends_after_the_timeout_and_on_close() {
        let w = Arc::new(Workers::new(4, Duration::from_millis(50)));
        assert_eq!(w.dispatch(()), Some(()));
        assert_eq!(w.dispatch(()), Some(()));
        assert_eq!(w.dialled(), None);
        assert_eq!(w.dialled(), None);
        let mb = Arc::new(Mailbox::default());
        assert_eq!(
            w.next(&mb, &mut Deadline::default()).await,
            None,
            "idle past the timeout"
        );
        assert_eq!(w.alive(), 1);
        // A second worker waiting is ended by close.
        let w2 = w.clone();
        let waiting = tokio::spawn(async move {
            let mb = Arc::new(Mailbox::default());
            w2.next(&mb, &mut Deadline::default()).await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        w.close();
        assert_eq!(waiting.await.expect("join"), None);
        assert_eq!(w.alive(), 0);
    }
}
