//! The HPA's events as `kubectl describe hpa` prints them, so people who know
//! that output can read the run at a glance.

use crate::recorder::{Event, RunData};

use super::{kube_dur, sorted_events};

/// Whether `kubectl describe hpa` would list this event: it shows only events
/// whose involved object is the HPA. A Lua policy's events are about the
/// Deployment it scales (`kubectl describe deployment` lists those).
fn is_autoscaler_event(run: &RunData, e: &Event) -> bool {
    if run.meta.policy.is_some() {
        return e.source == crate::lua::policy::SOURCE;
    }
    if e.object.is_empty() {
        e.source == "horizontal-pod-autoscaler"
    } else {
        e.object.starts_with("HorizontalPodAutoscaler/")
    }
}

/// The fixed-width block. "At" replaces kubectl's "Age": it is the time since
/// the experiment started, not the time before now.
pub(super) fn block(run: &RunData) -> String {
    let events: Vec<&Event> = sorted_events(run)
        .into_iter()
        .filter(|e| is_autoscaler_event(run, e))
        .collect();
    if events.is_empty() {
        return "Events:  <none>\n".to_string();
    }
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    let mut rows: Vec<[String; 5]> = vec![
        ["Type", "Reason", "At", "From", "Message"].map(String::from),
        ["----", "------", "--", "----", "-------"].map(String::from),
    ];
    rows.extend(events.iter().map(|e| {
        [
            one_line(&e.type_),
            one_line(&e.reason),
            kube_dur(e.t),
            one_line(&e.source),
            one_line(&e.message),
        ]
    }));
    // Like kubectl's tabwriter: columns as wide as their widest cell plus 2.
    let mut width = [0usize; 4];
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("Events:\n");
    for r in &rows {
        out.push_str("  ");
        for (w, cell) in width.iter().zip(r.iter()) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        out.push_str(&r[4]);
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}
