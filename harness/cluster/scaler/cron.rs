//! A CronHorizontalPodAutoscaler next to the HPA: at each planned firing
//! it applies the controller's rules (`cronhpa::rules`) to the scale target
//! (the Deployment's replicas, or the HPA's range and then the replicas)
//! and posts the Event the real controller posts.

use super::Scaler;
use crate::cronhpa::plan::Firing;
use crate::cronhpa::rules::{self, HpaState};
use crate::cronhpa::{CronHorizontalPodAutoscaler, Target};
use crate::recorder::{Event, CRON_SOURCE};

pub(crate) struct CronScaler {
    object: CronHorizontalPodAutoscaler,
    target: Target,
    firings: Vec<Firing>,
    next: usize,
}

/// What a firing did to the scale target.
pub(crate) struct Fired {
    pub(crate) event: Event,
    /// The target's new spec.replicas, when the job set it.
    pub(crate) scale_to: Option<i32>,
}

impl CronScaler {
    pub(crate) fn new(
        object: CronHorizontalPodAutoscaler,
        target: Target,
        firings: Vec<Firing>,
    ) -> Self {
        Self {
            object,
            target,
            firings,
            next: 0,
        }
    }

    /// Experiment seconds of the next firing.
    pub(crate) fn next_due(&self) -> Option<f64> {
        self.firings.get(self.next).map(|f| f.t)
    }

    /// The next firing, if due by experiment second `t`: the rules applied
    /// to the target as it is (`spec_replicas`; `hpa`, the HPA scaler in
    /// the combined mode, whose range it may move), the event stamped at
    /// cluster time `now`.
    pub(crate) fn fire_next(
        &mut self,
        t: f64,
        now: f64,
        spec_replicas: i32,
        hpa: Option<&mut (dyn Scaler + '_)>,
    ) -> Option<Fired> {
        let f = self
            .firings
            .get(self.next)
            .filter(|f| f.t <= t + 1e-9)?
            .clone();
        self.next += 1;
        let job = &self.object.spec.jobs[f.job];
        let outcome = match (&f.excluded, &self.target) {
            (Some(date), _) => Ok(rules::excluded(date)),
            (None, Target::Deployment(_)) => Ok(rules::scale_plain(job.target_size, spec_replicas)),
            (None, Target::Hpa(name)) => match hpa {
                Some(h) => match h.hpa_range() {
                    Some(r) => {
                        let ns = self
                            .object
                            .metadata
                            .namespace
                            .as_deref()
                            .unwrap_or("default");
                        let o = rules::scale_hpa(
                            job.target_size,
                            HpaState {
                                min: r.min,
                                max: r.max,
                                current: r.current,
                            },
                            name,
                            ns,
                            spec_replicas,
                        );
                        if let (true, Some((min, max))) = (o.hpa_updated, o.range) {
                            h.set_hpa_range(min, max);
                        }
                        Ok(o)
                    }
                    None => Err(format!("Failed to get HorizontalPodAutoscaler Ref {name}")),
                },
                None => Err(format!("Failed to get HorizontalPodAutoscaler Ref {name}")),
            },
        };
        let object = format!("{}/{}", crate::cronhpa::object::KIND, self.object.name());
        let (type_, reason, message, scale_to) = rules::status(&job.name, &outcome);
        let changed = scale_to.filter(|&n| n != spec_replicas);
        Some(Fired {
            event: Event {
                t: now,
                type_: type_.into(),
                reason: reason.into(),
                object,
                source: CRON_SOURCE.into(),
                message,
                from_replicas: changed.map(|_| spec_replicas),
                to_replicas: changed,
                ..Default::default()
            },
            scale_to,
        })
    }
}
