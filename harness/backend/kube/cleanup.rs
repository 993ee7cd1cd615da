//! `cleanup`: the namespaces runs left behind, told apart from those of
//! runs still going and those already being deleted.
//!
//! A run keeps a heartbeat annotation on its namespace fresh while it runs
//! (`HEARTBEAT_EVERY`); a namespace whose heartbeat is older than
//! `LIVE_WITHIN` was left by a run that was killed or lost its cluster.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;

use super::convert::MANAGED_BY;
use super::{api_message, delete_namespace};
use crate::error::InfraError;

/// Annotation with the last time the run was alive (RFC 3339).
pub const HEARTBEAT: &str = "autoscale-harness/heartbeat";
/// Annotation naming the run's process: `pid <n> on <host>`.
pub const OWNER: &str = "autoscale-harness/owner";
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
/// Three missed heartbeats: the run is gone.
pub const LIVE_WITHIN: Duration = Duration::from_secs(60);

/// What a labelled namespace is.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Left by a run that stopped; `age` since its last heartbeat, if any.
    Left { age: Option<Duration> },
    /// A run still going; deleted only with `--include-live`.
    Live { age: Duration, owner: String },
    /// Already being deleted.
    Terminating,
}

/// Classifies a namespace at `now`.
pub fn classify(ns: &Namespace, now: jiff::Timestamp) -> State {
    if ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
    {
        return State::Terminating;
    }
    let notes = ns.metadata.annotations.as_ref();
    let beat = notes
        .and_then(|a| a.get(HEARTBEAT))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let age = beat.map(|b| Duration::from_millis(now.duration_since(b).as_millis().max(0) as u64));
    match age {
        Some(age) if age <= LIVE_WITHIN => State::Live {
            age,
            owner: notes
                .and_then(|a| a.get(OWNER))
                .cloned()
                .unwrap_or_default(),
        },
        _ => State::Left { age },
    }
}

/// The annotations a run starts with.
pub fn annotations() -> std::collections::BTreeMap<String, String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    std::collections::BTreeMap::from([
        (HEARTBEAT.to_string(), jiff::Timestamp::now().to_string()),
        (
            OWNER.to_string(),
            format!("pid {} on {host}", std::process::id()),
        ),
    ])
}

/// Keeps the run's heartbeat fresh until aborted; a failed beat is retried
/// at the next one (a run outliving `LIVE_WITHIN` without beats could be
/// deleted by a `cleanup --include-live` only).
pub async fn heartbeat(client: Client, ns: String) {
    let api: Api<Namespace> = Api::all(client);
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        let patch = serde_json::json!({"metadata": {"annotations": {
            HEARTBEAT: jiff::Timestamp::now().to_string()}}});
        let _ = api
            .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
}

/// The harness's namespaces and what each is; deletes those left behind
/// (and live ones with `include_live`) unless `dry_run`.
pub async fn cleanup(
    client: &Client,
    dry_run: bool,
    include_live: bool,
) -> Result<Vec<(String, State)>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)))
        .await
        .map_err(|e| InfraError(format!("cannot list namespaces: {}", api_message(&e))))?;
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for ns in list.items {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let state = classify(&ns, now);
        let delete = match state {
            State::Left { .. } => true,
            State::Live { .. } => include_live,
            State::Terminating => false,
        };
        if delete && !dry_run {
            delete_namespace(client, &name).await?;
        }
        out.push((name, state));
    }
    Ok(out)
}

/// One line per namespace, saying what was (or would be) done.
pub fn describe(name: &str, state: &State, dry_run: bool, include_live: bool) -> String {
    let ago = |d: &Duration| crate::scenario::fmt_dur(Duration::from_secs(d.as_secs()));
    let verb = if dry_run { "would delete" } else { "deleted" };
    match state {
        State::Left { age: Some(a) } => {
            format!("{verb} {name} (left by a run that stopped; last heartbeat {} ago)", ago(a))
        }
        State::Left { age: None } => format!("{verb} {name} (left by a run; no heartbeat)"),
        State::Live { age, owner } if include_live => {
            format!("{verb} {name} (a run still in progress: {owner}, heartbeat {} ago)", ago(age))
        }
        State::Live { age, owner } => format!(
            "kept {name}: a run is still in progress ({owner}, heartbeat {} ago); --include-live deletes it",
            ago(age)
        ),
        State::Terminating => format!("{name}: already terminating"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(json: serde_json::Value) -> Namespace {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn heartbeat_age_and_phase_tell_live_left_and_terminating() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
        let beat = |t: &str| {
            ns(
                serde_json::json!({"metadata": {"name": "a", "annotations": {
                HEARTBEAT: t, OWNER: "pid 7 on h"}}}),
            )
        };
        assert_eq!(
            classify(&beat("2026-12-04T09:59:40Z"), now),
            State::Live {
                age: Duration::from_secs(20),
                owner: "pid 7 on h".into()
            }
        );
        assert_eq!(
            classify(&beat("2026-12-04T09:50:00Z"), now),
            State::Left {
                age: Some(Duration::from_secs(600))
            }
        );
        assert_eq!(
            classify(&ns(serde_json::json!({"metadata": {"name": "b"}})), now),
            State::Left { age: None }
        );
        let t =
            ns(serde_json::json!({"metadata": {"name": "c"}, "status": {"phase": "Terminating"}}));
        assert_eq!(classify(&t, now), State::Terminating);
    }
}
