//! The run's CronHorizontalPodAutoscaler, resolved: which tier it adjusts
//! (the Deployment itself, or the HPA in front of it), the wall-clock
//! instant experiment t = 0 maps to, and when each job fires in the run.

use std::path::PathBuf;

use jiff::Zoned;

use super::Tier;
use crate::cronhpa::plan::{self, Firing};
use crate::cronhpa::{CronHorizontalPodAutoscaler, Target};
use crate::error::InputError;
use crate::manifests::Manifests;
use crate::recorder::{ScheduleJob, ScheduleMeta};
use crate::scenario::{Loaded, ScheduleController};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub object: CronHorizontalPodAutoscaler,
    pub file: PathBuf,
    pub target: Target,
    /// The tier of the embedded cluster it adjusts (none for a scenario
    /// whose HPA is the cluster's).
    pub tier: Option<usize>,
    pub controller: ScheduleController,
    /// Experiment t = 0 on the schedule's clock: `clock.start`, else the
    /// moment the scenario was prepared, in UTC.
    pub clock_start: Zoned,
    /// Every firing within the run's duration, in order.
    pub firings: Vec<Firing>,
}

/// The schedule of a run; `None` when the manifests hold no
/// CronHorizontalPodAutoscaler or `schedule.controller` is `off`.
pub(super) fn resolve(
    l: &Loaded,
    m: &Manifests,
    tiers: &[Tier],
) -> Result<Option<Schedule>, InputError> {
    let s = &l.scenario;
    let all: Vec<_> = m.cron_hpas().collect();
    let Some(&(cm, c)) = all.first() else {
        if s.clock.start.is_some() || s.schedule.controller != ScheduleController::Harness {
            // Harmless, but a sign the manifest was forgotten.
            let field = if s.clock.start.is_some() {
                "clock.start"
            } else {
                "schedule.controller"
            };
            return Err(l.err(
                field,
                "is set, but the manifests hold no CronHorizontalPodAutoscaler for it to apply to",
            ));
        }
        return Ok(None);
    };
    if let Some((second, _)) = all.get(1) {
        return Err(second.err(
            "metadata.name",
            format!(
                "a second CronHorizontalPodAutoscaler; a run has one schedule, and {} ({}:{}) is it",
                cm.name(),
                cm.file.display(),
                cm.line
            ),
        ));
    }
    if s.schedule.controller == ScheduleController::Off {
        return Ok(None);
    }
    let Some(target) = c.target() else {
        // Manifests::validate has refused it already.
        return Ok(None);
    };
    let tier = tiers.iter().position(|t| match &target {
        Target::Deployment(name) => t.name() == name,
        Target::Hpa(name) => t
            .hpa
            .as_ref()
            .is_some_and(|h| h.metadata.name.as_deref() == Some(name)),
    });
    if tier.is_none() && !tiers.is_empty() {
        let runs: Vec<String> = tiers
            .iter()
            .map(|t| match &t.hpa {
                Some(h) => format!(
                    "Deployment {} (HPA {})",
                    t.name(),
                    h.metadata.name.as_deref().unwrap_or_default()
                ),
                None => format!("Deployment {}", t.name()),
            })
            .collect();
        return Err(cm.err(
            "spec.scaleTargetRef.name",
            format!(
                "`{}` is not a workload of the run; it scales {}",
                c.spec.scale_target_ref.name,
                runs.join(" and ")
            ),
        ));
    }
    let clock_start = match &s.clock.start {
        Some(cs) => cs.0.clone(),
        None => Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC),
    };
    let firings = plan::firings(c, &clock_start, s.duration.as_secs_f64())
        .map_err(|e| cm.err("spec.jobs", e))?;
    Ok(Some(Schedule {
        object: c.clone(),
        file: cm.file.clone(),
        target,
        tier,
        controller: s.schedule.controller,
        clock_start,
        firings,
    }))
}

impl Schedule {
    /// `CronHorizontalPodAutoscaler/name`.
    pub fn object_ref(&self) -> String {
        format!("{}/{}", crate::cronhpa::object::KIND, self.object.name())
    }

    pub fn target_ref(&self) -> String {
        match &self.target {
            Target::Deployment(n) => format!("Deployment/{n}"),
            Target::Hpa(n) => format!("HorizontalPodAutoscaler/{n}"),
        }
    }

    /// What run.json records of it. `known_in_advance`: whether the
    /// harness plans the firings (not when a cluster's controller runs it).
    pub fn meta(&self, controller: &str, known_in_advance: bool) -> ScheduleMeta {
        let spec = &self.object.spec;
        ScheduleMeta {
            object: self.object_ref(),
            target: self.target_ref(),
            controller: controller.into(),
            clock_start: self.clock_start.to_string(),
            jobs: spec
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| ScheduleJob {
                    name: j.name.clone(),
                    schedule: j.schedule.clone(),
                    target_size: j.target_size,
                    run_once: j.run_once,
                    fires_at: if known_in_advance {
                        self.firings
                            .iter()
                            .filter(|f| f.job == i)
                            .map(|f| f.t)
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            exclude_dates: spec.exclude_dates.clone(),
        }
    }
}
