//! Turning the metric proposal into the replica count to apply: the legacy path
//! (`spec.behavior` unset: max-stabilization then `max(2×current, 4)` / min / max) and the
//! behavior path (up/down stabilization windows, rate-limit policies, bounds).

use k8s_openapi::api::autoscaling::v2::HPAScalingRules;
use serde::{Deserialize, Serialize};

use super::quantity::parse_quantity_f64;
use super::types::Millis;

/// A stored pre-normalization proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub replicas: i32,
    pub timestamp: Millis,
}

/// A stored successful rescale (behavior path only): `replica_change` is the absolute size
/// of the change; `outdated` only marks the slot as reusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    pub replica_change: i32,
    pub timestamp: Millis,
    pub outdated: bool,
}

/// `selectPolicy`. Unknown strings act as `Max`, like upstream's `else` branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// Policy `type`. `Other` (not reachable after API validation) keeps upstream's quirk of
/// re-using the previous policy's proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalingPolicyType {
    Pods,
    Percent,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    pub type_: ScalingPolicyType,
    pub value: i32,
    pub period_seconds: i32,
}

/// `HPAScalingRules` with the API-server defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingRules {
    pub stabilization_window_seconds: i32,
    pub select_policy: SelectPolicy,
    pub policies: Vec<ScalingPolicy>,
    /// Per-direction tolerance (`HPAConfigurableTolerance`), if set.
    pub tolerance: Option<f64>,
}

impl ScalingRules {
    /// API default for `behavior.scaleUp`: window 0, Max of 4 pods / 100 % per 15 s.
    pub fn default_scale_up() -> Self {
        ScalingRules {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    type_: ScalingPolicyType::Pods,
                    value: 4,
                    period_seconds: 15,
                },
                ScalingPolicy {
                    type_: ScalingPolicyType::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ],
            tolerance: None,
        }
    }

    /// API default for `behavior.scaleDown`: Max of 100 % per 15 s; the window comes from
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub fn default_scale_down(window_seconds: i32) -> Self {
        ScalingRules {
            stabilization_window_seconds: window_seconds,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                type_: ScalingPolicyType::Percent,
                value: 100,
                period_seconds: 15,
            }],
            tolerance: None,
        }
    }

    /// Resolve `behavior.scaleUp` (each unset field takes its default independently).
    pub fn scale_up_from(rules: Option<&HPAScalingRules>) -> Self {
        Self::merge(rules, Self::default_scale_up())
    }

    /// Resolve `behavior.scaleDown`; an unset window takes `default_window_seconds`.
    pub fn scale_down_from(rules: Option<&HPAScalingRules>, default_window_seconds: i32) -> Self {
        Self::merge(rules, Self::default_scale_down(default_window_seconds))
    }

    fn merge(rules: Option<&HPAScalingRules>, mut out: Self) -> Self {
        let Some(r) = rules else {
            return out;
        };
        if let Some(w) = r.stabilization_window_seconds {
            out.stabilization_window_seconds = w;
        }
        if let Some(p) = &r.select_policy {
            out.select_policy = match p.as_str() {
                "Min" => SelectPolicy::Min,
                "Disabled" => SelectPolicy::Disabled,
                _ => SelectPolicy::Max,
            };
        }
        if let Some(policies) = &r.policies {
            out.policies = policies
                .iter()
                .map(|p| ScalingPolicy {
                    type_: match p.type_.as_str() {
                        "Pods" => ScalingPolicyType::Pods,
                        "Percent" => ScalingPolicyType::Percent,
                        _ => ScalingPolicyType::Other,
                    },
                    value: p.value,
                    period_seconds: p.period_seconds,
                })
                .collect();
        }
        out.tolerance = r
            .tolerance
            .as_ref()
            .and_then(|q| parse_quantity_f64(&q.0).ok());
        out
    }

    fn longest_period_seconds(&self) -> i32 {
        self.policies
            .iter()
            .map(|p| p.period_seconds)
            .fold(0, i32::max)
    }
}

/// A normalized replica count with the `ScalingLimited` reason and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub replicas: i32,
    pub reason: &'static str,
    pub message: &'static str,
}

/// A stabilized recommendation with the `AbleToScale` reason/message to use when it
/// differs from the proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stabilized {
    pub replicas: i32,
    pub reason: &'static str,
    pub message: &'static str,
}

const WITHIN: Limited = Limited {
    replicas: 0,
    reason: "DesiredWithinRange",
    message: "the desired count is within the acceptable range",
};
const MSG_UP_LIMIT: &str =
    "the desired replica count is increasing faster than the maximum scale rate";
const MSG_DOWN_LIMIT: &str =
    "the desired replica count is decreasing faster than the maximum scale rate";
const MSG_TOO_MANY: &str = "the desired replica count is more than the maximum replica count";
const MSG_TOO_FEW: &str = "the desired replica count is less than the minimum replica count";

fn secs(s: i32) -> Millis {
    i64::from(s) * 1000
}

/// Legacy `stabilizeRecommendation`: max of the proposal and every stored recommendation
/// not older than the window (an entry exactly at the cutoff counts); then store the
/// proposal in the last too-old slot, or append.
pub fn stabilize_recommendation(
    recommendations: &mut Vec<Recommendation>,
    proposal: i32,
    window: Millis,
    now: Millis,
) -> i32 {
    let cutoff = now.saturating_sub(window);
    let mut max = proposal;
    let mut old_slot = None;
    for (i, rec) in recommendations.iter().enumerate() {
        if rec.timestamp < cutoff {
            old_slot = Some(i);
        } else if rec.replicas > max {
            max = rec.replicas;
        }
    }
    let new = Recommendation {
        replicas: proposal,
        timestamp: now,
    };
    match old_slot {
        Some(i) => recommendations[i] = new,
        None => recommendations.push(new),
    }
    max
}

/// Legacy `convertDesiredReplicasWithRules`: `min`, then the per-reconcile scale-up cap
/// `int(max(factor × current, minimum))`, then `max`.
pub fn convert_desired_replicas_with_rules(
    current: i32,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    scale_up_limit_factor: f64,
    scale_up_limit_minimum: f64,
) -> Limited {
    let scale_up_limit =
        (scale_up_limit_factor * f64::from(current)).max(scale_up_limit_minimum) as i32;
    let (max_allowed, reason, message) = if max_replicas > scale_up_limit {
        (scale_up_limit, "ScaleUpLimit", MSG_UP_LIMIT)
    } else {
        (max_replicas, "TooManyReplicas", MSG_TOO_MANY)
    };
    if desired < min_replicas {
        Limited {
            replicas: min_replicas,
            reason: "TooFewReplicas",
            message: MSG_TOO_FEW,
        }
    } else if desired > max_allowed {
        Limited {
            replicas: max_allowed,
            reason,
            message,
        }
    } else {
        Limited {
            replicas: desired,
            ..WITHIN
        }
    }
}

/// `stabilizeRecommendationWithBehaviors`: scale up only to the lowest proposal of the up
/// window, down only to the highest of the down window (both strictly after the cutoff),
/// then store the proposal (reusing the last slot strictly older than both cutoffs).
pub fn stabilize_recommendation_with_behaviors(
    recommendations: &mut Vec<Recommendation>,
    current: i32,
    proposal: i32,
    scale_up_window_seconds: i32,
    scale_down_window_seconds: i32,
    now: Millis,
) -> Stabilized {
    let up_cutoff = now.saturating_sub(secs(scale_up_window_seconds));
    let down_cutoff = now.saturating_sub(secs(scale_down_window_seconds));
    let mut up = proposal;
    let mut down = proposal;
    let mut old_slot = None;
    for (i, rec) in recommendations.iter().enumerate() {
        if rec.timestamp > up_cutoff {
            up = up.min(rec.replicas);
        }
        if rec.timestamp > down_cutoff {
            down = down.max(rec.replicas);
        }
        if rec.timestamp < up_cutoff && rec.timestamp < down_cutoff {
            old_slot = Some(i);
        }
    }
    let mut replicas = current;
    if replicas < up {
        replicas = up;
    }
    if replicas > down {
        replicas = down;
    }
    let new = Recommendation {
        replicas: proposal,
        timestamp: now,
    };
    match old_slot {
        Some(i) => recommendations[i] = new,
        None => recommendations.push(new),
    }
    if proposal >= current {
        Stabilized {
            replicas,
            reason: "ScaleUpStabilized",
            message: "recent recommendations were lower than current one, applying the lowest recent recommendation",
        }
    } else {
        Stabilized {
            replicas,
            reason: "ScaleDownStabilized",
            message: "recent recommendations were higher than current one, applying the highest recent recommendation",
        }
    }
}

/// Sum of event sizes strictly after `now - period`.
pub fn get_replicas_change_per_period(
    period_seconds: i32,
    events: &[ScaleEvent],
    now: Millis,
) -> i32 {
    let cutoff = now.saturating_sub(secs(period_seconds));
    events
        .iter()
        .filter(|e| e.timestamp > cutoff)
        .fold(0i32, |acc, e| acc.saturating_add(e.replica_change))
}

fn period_start(
    current: i32,
    period_seconds: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    now: Millis,
) -> i32 {
    current
        .saturating_sub(get_replicas_change_per_period(
            period_seconds,
            up_events,
            now,
        ))
        .saturating_add(get_replicas_change_per_period(
            period_seconds,
            down_events,
            now,
        ))
}

/// `calculateScaleUpLimitWithScalingRules`: the highest replica count the policies allow.
pub fn calculate_scale_up_limit_with_scaling_rules(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &ScalingRules,
    now: Millis,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MAX, i32::min),
        SelectPolicy::Max => (i32::MIN, i32::max),
    };
    let mut proposed = 0;
    for p in &rules.policies {
        let start = period_start(current, p.period_seconds, up_events, down_events, now);
        match p.type_ {
            ScalingPolicyType::Pods => proposed = start.saturating_add(p.value),
            ScalingPolicyType::Percent => {
                // Rounded up so that a small percentage can still add a pod.
                proposed = (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
            ScalingPolicyType::Other => {}
        }
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: the lowest replica count the policies allow.
pub fn calculate_scale_down_limit_with_behaviors(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &ScalingRules,
    now: Millis,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MIN, i32::max),
        SelectPolicy::Max => (i32::MAX, i32::min),
    };
    let mut proposed = 0;
    for p in &rules.policies {
        let start = period_start(current, p.period_seconds, up_events, down_events, now);
        match p.type_ {
            ScalingPolicyType::Pods => proposed = start.saturating_sub(p.value),
            ScalingPolicyType::Percent => {
                // Truncated toward zero, as Go's int32(float64) conversion does.
                proposed = (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32
            }
            ScalingPolicyType::Other => {}
        }
        result = pick(result, proposed);
    }
    result
}

/// `convertDesiredReplicasWithBehaviorRate`: rate limits plus `min`/`max`, applied to the
/// stabilized recommendation.
#[allow(clippy::too_many_arguments)]
pub fn convert_desired_replicas_with_behavior_rate(
    current: i32,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    scale_up: &ScalingRules,
    scale_down: &ScalingRules,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    now: Millis,
) -> Limited {
    if desired > current {
        let limit = calculate_scale_up_limit_with_scaling_rules(
            current,
            up_events,
            down_events,
            scale_up,
            now,
        )
        .max(current);
        let (max_allowed, reason, message) = if max_replicas > limit {
            (limit, "ScaleUpLimit", MSG_UP_LIMIT)
        } else {
            (max_replicas, "TooManyReplicas", MSG_TOO_MANY)
        };
        if desired > max_allowed {
            return Limited {
                replicas: max_allowed,
                reason,
                message,
            };
        }
    } else if desired < current {
        let limit = calculate_scale_down_limit_with_behaviors(
            current,
            up_events,
            down_events,
            scale_down,
            now,
        )
        .min(current);
        let (min_allowed, reason, message) = if min_replicas < limit {
            (limit, "ScaleDownLimit", MSG_DOWN_LIMIT)
        } else {
            (min_replicas, "TooFewReplicas", MSG_TOO_FEW)
        };
        if desired < min_allowed {
            return Limited {
                replicas: min_allowed,
                reason,
                message,
            };
        }
    }
    Limited {
        replicas: desired,
        ..WITHIN
    }
}

/// `storeScaleEvent` for one direction's list. `rules` is that direction's rules, `None`
/// for an HPA without `behavior` (nothing is stored then). Events older than the longest
/// policy period are marked outdated; the last outdated slot is reused, else appended.
pub fn store_scale_event(
    events: &mut Vec<ScaleEvent>,
    rules: Option<&ScalingRules>,
    replica_change: i32,
    now: Millis,
) {
    let Some(rules) = rules else {
        return;
    };
    let cutoff = now.saturating_sub(secs(rules.longest_period_seconds()));
    let mut slot = None;
    for (i, e) in events.iter_mut().enumerate() {
        if e.timestamp < cutoff {
            e.outdated = true;
        }
        if e.outdated {
            slot = Some(i);
        }
    }
    let new = ScaleEvent {
        replica_change,
        timestamp: now,
        outdated: false,
    };
    match slot {
        Some(i) => events[i] = new,
        None => events.push(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_scale_up_limit_is_twice_current_or_four() {
        // Production constants: factor 2, minimum 4.
        let l = convert_desired_replicas_with_rules(3, 50, 1, 100, 2.0, 4.0);
        assert_eq!((l.replicas, l.reason), (6, "ScaleUpLimit"));
        let l = convert_desired_replicas_with_rules(1, 50, 1, 100, 2.0, 4.0);
        assert_eq!((l.replicas, l.reason), (4, "ScaleUpLimit"));
        let l = convert_desired_replicas_with_rules(3, 50, 1, 5, 2.0, 4.0);
        assert_eq!((l.replicas, l.reason), (5, "TooManyReplicas"));
        let l = convert_desired_replicas_with_rules(3, 1, 2, 5, 2.0, 4.0);
        assert_eq!((l.replicas, l.reason), (2, "TooFewReplicas"));
    }

    #[test]
    fn behavior_percent_policy_rounds_up_and_down() {
        let up = ScalingRules {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                type_: ScalingPolicyType::Percent,
                value: 15,
                period_seconds: 60,
            }],
            tolerance: None,
        };
        // ceil(10 × 1.15) = 12 on the way up, int(10 × 0.85) = 8 on the way down.
        let l = convert_desired_replicas_with_behavior_rate(10, 50, 1, 100, &up, &up, &[], &[], 0);
        assert_eq!((l.replicas, l.reason), (12, "ScaleUpLimit"));
        let l = convert_desired_replicas_with_behavior_rate(10, 1, 1, 100, &up, &up, &[], &[], 0);
        assert_eq!((l.replicas, l.reason), (8, "ScaleDownLimit"));
    }

    #[test]
    fn behavior_counts_recent_events() {
        let rules = ScalingRules::default_scale_up();
        // 4 pods were added 10 s ago: the period started at 6, so Max(6+4, 12) = 12.
        let events = [ScaleEvent {
            replica_change: 4,
            timestamp: -10_000,
            outdated: false,
        }];
        assert_eq!(
            calculate_scale_up_limit_with_scaling_rules(10, &events, &[], &rules, 0),
            12
        );
    }

    #[test]
    fn legacy_stabilization_keeps_highest_recent() {
        let mut recs = vec![
            Recommendation {
                replicas: 10,
                timestamp: -600_000,
            },
            Recommendation {
                replicas: 5,
                timestamp: -60_000,
            },
        ];
        assert_eq!(stabilize_recommendation(&mut recs, 3, 300_000, 0), 5);
        assert_eq!(recs[0].replicas, 3, "the too-old slot is reused");
    }
}
