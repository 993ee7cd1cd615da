//! Hands due requests to long-lived connection workers (HTTP/1.1), the
//! open model without a task per request (k6's arrival-rate executors with
//! pre-allocated VUs, wrk2's per-connection schedule).
//!
//! A due request goes to the worker that went idle last (its connection is
//! the warmest), else starts a new worker if fewer than `cap` are alive,
//! fewer than [`MAX_DIALING`] are still dialling and a connection is worth
//! it (below), else waits in a FIFO queue for the next worker to be free.
//!
//! The dialling limit and the worth test are what keep the connection count
//! (and memory) flat. After the generator itself stalled for a few
//! milliseconds, its backlog is all due at once; opening a connection for
//! each (a hundred after 20 ms at 5,000 req/s) costs memory for as long as
//! the run (freed memory stays mapped), while the busy connections to a
//! fast server serve that backlog within a fraction of a millisecond. A new
//! connection serves the oldest request waiting, so it is opened unless the
//! busy workers are expected to serve every request waiting within L/4,
//! L being how late the oldest is (their number waiting times the workers'
//! mean time per request over their number). A request on time still opens
//! one whenever none is idle and none waits, and a late one to a slow server
//! does too, whose workers take long. So does a queue that the workers
//! serve no faster than it fills: it grows as its oldest gets later, and
//! counting only the next free worker (as this did until 2026-12-05) held
//! 44 connections busy at 1.3 ms a request (34,000 req/s) against 40,000
//! due, the queue 250-360 ms deep for the whole run.
//!
//! The wait is the request's, part of its response time, and it holds its
//! in-flight permit meanwhile, so nothing is hidden: the open model still
//! drops at the in-flight cap, it just stops opening connections at the
//! connection cap. A worker idle for `idle_timeout` ends and closes its
//! connection, so the workers follow the current concurrency rather than
//! the highest a long run ever reached (memory is per worker). A queued
//! request is a few dozen bytes, not a task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

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
    /// Mean time a worker spends on a job (nanoseconds, moving average; 0
    /// until one is done).
    per_job_ns: AtomicU64,
    /// When a worker last finished a job or an idle one was handed one
    /// (nanoseconds since `origin`): busy workers older than that by a
    /// whole mean job time are stuck, not about to be free.
    fresh_ns: AtomicU64,
    origin: Instant,
}

struct State<J> {
    /// Jobs no worker has taken yet, oldest first, with when each was due.
    queue: VecDeque<(J, Instant)>,
    /// Workers waiting for a job, the most recently idle last.
    idle: Vec<Arc<Mailbox<J>>>,
    /// Workers started and not ended.
    alive: usize,
    /// Workers started and not yet through their first dial.
    dialing: usize,
}

impl<J> State<J> {
    /// Counts a new worker (alive, dialling) and gives it the oldest job
    /// waiting, after `arriving` joins the queue: a request queued behind
    /// a server that stopped answering is not overtaken for good.
    fn start_worker(&mut self, arriving: Option<(J, Instant)>) -> Option<J> {
        self.queue.extend(arriving);
        let (job, _) = self.queue.pop_front()?;
        self.alive += 1;
        self.dialing += 1;
        Some(job)
    }
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
            per_job_ns: AtomicU64::new(0),
            fresh_ns: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    fn refresh(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.origin).as_nanos();
        self.fresh_ns
            .fetch_max(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A worker spent `took` on a job (waiting for its connection, sending,
    /// reading the response), done at `now`.
    pub fn served(&self, took: Duration, now: Instant) {
        self.refresh(now);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.per_job_ns.load(Ordering::Relaxed);
        // Weight 1/16: follows a change of the server's pace within a few
        // dozen requests. Concurrent updates may lose one; it is a mean.
        let new = if old == 0 {
            ns
        } else {
            old - old / 16 + ns / 16
        };
        self.per_job_ns.store(new.max(1), Ordering::Relaxed);
    }

    /// Whether a new connection is worth it at `now` for the job it would
    /// serve, the oldest of `waiting` (due at `due`); see the module's
    /// documentation.
    fn worth_a_connection(
        &self,
        st: &State<J>,
        waiting: usize,
        due: Instant,
        now: Instant,
    ) -> bool {
        let late = now.saturating_duration_since(due);
        let per_job = Duration::from_nanos(self.per_job_ns.load(Ordering::Relaxed));
        if late.is_zero() || per_job.is_zero() {
            return true;
        }
        // A server that stopped answering: the mean says nothing of when.
        let fresh = self.origin + Duration::from_nanos(self.fresh_ns.load(Ordering::Relaxed));
        if now.saturating_duration_since(fresh) > per_job {
            return true;
        }
        // When the busy workers will have served all those waiting.
        let drain_ns = per_job.as_nanos() * waiting as u128 / st.alive.max(1) as u128;
        drain_ns * 4 > late.as_nanos()
    }

    /// Gives `job`, due at `due`, to an idle worker or queues it;
    /// `Some(job)` when the caller is to start a new worker with it
    /// (counted alive and dialling already; it calls [`Workers::dialled`]
    /// after its first dial).
    pub fn dispatch(&self, job: J, due: Instant, now: Instant) -> Option<J> {
        let mut st = lock(&self.state);
        if let Some(mb) = st.idle.pop() {
            self.refresh(now);
            // Stored under the state lock: a worker no longer in `idle`
            // always finds its job (see `next`).
            *lock(&mb.job) = Some(job);
            drop(st);
            mb.wake.notify_one();
            return None;
        }
        let oldest_due = st.queue.front().map_or(due, |&(_, d)| d);
        if st.alive < self.cap
            && st.dialing < MAX_DIALING
            && self.worth_a_connection(&st, st.queue.len() + 1, oldest_due, now)
        {
            return st.start_worker(Some((job, due)));
        }
        st.queue.push_back((job, due));
        None
    }

    /// The worker's next job, waiting up to the idle timeout from `now`
    /// (on `idle`, the worker's own timer); None: the worker is to end (it
    /// is no longer counted alive).
    pub async fn next(&self, mb: &Arc<Mailbox<J>>, idle: &mut Deadline, now: Instant) -> Option<J> {
        {
            let mut st = lock(&self.state);
            if let Some((j, _)) = st.queue.pop_front() {
                return Some(j);
            }
            if self.closed.load(Ordering::Acquire) {
                st.alive -= 1;
                return None;
            }
            st.idle.push(mb.clone());
        }
        let deadline = now + self.idle_timeout;
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

    /// A new worker's first dial ended (connected or not) at `now`. If
    /// requests still wait, the oldest may start a worker of its own
    /// (returned, for the caller to start as with [`Workers::dispatch`]):
    /// the queue then gets connections as fast as dials end, not only on
    /// new arrivals, where they are worth it.
    pub fn dialled(&self, now: Instant) -> Option<J> {
        let mut st = lock(&self.state);
        st.dialing = st.dialing.saturating_sub(1);
        if st.alive < self.cap && !self.closed.load(Ordering::Acquire) {
            let &(_, due) = st.queue.front()?;
            if !self.worth_a_connection(&st, st.queue.len(), due, now) {
                return None;
            }
            return st.start_worker(None);
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
        let t = Instant::now();
        let w = Workers::new(2, Duration::from_secs(30));
        assert_eq!(w.dispatch(1, t, t), Some(1), "no worker yet: start one");
        assert_eq!(w.dispatch(2, t, t), Some(2), "below the cap: start another");
        assert_eq!(w.dialled(t), None);
        assert_eq!(w.dialled(t), None);
        assert_eq!(w.dispatch(3, t, t), None, "at the cap: queued");
        assert_eq!(w.dispatch(4, t, t), None);
        let mb = Arc::new(Mailbox::default());
        assert_eq!(
            w.next(&mb, &mut Deadline::default(), Instant::now()).await,
            Some(3),
            "oldest queued first"
        );
        assert_eq!(
            w.next(&mb, &mut Deadline::default(), Instant::now()).await,
            Some(4)
        );
        // Queue empty: the worker goes idle and the next job is handed to it.
        let mut idle = Deadline::default();
        let wait = w.next(&mb, &mut idle, Instant::now());
        tokio::pin!(wait);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut wait)
            .await
            .is_err());
        assert_eq!(w.dispatch(5, t, t), None, "handed to the idle worker");
        assert_eq!(wait.await, Some(5));
        assert_eq!(w.alive(), 2);
    }

    #[test]
    fn no_more_than_a_few_connections_are_dialled_at_once() {
        let t = Instant::now();
        let w = Workers::new(100, Duration::from_secs(30));
        let started = (0..10).filter_map(|j| w.dispatch(j, t, t)).count();
        assert_eq!(started, MAX_DIALING, "the rest wait for a free worker");
        // A dial ended: the oldest waiting request starts the next one.
        assert_eq!(w.dialled(t), Some(MAX_DIALING));
        assert_eq!(w.dispatch(10, t, t), None);
        assert_eq!(lock(&w.state).queue.len(), 6);
        // Nothing waits: a dial ending starts none.
        for _ in 0..20 {
            while w.dialled(t).is_some() {}
        }
        assert_eq!(w.dispatch(11, t, t), Some(11));
    }

    #[tokio::test]
    async fn an_idle_worker_ends_after_the_timeout_and_on_close() {
        let t = Instant::now();
        let w = Arc::new(Workers::new(4, Duration::from_millis(50)));
        assert_eq!(w.dispatch((), t, t), Some(()));
        assert_eq!(w.dispatch((), t, t), Some(()));
        assert_eq!(w.dialled(t), None);
        assert_eq!(w.dialled(t), None);
        let mb = Arc::new(Mailbox::default());
        assert_eq!(
            w.next(&mb, &mut Deadline::default(), Instant::now()).await,
            None,
            "idle past the timeout"
        );
        assert_eq!(w.alive(), 1);
        // A second worker waiting is ended by close.
        let w2 = w.clone();
        let waiting = tokio::spawn(async move {
            let mb = Arc::new(Mailbox::default());
            w2.next(&mb, &mut Deadline::default(), Instant::now()).await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        w.close();
        assert_eq!(waiting.await.expect("join"), None);
        assert_eq!(w.alive(), 0);
    }

    #[test]
    fn a_late_request_opens_a_connection_only_if_the_busy_ones_are_slow() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // 30 workers busy on a fast server: 200 µs per request.
        let w = Workers::new(100, Duration::from_secs(30));
        for j in 0..30 {
            assert_eq!(w.dispatch(j, t0, t0), Some(j));
            w.dialled(t0);
        }
        // A backlog 20 ms late after a generator stall, the busy workers
        // just handed theirs: they serve all 60 within 0.4 ms (< 20/4 ms),
        // so none opens a connection, nor does a dial that ends, nor a
        // request on time behind them (a connection serves the oldest).
        let now = t0 + ms(20);
        w.served(Duration::from_micros(200), now);
        for j in 100..160 {
            assert_eq!(w.dispatch(j, t0, now), None);
        }
        assert_eq!(w.dialled(now), None);
        assert_eq!(w.dispatch(200, now, now), None);
        assert_eq!(w.alive(), 30);
        // But if none of them is done within a mean job time, the server
        // has stalled: the oldest waiting gets a connection.
        let later = now + Duration::from_micros(300);
        assert_eq!(w.dispatch(201, later, later), Some(100));
        assert_eq!(w.dialled(later), Some(101));
        // With the backlog served, one on time opens one when none is idle.
        lock(&w.state).queue.clear();
        assert_eq!(w.dispatch(202, later, later), Some(202));

        // The same backlog to a slow server (1 s per request): worth it.
        let w = Workers::new(100, Duration::from_secs(30));
        for j in 0..30 {
            assert_eq!(w.dispatch(j, t0, t0), Some(j));
            w.dialled(t0);
        }
        w.served(Duration::from_secs(1), t0);
        assert_eq!(w.dispatch(100, t0, now), Some(100));
        // Dials still go at most MAX_DIALING at once, each for the oldest
        // waiting; a dial that ends starts the next.
        let queued: Vec<_> = (101..110).filter_map(|j| w.dispatch(j, t0, now)).collect();
        assert_eq!(queued, [101, 102, 103]);
        assert_eq!(w.dialled(now), Some(104));
    }

    #[test]
    fn a_queue_the_busy_workers_cannot_keep_up_with_gets_connections() {
        let t0 = Instant::now();
        // 44 workers at 1.3 ms a request serve 33,800 req/s; 40,000 are due
        // (one every 25 µs). What waits grows as its oldest gets later, and
        // each busy worker is free within 30 µs: the next free one alone
        // says a backlog 10 ms late will be served at once.
        let w = Workers::new(64, Duration::from_secs(30));
        for j in 0..44 {
            assert_eq!(w.dispatch(j, t0, t0), Some(j));
            w.dialled(t0);
        }
        let now = t0 + Duration::from_millis(10);
        w.served(Duration::from_micros(1300), now);
        // Everything due since the oldest waiting, 10 ms ago, waits too.
        let every = Duration::from_micros(25);
        {
            let mut st = lock(&w.state);
            st.queue = (0..400u32).map(|i| (1000 + i, t0 + every * i)).collect();
        }
        // 401 waiting take the 44 workers 11.8 ms: more than 10/4.
        assert_eq!(w.dispatch(2000, now, now), Some(1000));
        assert_eq!(w.dialled(now), Some(1001));
    }
}
