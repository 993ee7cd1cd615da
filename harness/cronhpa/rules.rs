//! What one job does when it fires, by the controller's rules
//! (`pkg/controller/cronjob.go`, `ScaleHPA` and `ScalePlainRef`), and the
//! message its status condition and Event carry. Pure: the caller reads the
//! objects and writes back what this returns.

/// The HPA as the controller reads it at a firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaState {
    pub min: i32,
    pub max: i32,
    /// status.currentReplicas (its last sync's).
    pub current: i32,
}

/// What a firing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HPA's new spec.minReplicas and spec.maxReplicas (combined mode).
    pub range: Option<(i32, i32)>,
    /// Whether the HPA's spec was written.
    pub hpa_updated: bool,
    /// The scale target's new spec.replicas, when the job scales it.
    pub scale_to: Option<i32>,
    /// The job's own message (without the controller's prefix).
    pub message: String,
}

/// A job firing against an HPA (the combined mode). `spec_replicas` is the
/// scale subresource's spec.replicas, which the messages print.
pub fn scale_hpa(target: i32, hpa: HpaState, name: &str, ns: &str, spec_replicas: i32) -> Outcome {
    let (mut min, mut max) = (hpa.min, hpa.max);
    let mut updated = false;
    if target > max {
        max = target;
        updated = true;
    }
    if target < min {
        min = target;
        updated = true;
    }
    if hpa.current == min && target < hpa.current {
        min = target;
        updated = true;
    }
    if hpa.current < target {
        min = target;
        updated = true;
    }
    if hpa.current >= target {
        return Outcome {
            range: Some((min, max)),
            hpa_updated: updated,
            scale_to: None,
            message: format!(
                "Skip scale replicas because HPA {name} in namespace {ns} current replicas:{spec_replicas} >= desired replicas:{target}."
            ),
        };
    }
    Outcome {
        range: Some((min, max)),
        hpa_updated: updated,
        scale_to: Some(target),
        message: format!("current replicas:{spec_replicas}, desired replicas:{target}."),
    }
}

/// A job firing against a Deployment: its replicas are set, always.
pub fn scale_plain(target: i32, spec_replicas: i32) -> Outcome {
    Outcome {
        range: None,
        hpa_updated: false,
        scale_to: Some(target),
        message: format!("current replicas:{spec_replicas}, desired replicas:{target}."),
    }
}

/// A firing on an excluded date: the job returns before it reads anything.
pub fn excluded(date: &str) -> Outcome {
    Outcome {
        range: None,
        hpa_updated: false,
        scale_to: None,
        message: format!("skip scaling activity,because of excludeDate ({date})."),
    }
}

/// The Event type, reason and status message the controller gives a job's
/// result, and the size it set.
pub fn status(
    job: &str,
    result: &Result<Outcome, String>,
) -> (&'static str, &'static str, String, Option<i32>) {
    match result {
        Ok(o) => ("Normal", "Succeed", succeeded(job, &o.message), o.scale_to),
        Err(why) => ("Warning", "Failed", failed(why), None),
    }
}

/// The Event (reason `Succeed`) and status message of a job that ran.
pub fn succeeded(job: &str, message: &str) -> String {
    format!("cron hpa job {job} executed successfully. {message}")
}

/// The Event (reason `Failed`, Warning) and status message of a job that failed.
pub fn failed(why: &str) -> String {
    format!("cron hpa failed to execute, because of {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 001's worked table: metric policy range [1, 10], current 5.
    #[test]
    fn seed_001_table() {
        let hpa = HpaState {
            min: 1,
            max: 10,
            current: 5,
        };
        let row = |schedule| {
            let o = scale_hpa(schedule, hpa, "h", "ns", 5);
            (o.range.unwrap(), o.scale_to.unwrap_or(hpa.current))
        };
        assert_eq!(row(5), ((1, 10), 5));
        assert_eq!(row(7), ((7, 10), 7));
        assert_eq!(row(3), ((1, 10), 5));
    }

    /// Where the seed is silent, the controller's rules decide.
    #[test]
    fn where_the_seed_is_silent() {
        // Above max: max is raised and min too, and the target scaled.
        let o = scale_hpa(
            12,
            HpaState {
                min: 1,
                max: 10,
                current: 5,
            },
            "h",
            "ns",
            5,
        );
        assert_eq!((o.range, o.scale_to), (Some((12, 12)), Some(12)));
        // A later, lower schedule after a morning raise: min comes down to
        // it, replicas stay for the HPA to bring down.
        let o = scale_hpa(
            2,
            HpaState {
                min: 7,
                max: 10,
                current: 7,
            },
            "h",
            "ns",
            7,
        );
        assert_eq!((o.range, o.scale_to), (Some((2, 10)), None));
        assert!(o.hpa_updated);
        // At the floor, a lower schedule lowers the floor.
        let o = scale_hpa(
            3,
            HpaState {
                min: 5,
                max: 10,
                current: 5,
            },
            "h",
            "ns",
            5,
        );
        assert_eq!(o.range, Some((3, 10)));
        // Nothing to change: the HPA is not written.
        let o = scale_hpa(
            5,
            HpaState {
                min: 1,
                max: 10,
                current: 5,
            },
            "h",
            "ns",
            5,
        );
        assert!(!o.hpa_updated);
    }

    #[test]
    fn messages_are_the_controllers() {
        let o = scale_hpa(
            3,
            HpaState {
                min: 1,
                max: 10,
                current: 5,
            },
            "httpbin",
            "demo",
            5,
        );
        assert_eq!(
            o.message,
            "Skip scale replicas because HPA httpbin in namespace demo current replicas:5 >= desired replicas:3."
        );
        let o = scale_hpa(
            7,
            HpaState {
                min: 1,
                max: 10,
                current: 5,
            },
            "httpbin",
            "demo",
            5,
        );
        assert_eq!(o.message, "current replicas:5, desired replicas:7.");
        assert_eq!(
            succeeded("morning", &o.message),
            "cron hpa job morning executed successfully. current replicas:5, desired replicas:7."
        );
        assert_eq!(
            scale_plain(4, 2).message,
            "current replicas:2, desired replicas:4."
        );
    }
}
