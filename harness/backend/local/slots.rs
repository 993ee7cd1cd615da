//! An exact multi-server FIFO queue in virtual time, shared by the built-in
//! pod's capacity model and the gateway instances': `concurrency` slots,
//! each request holds one for the service time, and CPU is accounted as
//! executed so far.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct Slots {
    service_time: Duration,
    cpu_per_request: Duration,
    queue: Mutex<Queue>,
}

struct Queue {
    /// Each slot's next-free instant; arrivals take the earliest-free slot.
    free_at: BinaryHeap<Reverse<Instant>>,
    /// CPU of all requests ever admitted, counted at admission.
    scheduled_cpu_ns: u128,
}

impl Slots {
    /// `concurrency` must be at least 1 (callers check their bounds).
    pub(crate) fn new(
        concurrency: usize,
        service_time: Duration,
        cpu_per_request: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            service_time,
            cpu_per_request,
            queue: Mutex::new(Queue {
                free_at: (0..concurrency.max(1)).map(|_| Reverse(now)).collect(),
                scheduled_cpu_ns: 0,
            }),
        }
    }

    /// Admits one request: returns its (start, end) in real time.
    pub(crate) fn reserve(&self) -> (Instant, Instant) {
        let now = Instant::now();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.scheduled_cpu_ns += self.cpu_per_request.as_nanos();
        let Some(mut top) = q.free_at.peek_mut() else {
            return (now, now);
        };
        let start = top.0.max(now);
        let end = start + self.service_time;
        *top = Reverse(end);
        (start, end)
    }

    /// CPU actually executed so far. CPU is charged at admission and the part
    /// not yet executed is subtracted: after `now` every slot is continuously
    /// busy until its free instant (arrivals are all <= now, so no gaps), so
    /// the unexecuted work is exactly Σ max(0, free_at − now) at the model's
    /// CPU rate cpu_per_request / service_time. Cancelled requests keep their
    /// slot and thus their CPU, like a server that cannot abort work.
    pub(crate) fn cpu_busy_ns(&self) -> u64 {
        let now = Instant::now();
        let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let pending: u128 = q
            .free_at
            .iter()
            .map(|Reverse(t)| t.saturating_duration_since(now).as_nanos())
            .sum();
        let svc = self.service_time.as_nanos();
        // Zero service time: work completes at admission, nothing pending.
        let pending_cpu = (pending * self.cpu_per_request.as_nanos())
            .checked_div(svc)
            .unwrap_or(0);
        u64::try_from(q.scheduled_cpu_ns.saturating_sub(pending_cpu)).unwrap_or(u64::MAX)
    }
}
