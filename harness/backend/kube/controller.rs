//! The harness as a controller on a real cluster, where the cluster has
//! none for a scaler (a schedule with `schedule.controller: harness`, a Lua
//! policy): the writes such a controller makes. It resizes a Deployment
//! through its scale subresource, as the HPA controller does, and posts an
//! events.k8s.io/v1 Event about what it acted on, so `kubectl describe`
//! and `kubectl events` show it. The harness records its own decisions
//! directly; the copies of its Events that the Events watch delivers are
//! dropped (`posted_by_harness`).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventsV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use super::api_message;

/// `reportingController` of the Events the harness posts.
pub const REPORTING_CONTROLLER: &str = "autoscale-harness";

/// Whether a cluster Event is one the harness posted itself: recorded
/// already, when the harness acted.
pub fn posted_by_harness(e: &KubeEvent) -> bool {
    e.reporting_component.as_deref() == Some(REPORTING_CONTROLLER)
}

pub fn reference(api_version: &str, kind: &str, name: &str, ns: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

/// Sets Deployment `ns/name`'s spec.replicas through its scale
/// subresource, under field manager `manager`.
pub async fn scale(
    client: &Client,
    ns: &str,
    name: &str,
    to: i32,
    manager: &str,
) -> Result<(), kube::Error> {
    let pp = PatchParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch_scale(name, &pp, &Patch::Merge(json!({"spec": {"replicas": to}})))
        .await
        .map(drop)
}

/// What an Event says.
pub struct Note<'a> {
    /// `Normal` or `Warning`.
    pub type_: &'a str,
    pub reason: &'a str,
    /// What the controller did or failed to do (events.k8s.io's `action`).
    pub action: &'a str,
    pub note: &'a str,
}

/// Posts an events.k8s.io/v1 Event about `regarding` in `ns`, stamped `at`;
/// the API server's refusal as one line.
pub async fn post(
    client: &Client,
    ns: &str,
    regarding: ObjectReference,
    n: Note<'_>,
    at: jiff::Timestamp,
) -> Result<(), String> {
    let mut note = n.note.to_string();
    // The API's limit on a note (1 kB).
    if note.len() > 1024 {
        let mut cut = 1021;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let name = format!(
        "{}.{:x}",
        regarding.name.as_deref().unwrap_or("harness"),
        at.as_nanosecond()
    );
    let ev = EventsV1 {
        metadata: kube::api::ObjectMeta {
            name: Some(name),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        event_time: Some(MicroTime(at)),
        type_: Some(n.type_.into()),
        reason: Some(n.reason.into()),
        action: Some(n.action.into()),
        note: Some(note),
        regarding: Some(regarding),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(format!("{REPORTING_CONTROLLER}-{ns}")),
        ..Default::default()
    };
    Api::<EventsV1>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &ev)
        .await
        .map(drop)
        .map_err(|e| crate::recorder::one_line(&api_message(&e)))
}
