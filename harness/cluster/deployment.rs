//! The Deployment and ReplicaSet controllers' rules: how many pods to create
//! or delete, which pods go first on scale-in, pod names, and how a pod looks
//! to the HPA. Pure: pods are given as their lifecycle times.

use std::collections::BTreeMap;

use rand::Rng;

use super::config::Config;
use crate::autoscaler::{
    ConditionStatus, ContainerInfo, Millis, PodInfo, PodPhase, ReadyCondition,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Running,
    Terminating,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Terminating => "Terminating",
        }
    }
}

/// One pod of the scale target: its lifecycle in cluster seconds, and what
/// the driver keeps for it (`P`: a real server, or a queue model).
pub(crate) struct Pod<P> {
    pub(crate) name: String,
    pub(crate) created: f64,
    pub(crate) phase: Phase,
    pub(crate) started: Option<f64>,
    /// When the readiness probe first passed (the Ready condition, which a
    /// terminating pod keeps while it drains).
    pub(crate) ready_since: Option<f64>,
    pub(crate) terminating_since: Option<f64>,
    /// When its container last started (the first start or a restart).
    pub(crate) last_start: Option<f64>,
    /// When its container last exited (Ready went False then).
    pub(crate) exited: Option<f64>,
    /// Times its container was restarted after exiting (restartCount).
    pub(crate) restarts: u32,
    pub(crate) backoff: super::restart::BackOff,
    /// (requests, CPU ns) at the previous observation, for per-sample rates.
    pub(crate) last: Option<(u64, u64)>,
    pub(crate) rt: P,
}

impl<P> Pod<P> {
    /// Running, not terminating, and ready: what the Service routes to.
    pub(crate) fn serving(&self) -> bool {
        self.phase == Phase::Running && self.ready_since.is_some()
    }

    fn view(&self) -> Ranked {
        Ranked {
            phase: self.phase,
            ready_since: self.ready_since,
            restarts: self.restarts,
            created: self.created,
        }
    }
}

/// What the ReplicaSet controller does to reach the wanted replicas.
pub(crate) enum Resize {
    /// Create this many pods.
    Create(usize),
    /// Delete these pods (indices, in deletion order).
    Delete(Vec<usize>),
}

/// The resize for `pods` to reach `want`, and its ScalingReplicaSet message;
/// `None` when the count is already right.
pub(crate) fn resize<P>(pods: &[Pod<P>], want: i32, rs: &str) -> Option<(Resize, String)> {
    let view: Vec<_> = pods.iter().map(Pod::view).collect();
    let active = view
        .iter()
        .filter(|p| p.phase != Phase::Terminating)
        .count() as i32;
    if active == want {
        return None;
    }
    let (plan, verb) = if active < want {
        (Resize::Create((want - active) as usize), "up")
    } else {
        let mut order = scale_in_order(&view);
        order.truncate((active - want) as usize);
        (Resize::Delete(order), "down")
    };
    Some((
        plan,
        format!("Scaled {verb} replica set {rs} from {active} to {want}"),
    ))
}

/// What the ReplicaSet controller ranks pods by on scale-in.
struct Ranked {
    phase: Phase,
    ready_since: Option<f64>,
    restarts: u32,
    created: f64,
}

/// Indices of the non-terminating pods in the order the ReplicaSet
/// controller deletes them: pending before running, unready before ready,
/// the most recently ready first, more restarts first, then the newest.
fn scale_in_order(pods: &[Ranked]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pods.len())
        .filter(|&i| pods[i].phase != Phase::Terminating)
        .collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a], &pods[b]);
        let rank = |p: &Ranked| (p.phase == Phase::Running, p.ready_since.is_some());
        rank(pa)
            .cmp(&rank(pb))
            .then_with(|| {
                pb.ready_since
                    .unwrap_or(0.0)
                    .partial_cmp(&pa.ready_since.unwrap_or(0.0))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| pb.restarts.cmp(&pa.restarts))
            .then_with(|| {
                pb.created
                    .partial_cmp(&pa.created)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    });
    order
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Kubernetes' pod-template-hash is a short hash of the template; ours only needs to be stable.
pub(crate) fn template_hash(name: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    (0..9)
        .map(|i| NAME_ALPHABET[((h >> (i * 3)) as usize + i) % NAME_ALPHABET.len()] as char)
        .collect()
}

/// The five random characters after a ReplicaSet's name.
pub(crate) fn random_suffix(rng: &mut rand::rngs::StdRng) -> String {
    (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// One pod as the HPA sees it at a sync at cluster time `at`. The sync runs
/// before anything else that happens at its instant, as in a cluster where a
/// probe result lands after the instant it was due: a pod that starts or
/// becomes ready exactly at `at` is not yet started or ready for this sync.
pub(crate) fn pod_info<P>(cfg: &Config, p: &Pod<P>, at: f64) -> PodInfo {
    let before = |t: Option<f64>| t.filter(|&t| t < at);
    let (started, ready_since) = (before(p.started), before(p.ready_since));
    let ms = |t: f64| (t * 1000.0).round() as Millis;
    let mut requests = BTreeMap::new();
    if let Some(c) = cfg.cpu_request_milli {
        requests.insert("cpu".to_string(), c);
    }
    if let Some(m) = cfg.memory_request_milli {
        requests.insert("memory".to_string(), m);
    }
    PodInfo {
        name: p.name.clone(),
        phase: if p.phase == Phase::Pending || started.is_none() {
            PodPhase::Pending
        } else {
            PodPhase::Running
        },
        deletion_timestamp_set: p.phase == Phase::Terminating,
        start_time: started.map(ms),
        ready: started.map(|s| ReadyCondition {
            status: if ready_since.is_some() {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            // Ready went False when the container last exited, if it has.
            last_transition: ms(ready_since.or(before(p.exited)).unwrap_or(s)),
        }),
        containers: vec![ContainerInfo {
            name: cfg.container.clone(),
            requests,
        }],
        pod_requests: None,
        labels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: Phase, ready: Option<f64>, created: f64) -> Pod<()> {
        Pod {
            name: format!("p{created}"),
            created,
            phase,
            started: Some(created),
            ready_since: ready,
            terminating_since: None,
            last_start: Some(created),
            exited: None,
            restarts: 0,
            backoff: Default::default(),
            last: None,
            rt: (),
        }
    }

    #[test]
    fn scale_in_takes_more_restarts_before_newer() {
        let mut crashing = pod(Phase::Running, None, 0.0);
        crashing.restarts = 3;
        let pods = vec![crashing, pod(Phase::Running, None, 20.0)];
        let Some((Resize::Delete(v), _)) = resize(&pods, 1, "rs") else {
            panic!("expected a scale-in")
        };
        assert_eq!(v, vec![0]);
    }

    #[test]
    fn scale_in_takes_pending_then_unready_then_most_recently_ready() {
        let pods = vec![
            pod(Phase::Running, Some(10.0), 0.0),
            pod(Phase::Pending, None, 50.0),
            pod(Phase::Running, Some(40.0), 30.0),
            pod(Phase::Running, None, 20.0),
            pod(Phase::Terminating, Some(5.0), 1.0),
        ];
        let Some((Resize::Delete(v), msg)) = resize(&pods, 1, "rs") else {
            panic!("expected a scale-in")
        };
        assert_eq!(v, vec![1, 3, 2]);
        assert_eq!(msg, "Scaled down replica set rs from 4 to 1");
        assert!(resize(&pods, 4, "rs").is_none());
        let Some((Resize::Create(2), msg)) = resize(&pods, 6, "rs") else {
            panic!("expected a scale-out")
        };
        assert_eq!(msg, "Scaled up replica set rs from 4 to 6");
    }
}
