//! The run's CronHorizontalPodAutoscaler on a real cluster, one of two ways
//! (`schedule.controller`, or `--schedule-controller`):
//!
//! - `cluster`: kubernetes-cronhpa-controller in the cluster runs it. The
//!   object is applied into the run namespace; a watch on it turns each new
//!   or changed entry of `status.conditions` (one per job: its last run,
//!   `Submitted`, `Succeed` or `Failed`) into an event at the condition's
//!   `lastProbeTime`. The controller also posts an Event for each run, with
//!   the same reason and message, right after it wrote that condition
//!   (`pkg/controller/cronmanager.go`, `JobResultHandler`); that copy is
//!   dropped from the Events watch (`duplicate`), so a firing is recorded
//!   once, from the status, which is what the controller keeps.
//! - `harness`: the cluster need not have the CRD, so the object is not
//!   applied; the harness plays the controller. At experiment t = 0 it plans
//!   the firings on the real clock (in `clock.start`'s zone, else UTC), and
//!   at each one applies the controller's rules (`cronhpa::rules`): it reads
//!   the HPA and the scale subresource, writes the HPA's min/max by
//!   server-side apply under its own field manager (`SCHEDULE_MANAGER`: the
//!   run's apply of the HPA keeps its other fields), patches the scale
//!   subresource when the job scales, and posts an events.k8s.io/v1 Event
//!   about the object it acted on (the CronHPA is not in the cluster), with
//!   the writes in `controller`. The firing is recorded directly; the
//!   Event's copy from the Events watch is dropped. A failed API call is a `Failed` firing and the run goes
//!   on (the real controller retries for up to 10 minutes; in a run that
//!   would blur when the job acted, so the harness records the failure).

use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference};
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::json;

use super::controller::{self, reference, Note};
use super::{api_message, lock, Seen};
use crate::cronhpa::object::{CronHpaStatus, API_VERSION, KIND, PLURAL};
use crate::cronhpa::plan::Firing;
use crate::cronhpa::rules::{self, HpaState, Outcome};
use crate::cronhpa::{CronHorizontalPodAutoscaler, Target};
use crate::recorder::{Event, CRON_SOURCE};

/// The field manager of the harness's writes as the schedule controller,
/// apart from the run's own apply (`FIELD_MANAGER`): an apply of only
/// min/max under the run's manager would drop the HPA's other fields.
pub const SCHEDULE_MANAGER: &str = "autoscale-harness-schedule";
/// The CRD kubernetes-cronhpa-controller installs.
pub const CRD: &str = "cronhorizontalpodautoscalers.autoscaling.alibabacloud.com";

/// The CronHorizontalPodAutoscaler's API resource, for a DynamicObject Api.
pub fn api_resource() -> ApiResource {
    let (group, version) = API_VERSION.split_once('/').unwrap_or_default();
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, KIND), PLURAL)
}

/// What to say when the cluster has no such resource (`schedule.controller:
/// cluster` without the controller installed).
pub fn crd_missing(name: &str, ns: &str, e: &kube::Error) -> String {
    format!(
        "cannot apply {KIND} {name} in {ns}: the cluster does not serve {API_VERSION} ({}); \
         schedule.controller: cluster needs kubernetes-cronhpa-controller and its CRD {CRD}: \
         install them with `kubectl apply --server-side -f manifests/kind/cronhpa-controller.yaml` \
         (what --kind installs), or let the harness play the controller with \
         `--schedule-controller harness`",
        api_message(e)
    )
}

/// Whether a cluster Event is the cronhpa controller's copy of a job's
/// status condition (`Succeed`/`Failed` with the message the condition
/// carries), which is recorded from the status. The controller's other
/// Events, such as `Failed to update cronhpa status`, are kept: no
/// condition says those. (The Events the harness posts as the controller
/// are `controller::posted_by_harness`.)
pub fn duplicate(e: &KubeEvent) -> bool {
    let reason = e.reason.as_deref().unwrap_or_default();
    let message = e.message.as_deref().unwrap_or_default();
    e.involved_object.kind.as_deref() == Some(KIND)
        && matches!(reason, "Succeed" | "Failed")
        && (message.starts_with("cron hpa job ")
            || message.starts_with("cron hpa failed to execute"))
}

/// The conditions already recorded, by job name, job id, state, probe
/// time and message: a status repeats the conditions of jobs that did not
/// run, and a relist repeats everything.
#[derive(Default)]
pub struct Conditions {
    seen: std::collections::HashSet<(String, String, String, String, String)>,
}

impl Conditions {
    /// Events for the conditions of `status` not seen before, at their
    /// `lastProbeTime` in experiment time (`t0` in Unix seconds; `now`
    /// for a condition without one).
    pub fn events(&mut self, name: &str, status: &CronHpaStatus, t0: f64, now: f64) -> Vec<Event> {
        let mut out = Vec::new();
        for c in &status.conditions {
            let key = (
                c.name.clone(),
                c.job_id.clone(),
                c.state.clone(),
                c.last_probe_time.clone().unwrap_or_default(),
                c.message.clone(),
            );
            if !self.seen.insert(key) {
                continue;
            }
            let at = c
                .last_probe_time
                .as_deref()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok());
            let at_unix = at.map_or(now, |a| a.as_millisecond() as f64 / 1000.0);
            let sizes = scaled_sizes(&c.message);
            out.push(Event {
                t: at_unix - t0,
                type_: if c.state == "Failed" {
                    "Warning"
                } else {
                    "Normal"
                }
                .into(),
                reason: c.state.clone(),
                object: format!("{KIND}/{name}"),
                source: CRON_SOURCE.into(),
                message: if c.message.is_empty() {
                    format!("job {} {}", c.name, c.state.to_lowercase())
                } else {
                    crate::recorder::one_line(&c.message)
                },
                from_replicas: sizes.map(|s| s.0),
                to_replicas: sizes.map(|s| s.1),
                cluster_time: c.last_probe_time.clone(),
                ..Default::default()
            });
        }
        out
    }
}

/// The sizes of a job run that scaled its target: the controller's
/// message is `... current replicas:X, desired replicas:Y.` exactly when
/// it set the scale to Y (`ScaleHPA`, `ScalePlainRef`); the skip message
/// says `current replicas:X >= desired ...` instead.
fn scaled_sizes(message: &str) -> Option<(i32, i32)> {
    let rest = message.split("current replicas:").nth(1)?;
    let (from, rest) = rest.split_once(", desired replicas:")?;
    let to = rest.trim_end_matches('.').trim();
    let (from, to) = (from.trim().parse().ok()?, to.parse().ok()?);
    (from != to).then_some((from, to))
}

/// The harness as the schedule controller (`schedule.controller: harness`).
pub struct Player {
    pub client: Client,
    /// The run namespace, where the CronHPA's target is.
    pub ns: String,
    pub object: CronHorizontalPodAutoscaler,
    pub target: Target,
    /// Unix seconds at experiment t = 0, and the same instant on tokio's clock.
    pub t0: f64,
    pub start: tokio::time::Instant,
    pub seen: Arc<Mutex<Seen>>,
}

/// What one firing did, before it is posted and recorded.
struct Done {
    outcome: Result<Outcome, String>,
    /// The scale's spec.replicas when the job read it.
    spec_replicas: Option<i32>,
    /// What the Event is about: the HPA or the Deployment acted on.
    regarding: ObjectReference,
}

impl Player {
    /// Fires each job at its time, in order, until the list ends (the task
    /// is aborted at the end of the run).
    pub async fn run(self, firings: Vec<Firing>) {
        for f in firings {
            tokio::time::sleep_until(self.start + std::time::Duration::from_secs_f64(f.t.max(0.0)))
                .await;
            let ev = self.fire(&f).await;
            lock(&self.seen).own_events.push(ev);
        }
    }

    async fn fire(&self, f: &Firing) -> Event {
        let at = jiff::Timestamp::now();
        let job = &self.object.spec.jobs[f.job];
        let done = match &f.excluded {
            // The controller's job returns before it reads anything.
            Some(date) => Done {
                outcome: Ok(rules::excluded(date)),
                spec_replicas: None,
                regarding: self.target_ref(),
            },
            None => self.act(job.target_size).await,
        };
        let (type_, reason, message, scale_to) = rules::status(&job.name, &done.outcome);
        let changed = match (scale_to, done.spec_replicas) {
            (Some(to), Some(from)) if to != from => Some((from, to)),
            _ => None,
        };
        let mut ev = Event {
            t: at.as_millisecond() as f64 / 1000.0 - self.t0,
            type_: type_.into(),
            reason: reason.into(),
            object: format!("{KIND}/{}", self.object.name()),
            source: CRON_SOURCE.into(),
            message: message.clone(),
            from_replicas: changed.map(|c| c.0),
            to_replicas: changed.map(|c| c.1),
            cluster_time: Some(at.to_string()),
            ..Default::default()
        };
        let note = Note {
            type_,
            reason,
            action: "Scale",
            note: &message,
        };
        if let Err(e) = controller::post(&self.client, &self.ns, done.regarding, note, at).await {
            // The firing happened; only `kubectl describe` will not show it.
            ev.message
                .push_str(&format!(" (its Event could not be posted: {e})"));
        }
        ev
    }

    fn target_ref(&self) -> ObjectReference {
        match &self.target {
            Target::Hpa(n) => reference("autoscaling/v2", "HorizontalPodAutoscaler", n, &self.ns),
            Target::Deployment(n) => reference("apps/v1", "Deployment", n, &self.ns),
        }
    }

    /// One job run by the controller's rules, against the cluster.
    async fn act(&self, size: i32) -> Done {
        let ns = self.ns.as_str();
        let deployments = Api::<Deployment>::namespaced(self.client.clone(), ns);
        let scale = |name: String, to: i32| async move {
            controller::scale(&self.client, ns, &name, to, SCHEDULE_MANAGER)
                .await
                .map_err(|e| {
                    format!(
                        "failed to scale Deployment {name} in {ns} namespace to {to}, because of {}",
                        api_message(&e)
                    )
                })
        };
        let mut done = Done {
            outcome: Err(String::new()),
            spec_replicas: None,
            regarding: self.target_ref(),
        };
        match &self.target {
            Target::Deployment(name) => {
                let spec = match deployments.get_scale(name).await {
                    Ok(s) => s.spec.and_then(|s| s.replicas).unwrap_or(0),
                    Err(_) => {
                        done.outcome = Err(format!(
                            "failed to find source target Deployment {name} in {ns} namespace"
                        ));
                        return done;
                    }
                };
                done.spec_replicas = Some(spec);
                let o = rules::scale_plain(size, spec);
                done.outcome = match scale(name.clone(), size).await {
                    Ok(_) => Ok(o),
                    Err(e) => Err(e),
                };
            }
            Target::Hpa(name) => {
                let hpas = Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), ns);
                let hpa = match hpas.get(name).await {
                    Ok(h) => h,
                    Err(e) => {
                        done.outcome = Err(format!(
                            "Failed to get HorizontalPodAutoscaler Ref,because of {}",
                            api_message(&e)
                        ));
                        return done;
                    }
                };
                let spec = hpa.spec.clone().unwrap_or_default();
                let r = &spec.scale_target_ref;
                let not_found = |why: String| {
                    format!(
                        "failed to found source target HorizontalPodAutoscaler {name} in {ns} namespace, err is {why}"
                    )
                };
                // The kube backend observes Deployments; so does this.
                if r.kind != "Deployment" {
                    done.outcome = Err(not_found(format!(
                        "the harness scales Deployments, not {}",
                        r.kind
                    )));
                    return done;
                }
                let spec_replicas = match deployments.get_scale(&r.name).await {
                    Ok(s) => s.spec.and_then(|s| s.replicas).unwrap_or(0),
                    Err(e) => {
                        done.outcome = Err(not_found(api_message(&e)));
                        return done;
                    }
                };
                done.spec_replicas = Some(spec_replicas);
                let state = HpaState {
                    min: spec.min_replicas.unwrap_or(1),
                    max: spec.max_replicas,
                    current: hpa
                        .status
                        .as_ref()
                        .and_then(|s| s.current_replicas)
                        .unwrap_or(0),
                };
                let o = rules::scale_hpa(size, state, name, ns, spec_replicas);
                if let (true, Some((min, max))) = (o.hpa_updated, o.range) {
                    let body = json!({
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"minReplicas": min, "maxReplicas": max},
                    });
                    let pp = PatchParams::apply(SCHEDULE_MANAGER).force();
                    if let Err(e) = hpas.patch(name, &pp, &Patch::Apply(&body)).await {
                        done.outcome = Err(api_message(&e));
                        return done;
                    }
                }
                if let Some(to) = o.scale_to {
                    // The Event is about the HPA, as the controller's
                    // target is; the scale is its Deployment's.
                    if let Err(e) = scale(r.name.clone(), to).await {
                        done.outcome = Err(e);
                        return done;
                    }
                }
                done.outcome = Ok(o);
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cronhpa::object::Condition;

    #[test]
    fn sizes_only_from_a_run_that_scaled() {
        assert_eq!(
            scaled_sizes(
                "cron hpa job up executed successfully. current replicas:2, desired replicas:3."
            ),
            Some((2, 3))
        );
        assert_eq!(
            scaled_sizes("cron hpa job x executed successfully. Skip scale replicas because HPA h in namespace n current replicas:5 >= desired replicas:3."),
            None
        );
        assert_eq!(
            scaled_sizes("current replicas:3, desired replicas:3."),
            None
        );
    }

    #[test]
    fn each_condition_once_at_its_probe_time() {
        let cond = |state: &str, at: &str, msg: &str| Condition {
            name: "up".into(),
            job_id: "id-1".into(),
            schedule: "0 */5 * * * *".into(),
            target_size: 3,
            state: state.into(),
            last_probe_time: Some(at.into()),
            message: msg.into(),
            ..Default::default()
        };
        let mut c = Conditions::default();
        let t0 = "2026-12-01T09:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second() as f64;
        let submitted = CronHpaStatus {
            conditions: vec![cond("Submitted", "2026-12-01T08:59:50Z", "")],
            ..Default::default()
        };
        let e = c.events("s", &submitted, t0, t0);
        assert_eq!(
            (e.len(), e[0].t, e[0].reason.as_str()),
            (1, -10.0, "Submitted")
        );
        assert!(
            c.events("s", &submitted, t0, t0).is_empty(),
            "a repeat is not new"
        );
        let msg = "cron hpa job up executed successfully. current replicas:2, desired replicas:3.";
        let ran = CronHpaStatus {
            conditions: vec![cond("Succeed", "2026-12-01T09:05:00Z", msg)],
            ..Default::default()
        };
        let e = c.events("s", &ran, t0, t0);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].t, 300.0);
        assert_eq!(e[0].object, "CronHorizontalPodAutoscaler/s");
        assert_eq!(e[0].source, CRON_SOURCE);
        assert_eq!((e[0].from_replicas, e[0].to_replicas), (Some(2), Some(3)));
        assert_eq!(e[0].cluster_time.as_deref(), Some("2026-12-01T09:05:00Z"));
        assert!(e[0].is_firing());
    }

    #[test]
    fn the_controllers_copy_of_a_condition_is_a_duplicate() {
        let ev = |kind: &str, reason: &str, msg: &str, by: Option<&str>| KubeEvent {
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(msg.into()),
            reporting_component: by.map(Into::into),
            ..Default::default()
        };
        assert!(duplicate(&ev(
            KIND,
            "Succeed",
            "cron hpa job up executed successfully. x",
            None
        )));
        assert!(duplicate(&ev(
            KIND,
            "Failed",
            "cron hpa failed to execute, because of x",
            None
        )));
        assert!(!duplicate(&ev(
            KIND,
            "Failed",
            "Failed to update cronhpa status: x",
            None
        )));
        // The harness's own, when it plays the controller: not the
        // cronhpa controller's copy, but recorded already all the same.
        let own = ev(
            "HorizontalPodAutoscaler",
            "Succeed",
            "cron hpa job up executed successfully.",
            Some(controller::REPORTING_CONTROLLER),
        );
        assert!(!duplicate(&own) && controller::posted_by_harness(&own));
        assert!(!duplicate(&ev(
            "HorizontalPodAutoscaler",
            "SuccessfulRescale",
            "New size: 3",
            None
        )));
    }
}
