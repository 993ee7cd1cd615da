//! What one sample records of the scale target: each pod's load, CPU and
//! memory over the sample, and the replica counts, from the pods' cumulative
//! counters. The same for every embedded backend.

use super::{Core, Phase, Pod};
use crate::recorder::{PodSample, Replicas};

/// A pod's cumulative counters at an observation; CPU in nanoseconds of
/// experiment time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading {
    pub(crate) requests: u64,
    pub(crate) cpu_ns: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) in_flight: u64,
}

impl<P> Core<P> {
    /// The replicas and pods over a sample of `dt` experiment seconds;
    /// `read` gives a pod's counters (`None` for a pod not started).
    pub(crate) fn observe(
        &mut self,
        dt: f64,
        mut read: impl FnMut(&mut Pod<P>) -> Option<Reading>,
    ) -> (Replicas, Vec<PodSample>) {
        let dt = dt.max(1e-9);
        let cpu_request = self.cfg.cpu_request_milli.filter(|r| *r > 0);
        let mut pods = Vec::with_capacity(self.pods.len());
        for p in &mut self.pods {
            let r = read(p).unwrap_or_default();
            let (r0, c0) = p.last.unwrap_or((r.requests, r.cpu_ns));
            p.last = Some((r.requests, r.cpu_ns));
            let cpu_millicores = r.cpu_ns.saturating_sub(c0) as f64 / 1e9 / dt * 1000.0;
            pods.push(PodSample {
                name: p.name.clone(),
                phase: p.phase.name().into(),
                ready: p.ready_since.is_some() && p.phase != Phase::Pending,
                terminating: p.phase == Phase::Terminating,
                qps: r.requests.saturating_sub(r0) as f64 / dt,
                cpu_millicores,
                cpu_utilization: cpu_request.map(|r| cpu_millicores / r as f64 * 100.0),
                memory_bytes: r.memory_bytes,
                in_flight: r.in_flight,
                restarts: p.restarts,
            });
        }
        let replicas = Replicas {
            spec: self.spec_replicas,
            current: self.current(),
            ready: self
                .pods
                .iter()
                .filter(|p| p.phase != Phase::Terminating && p.ready_since.is_some())
                .count() as i32,
            desired: self.status.desired,
        };
        (replicas, pods)
    }

    /// Takes the pods' counters now as the base of the next observation, so
    /// the first sample does not count the warm-up.
    pub(crate) fn rebase(&mut self, mut read: impl FnMut(&mut Pod<P>) -> Option<Reading>) {
        for p in &mut self.pods {
            if let Some(r) = read(p) {
                p.last = Some((r.requests, r.cpu_ns));
            }
        }
    }
}
