//! A pod as a queue: `concurrency` slots, each request holds one for the
//! service time and charges its CPU at admission, as the built-in pod's
//! capacity model does with real sockets.

use std::collections::VecDeque;

/// The pod model's numbers (from `local.pods.model`), in seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Model {
    pub(super) service: f64,
    pub(super) cpu_per_request: f64,
    pub(super) concurrency: usize,
    pub(super) memory_base: u64,
}

/// Memory a request in flight adds, as the built-in pod model reports it.
const MEMORY_PER_INFLIGHT: u64 = 64 << 10;

pub(crate) struct Queue {
    /// When each concurrency slot is next free (cluster seconds).
    free_at: Vec<f64>,
    /// End instants of admitted requests not yet finished, ascending.
    ends: VecDeque<f64>,
    pub(super) requests: u64,
    /// CPU seconds charged at admission.
    scheduled_cpu: f64,
}

impl Queue {
    pub(super) fn new(m: &Model) -> Self {
        Self {
            free_at: vec![f64::NEG_INFINITY; m.concurrency],
            ends: VecDeque::new(),
            requests: 0,
            scheduled_cpu: 0.0,
        }
    }

    /// Admits a request arriving at `t`; returns when it completes.
    pub(super) fn admit(&mut self, t: f64, m: &Model) -> f64 {
        self.requests += 1;
        self.scheduled_cpu += m.cpu_per_request;
        let slot = (0..self.free_at.len())
            .min_by(|&a, &b| self.free_at[a].total_cmp(&self.free_at[b]))
            .unwrap_or(0);
        let start = self.free_at[slot].max(t);
        let end = start + m.service;
        self.free_at[slot] = end;
        self.ends.push_back(end);
        end
    }

    /// Work still queued or in service at `now`.
    pub(super) fn busy(&self, now: f64) -> bool {
        self.ends.back().is_some_and(|&e| e > now)
    }

    /// CPU actually executed by `now`, in nanoseconds: the charge at
    /// admission minus the work still ahead (as the built-in pod model
    /// computes it).
    pub(super) fn cpu_ns(&self, now: f64, m: &Model) -> u64 {
        let pending: f64 = self.free_at.iter().map(|f| (f - now).max(0.0)).sum();
        let pending_cpu = if m.service > 0.0 {
            pending * m.cpu_per_request / m.service
        } else {
            0.0
        };
        ((self.scheduled_cpu - pending_cpu).max(0.0) * 1e9).round() as u64
    }

    pub(super) fn in_flight(&mut self, now: f64) -> u64 {
        while self.ends.front().is_some_and(|&e| e <= now) {
            self.ends.pop_front();
        }
        self.ends.len() as u64
    }

    /// Memory as the built-in pod reports it, with `in_flight` requests.
    pub(super) fn memory(m: &Model, in_flight: u64) -> u64 {
        m.memory_base + MEMORY_PER_INFLIGHT * in_flight
    }
}
