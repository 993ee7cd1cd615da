//! When a CronHorizontalPodAutoscaler's jobs fire during a run: the
//! experiment's t = 0 is a wall-clock instant (`clock.start`), and each job
//! fires at its schedule's instants after it, in experiment seconds. Jobs
//! due at the same instant run in the order written (seed 001: "executed in
//! sequence"); a time that passed before the run started counts from the
//! next period; a firing on an excluded date is recorded and does nothing.

use jiff::Zoned;

use super::cron::{self, Plan};
use super::object::CronHorizontalPodAutoscaler;

/// Most firings one run may hold (`* * * * * *` for a day is 86,400).
pub const MAX_FIRINGS: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// Experiment seconds.
    pub t: f64,
    /// Index into `spec.jobs`.
    pub job: usize,
    /// The wall-clock instant, in the clock's zone.
    pub at: Zoned,
    /// The `excludeDates` entry that skips it.
    pub excluded: Option<String>,
}

/// Every firing in (t = 0, `until`] seconds of a run that starts at `start`.
pub fn firings(
    c: &CronHorizontalPodAutoscaler,
    start: &Zoned,
    until: f64,
) -> Result<Vec<Firing>, String> {
    let excludes = c
        .spec
        .exclude_dates
        .iter()
        .map(|e| cron::parse(e).map(|p| (e.clone(), p)))
        .collect::<Result<Vec<_>, _>>()?;
    let t0 = start.timestamp().as_nanosecond();
    let mut out = Vec::new();
    for (i, job) in c.spec.jobs.iter().enumerate() {
        let plan = cron::parse(&job.schedule)?;
        let mut at = start.clone();
        while let Some(next) = plan.next(&at, start) {
            let t = (next.timestamp().as_nanosecond() - t0) as f64 / 1e9;
            if t > until {
                break;
            }
            let excluded = excludes
                .iter()
                .find(|(_, p): &&(String, Plan)| p.matches_day(&next))
                .map(|(e, _)| e.clone());
            out.push(Firing {
                t,
                job: i,
                at: next.clone(),
                excluded,
            });
            if out.len() > MAX_FIRINGS {
                return Err(format!(
                    "the jobs fire more than {MAX_FIRINGS} times in the run; \
                     schedule them less often or shorten the run"
                ));
            }
            if job.run_once {
                break;
            }
            at = next;
        }
    }
    // Stable: jobs due at one instant keep the order written.
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::object::{CronHpaSpec, Job};
    use super::*;

    fn cron(jobs: &[(&str, &str, bool)], exclude: &[&str]) -> CronHorizontalPodAutoscaler {
        CronHorizontalPodAutoscaler {
            spec: CronHpaSpec {
                exclude_dates: exclude.iter().map(|s| s.to_string()).collect(),
                jobs: jobs
                    .iter()
                    .map(|(n, s, once)| Job {
                        name: n.to_string(),
                        schedule: s.to_string(),
                        run_once: *once,
                        target_size: 1,
                    })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn start() -> Zoned {
        "2026-12-01T08:55:00+00:00[UTC]".parse().unwrap()
    }

    #[test]
    fn clock_start_maps_wall_clock_to_experiment_time() {
        let f = firings(
            &cron(&[("nine", "0 0 9 * * *", false)], &[]),
            &start(),
            90_000.0,
        )
        .unwrap();
        assert_eq!(f.iter().map(|f| f.t).collect::<Vec<_>>(), [300.0, 86_700.0]);
    }

    #[test]
    fn same_instant_in_written_order_and_run_once() {
        let c = cron(
            &[
                ("b", "0 */5 * * * *", false),
                ("a", "0 0 9 * * *", false),
                ("once", "0 */5 * * * *", true),
            ],
            &[],
        );
        let f = firings(&c, &start(), 600.0).unwrap();
        let order: Vec<(f64, usize)> = f.iter().map(|f| (f.t, f.job)).collect();
        assert_eq!(order, [(300.0, 0), (300.0, 1), (300.0, 2), (600.0, 0)]);
    }

    #[test]
    fn a_passed_time_waits_for_its_next_period() {
        // 08:55:00 itself has passed when the run starts at 08:55:00.
        let f = firings(
            &cron(&[("j", "0 55 8 * * *", false)], &[]),
            &start(),
            3600.0,
        )
        .unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn excluded_days_are_recorded() {
        // 2026-12-04 is a Friday.
        let c = cron(&[("j", "0 0 9 * * *", false)], &["* * * * * 5"]);
        let f = firings(&c, &start(), 4.0 * 86_400.0).unwrap();
        let ex: Vec<bool> = f.iter().map(|f| f.excluded.is_some()).collect();
        assert_eq!(ex, [false, false, false, true]);
    }

    #[test]
    fn too_many_firings_is_an_error() {
        let c = cron(&[("j", "* * * * * *", false)], &[]);
        assert!(firings(&c, &start(), 3.0 * 86_400.0).is_err());
    }
}
