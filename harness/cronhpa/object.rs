//! The CronHorizontalPodAutoscaler as users deploy it
//! (`autoscaling.alibabacloud.com/v1beta1`, kubernetes-cronhpa-controller's
//! `pkg/apis/autoscaling/v1beta1`): field for field, so the same object is
//! decoded from the scenario's manifests and applied unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "autoscaling.alibabacloud.com/v1beta1";
pub const KIND: &str = "CronHorizontalPodAutoscaler";
/// The resource's plural name (URL path segment).
pub const PLURAL: &str = "cronhorizontalpodautoscalers";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronHorizontalPodAutoscaler {
    pub metadata: ObjectMeta,
    pub spec: CronHpaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CronHpaStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronHpaSpec {
    /// Days on which no job acts, as cron expressions (`* * * 15 11 *`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_dates: Vec<String>,
    pub scale_target_ref: ScaleTargetRef,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub name: String,
    /// Six fields with seconds (`0 0 9 * * *`), or `@daily`, `@every 90s`,
    /// `@date 2026-12-01 09:00:00`.
    pub schedule: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub run_once: bool,
    pub target_size: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronHpaStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_ref: Option<ScaleTargetRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_dates: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One job's last run, as the controller writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub name: String,
    #[serde(default)]
    pub job_id: String,
    pub schedule: String,
    pub target_size: i32,
    #[serde(default)]
    pub run_once: bool,
    /// `Succeed`, `Failed` or `Submitted`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// What a CronHorizontalPodAutoscaler scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Scheduled scaling only: the Deployment's replicas are set.
    Deployment(String),
    /// Combined with metric scaling: the HPA's range is adjusted.
    Hpa(String),
}

impl CronHorizontalPodAutoscaler {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The object as the API server is sent it, `apiVersion` and `kind` included.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("apiVersion".into(), API_VERSION.into());
            o.insert("kind".into(), KIND.into());
        }
        v
    }

    /// The target by kind; `None` for a kind the harness cannot scale.
    pub fn target(&self) -> Option<Target> {
        let r = &self.spec.scale_target_ref;
        match r.kind.as_str() {
            "Deployment" => Some(Target::Deployment(r.name.clone())),
            "HorizontalPodAutoscaler" => Some(Target::Hpa(r.name.clone())),
            _ => None,
        }
    }
}
