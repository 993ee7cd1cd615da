//! One sample of the timeline, from the load statistics of its interval and
//! what the backend observed; the same for every backend.

use hdrhistogram::Histogram;

use crate::backend::Observation;
use crate::load::IntervalStats;
use crate::recorder::{self, Event, Percentiles, Sample};
use crate::scenario::Load;

/// The sample ending at experiment time `t`. `speed` turns the engine's real
/// microseconds into experiment time (1 on a virtual clock).
pub(super) fn build(
    t: f64,
    interval: f64,
    load: &Load,
    st: &IntervalStats,
    users: Option<u64>,
    speed: f64,
    obs: Observation,
) -> Sample {
    let (planned, stage) = load.rate_at((t - interval / 2.0).max(0.0));
    let stage = if t > load.total() + interval / 2.0 {
        "after load".to_string()
    } else {
        stage
    };
    // The open model offers its schedule. A closed model's stages count
    // users; what they offered is what they sent, and it falls when latency
    // rises.
    let offered = if load.is_users() {
        st.sent as f64 / interval
    } else {
        planned
    };
    let latency = scaled(&st.response_time, speed);
    Sample {
        t,
        stage,
        offered_qps: offered,
        intended: st.intended,
        sent: st.sent,
        completed: st.completed,
        dropped: st.dropped,
        late: st.late,
        status: st.status,
        latency_ms: percentiles(&latency),
        service_ms: percentiles(&scaled(&st.service_time, speed)),
        ttfb_ms: (!st.ttfb.is_empty()).then(|| percentiles(&scaled(&st.ttfb, speed))),
        send_lateness_ms: (!st.lateness.is_empty())
            .then(|| percentiles(&scaled(&st.lateness, speed))),
        latency_hdr: (!latency.is_empty())
            .then(|| recorder::encode_hist(&latency))
            .flatten(),
        users,
        replicas: obs.replicas,
        pods: obs.pods,
        hpa: obs.hpa,
        tiers: obs.tiers,
    }
}

/// The load offered when an event happened: the schedule's rate then, or
/// for a closed model what its users sent in the event's sample.
pub(super) fn offered_at(load: &Load, ev: &Event, sample: &Sample) -> f64 {
    if load.is_users() {
        sample.offered_qps
    } else {
        load.rate_at(ev.t.max(0.0)).0
    }
}

/// The engine records real microseconds; reports are in experiment time.
fn scaled(h: &Histogram<u64>, speed: f64) -> Histogram<u64> {
    let mut out =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid");
    for v in h.iter_recorded() {
        let x = ((v.value_iterated_to() as f64) * speed).round().max(1.0) as u64;
        let _ = out.record_n(x.min(3_600_000_000), v.count_at_value());
    }
    out
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    Percentiles {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: h.max() as f64 / 1000.0,
    }
}
