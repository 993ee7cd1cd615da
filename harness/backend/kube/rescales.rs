//! The size before each SuccessfulRescale, from what the cluster said at the
//! time of the rescale, never from whichever watch delivered first.
//!
//! The HPA's event says only `New size: N`. Its previous size is, in order
//! of authority:
//! 1. the HPA status written by the same sync: `lastScaleTime` at the
//!    rescale, `desiredReplicas` = N, `currentReplicas` = the scale's spec
//!    before it (the controller writes the status right after the event);
//! 2. the Deployment controller's `ScalingReplicaSet` event for the same
//!    change (`Scaled up replica set X from 2 to 3`; before Kubernetes 1.28
//!    `… to 3 from 2`);
//! 3. the rescale before it in cluster time, or the size at t = 0.
//!
//! The status usually arrives just after the event but may come later, so
//! a rescale waits up to `WAIT` seconds for 1 or 2 before falling back to 3.
//! Pure: the caller passes objects and the time in Unix seconds.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use crate::recorder::Event;

/// How long a rescale waits for the status or the Deployment's event.
pub const WAIT: f64 = 30.0;
/// How far apart the HPA's event and its status's lastScaleTime may be (both
/// have whole seconds, stamped by the controller within one sync).
const SAME_SYNC: f64 = 2.0;
/// The Deployment controller acts on the new spec shortly after.
const REPLICA_SET_LAG: f64 = 10.0;

/// One size change the cluster reported, at its own time (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    at: f64,
    from: i32,
    to: i32,
}

struct Pending {
    event: Event,
    /// The event's cluster time, Unix seconds.
    at: f64,
    /// When it reached the harness, Unix seconds.
    arrived: f64,
}

#[derive(Default)]
pub struct Rescales {
    /// From HPA statuses: lastScaleTime, currentReplicas → desiredReplicas.
    statuses: Vec<Change>,
    /// From ScalingReplicaSet events.
    replica_sets: Vec<Change>,
    /// Rescales recorded, with their sizes: the chain of the fallback.
    done: Vec<Change>,
    pending: Vec<Pending>,
    /// The Deployment's spec at t = 0.
    initial: Option<i32>,
}

impl Rescales {
    pub fn set_initial(&mut self, spec: i32) {
        self.initial = Some(spec);
    }

    /// Notes an HPA status the watch delivered (every version, in order).
    pub fn hpa(&mut self, h: &HorizontalPodAutoscaler) {
        let Some(s) = h.status.as_ref() else { return };
        let (Some(t), Some(from)) = (s.last_scale_time.as_ref(), s.current_replicas) else {
            return;
        };
        let c = Change {
            at: unix(&t.0),
            from,
            to: s.desired_replicas,
        };
        // A status written without a rescale repeats the last lastScaleTime
        // with currentReplicas already the new size.
        if from != c.to && !self.statuses.iter().any(|x| x.at == c.at) {
            self.statuses.push(c);
        }
    }

    /// Takes a cluster event at cluster time `at`: notes a Deployment's
    /// ScalingReplicaSet, holds a SuccessfulRescale until its size is
    /// known, passes anything else through.
    pub fn event(&mut self, event: Event, at: f64, now: f64) -> Option<Event> {
        if event.reason == "ScalingReplicaSet" {
            if let Some((from, to)) = replica_set_sizes(&event.message) {
                self.replica_sets.push(Change { at, from, to });
            }
            return Some(event);
        }
        if !event.is_rescale() || event.to_replicas.is_none() {
            return Some(event);
        }
        self.pending.push(Pending {
            event,
            at,
            arrived: now,
        });
        None
    }

    /// The rescales whose size is now known, or that waited `WAIT` seconds
    /// (all of them when `flush`: the run is over), in cluster time order.
    pub fn ready(&mut self, now: f64, flush: bool) -> Vec<Event> {
        self.pending.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let to = p.event.to_replicas.unwrap_or_default();
            let from = match self.said(p.at, to) {
                Some(from) => Some(from),
                None if flush || now - p.arrived >= WAIT => self.before(p.at),
                None => {
                    i += 1;
                    continue;
                }
            };
            let mut p = self.pending.remove(i);
            p.event.from_replicas = from;
            if let Some(from) = from {
                self.done.push(Change { at: p.at, from, to });
            }
            out.push(p.event);
        }
        out
    }

    /// The previous size as the cluster stated it (1 or 2 above).
    fn said(&self, at: f64, to: i32) -> Option<i32> {
        let nearest = |v: &[Change], lo: f64, hi: f64| {
            v.iter()
                .filter(|c| c.to == to && c.at >= at - lo && c.at <= at + hi)
                .min_by(|a, b| (a.at - at).abs().total_cmp(&(b.at - at).abs()))
                .map(|c| c.from)
        };
        nearest(&self.statuses, SAME_SYNC, SAME_SYNC)
            .or_else(|| nearest(&self.replica_sets, SAME_SYNC, REPLICA_SET_LAG))
    }

    /// The size after the last rescale before `at`, recorded or still
    /// waiting, else the size at t = 0 (3 above).
    fn before(&self, at: f64) -> Option<i32> {
        let done = self.done.iter().map(|c| (c.at, c.to));
        let waiting =
            (self.pending.iter()).map(|p| (p.at, p.event.to_replicas.unwrap_or_default()));
        done.chain(waiting)
            .filter(|(t, _)| *t < at)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, to)| to)
            .or(self.initial)
    }
}

fn unix(t: &jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// (from, to) of `Scaled up replica set X from 2 to 3` or, before 1.28,
/// `Scaled up replica set X to 3 from 2`.
fn replica_set_sizes(message: &str) -> Option<(i32, i32)> {
    let after = |word: &str| -> Option<i32> {
        let i = message.rfind(word)?;
        message[i + word.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((after(" from ")?, after(" to ")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_800_000_000.0;

    fn hpa(last_scale: f64, current: i32, desired: i32) -> HorizontalPodAutoscaler {
        let ts = jiff::Timestamp::from_second((T0 + last_scale) as i64).unwrap();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h"},
            "status": {"currentReplicas": current, "desiredReplicas": desired,
                       "lastScaleTime": ts.to_string()}
        }))
        .unwrap()
    }

    fn rescale(to: i32) -> Event {
        Event {
            reason: "SuccessfulRescale".into(),
            message: format!("New size: {to}; reason: x"),
            to_replicas: Some(to),
            ..Default::default()
        }
    }

    fn sizes(v: &[Event]) -> Vec<(Option<i32>, Option<i32>)> {
        v.iter().map(|e| (e.from_replicas, e.to_replicas)).collect()
    }

    #[test]
    fn replica_set_messages_of_both_eras() {
        assert_eq!(
            replica_set_sizes("Scaled up replica set httpbin-7d9 from 2 to 3"),
            Some((2, 3))
        );
        assert_eq!(
            replica_set_sizes("Scaled down replica set httpbin-7d9 to 1 from 4"),
            Some((4, 1))
        );
        assert_eq!(replica_set_sizes("Created pod: x"), None);
    }

    /// The run, 1→2→3→4→3→2→1 (seed 000 on a real control plane),
    /// with the status, the Deployment's event and the HPA's event in every
    /// order of arrival, and the HPA's event up to 30 s late.
    #[test]
    fn sizes_come_from_the_cluster_whatever_the_order_of_arrival() {
        let seq = [1, 2, 3, 4, 3, 2, 1];
        let want: Vec<_> = seq.windows(2).map(|w| (Some(w[0]), Some(w[1]))).collect();
        // Which of status (s), replica-set event (r) and HPA event (e)
        // arrives first, and how late the HPA event is.
        for order in ["sre", "ser", "rse", "res", "esr", "ers", "e", "se"] {
            for late in [0.0, 5.0, 30.0] {
                let mut r = Rescales::default();
                r.set_initial(1);
                let mut out = Vec::new();
                let mut arrivals: Vec<(f64, char, usize)> = Vec::new();
                for i in 0..seq.len() - 1 {
                    let at = 20.0 + 40.0 * i as f64;
                    for (k, c) in order.chars().enumerate() {
                        let delay = if c == 'e' { late } else { 0.0 };
                        arrivals.push((at + delay + 0.1 * k as f64, c, i));
                    }
                }
                arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
                for (now, c, i) in arrivals {
                    let (from, to) = (seq[i], seq[i + 1]);
                    let at = 20.0 + 40.0 * i as f64;
                    match c {
                        's' => r.hpa(&hpa(at, from, to)),
                        'r' => {
                            let dir = if to > from { "up" } else { "down" };
                            let m = format!("Scaled {dir} replica set d-1 from {from} to {to}");
                            let ev = Event {
                                reason: "ScalingReplicaSet".into(),
                                message: m,
                                ..Default::default()
                            };
                            assert!(r.event(ev, T0 + at + 0.5, T0 + now).is_some());
                        }
                        _ => assert!(r.event(rescale(to), T0 + at, T0 + now).is_none()),
                    }
                    out.extend(r.ready(T0 + now, false));
                }
                out.extend(r.ready(T0 + 1e6, true));
                assert_eq!(sizes(&out), want, "order {order}, event {late} s late");
            }
        }
    }

    #[test]
    fn without_status_a_rescale_waits_then_follows_the_chain() {
        let mut r = Rescales::default();
        r.set_initial(2);
        assert!(r.event(rescale(3), T0 + 10.0, T0 + 10.0).is_none());
        assert!(r.ready(T0 + 10.0 + WAIT - 1.0, false).is_empty());
        assert_eq!(
            sizes(&r.ready(T0 + 10.0 + WAIT, false)),
            [(Some(2), Some(3))]
        );
        r.event(rescale(2), T0 + 50.0, T0 + 50.0);
        assert_eq!(sizes(&r.ready(T0 + 51.0, true)), [(Some(3), Some(2))]);
    }

    #[test]
    fn a_status_without_a_rescale_is_not_a_change() {
        let mut r = Rescales::default();
        r.set_initial(3);
        // The sync after a rescale: same lastScaleTime, current = desired.
        r.hpa(&hpa(10.0, 3, 3));
        r.event(rescale(3), T0 + 10.0, T0 + 10.0);
        assert_eq!(sizes(&r.ready(T0 + 10.0, true)), [(Some(3), Some(3))]);
    }
}
