//! The scaler seam: at each of its syncs, the core hands a scale target's
//! scaler what the cluster looks like (replicas, pods, metrics) and gets a
//! decision back (a new size, events, the status to record). The HPA
//! controller is one scaler; each scaler is written once and runs on every
//! embedded backend.

pub(crate) mod cron;
pub(crate) mod hpa;

use super::metrics::Snapshot;
use crate::autoscaler::PodInfo;
use crate::recorder::{Event, HpaSample};

/// What a scaler sees at a sync.
pub(crate) struct View<'a> {
    /// The scale target's spec.replicas.
    pub spec_replicas: i32,
    /// Its pods that exist and are not terminating (status.replicas).
    pub current: i32,
    pub pods: &'a [PodInfo],
    pub metrics: &'a Snapshot,
}

/// What a scaler decided at a sync.
pub(crate) struct Decision {
    /// The scale target's new spec.replicas, when it rescaled.
    pub new_size: Option<i32>,
    /// Events at the sync's instant (cluster time).
    pub events: Vec<Event>,
    /// The status to record (metrics, conditions).
    pub status: HpaSample,
    /// It can act on its metrics (the HPA's ScalingActive=True).
    pub active: bool,
    /// The replicas it wants (the HPA's status.desiredReplicas).
    pub desired: i32,
}

/// An HPA's spec.minReplicas, spec.maxReplicas and status.currentReplicas,
/// as a schedule reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HpaRange {
    pub min: i32,
    pub max: i32,
    pub current: i32,
}

pub(crate) trait Scaler: Send {
    /// One sync at cluster time `now` (seconds; the scheduled instant).
    fn sync(&mut self, now: f64, view: &View<'_>) -> Decision;
    /// Its replica range, when it is an HPA that a schedule may adjust.
    fn hpa_range(&self) -> Option<HpaRange> {
        None
    }
    /// Writes the HPA's spec.minReplicas and spec.maxReplicas.
    fn set_hpa_range(&mut self, _min: i32, _max: i32) {}
    /// The load engine's statistics of the sample that ended at cluster
    /// time `t` (a Lua policy's latency and error rate read them).
    fn client_stats(&mut self, _t: f64, _s: &crate::load::IntervalStats) {}
}
