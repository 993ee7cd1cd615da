//! Scheduled scaling (seed 001) as kubernetes-cronhpa-controller does it:
//! the CronHorizontalPodAutoscaler object, its cron expressions, the
//! controller's rules for a firing, and when each job fires in a run. Pure:
//! the embedded cluster and the kube backend act on what this decides.

pub(crate) mod cron;
pub(crate) mod object;
pub(crate) mod plan;
pub(crate) mod rules;

pub(crate) use object::{CronHorizontalPodAutoscaler, Target};
