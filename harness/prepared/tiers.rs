//! The workloads the embedded cluster runs, found in the manifests: the app
//! behind the route (the backend tier) and, when the manifests declare one,
//! the gateway's own instances (the gateway tier), each with the HPA that
//! scales it, if one does.
//!
//! A gateway Deployment is recognised as Envoy Gateway marks its data plane:
//! the pod template carries `gateway.envoyproxy.io/owning-gateway-name`,
//! naming the Gateway the route attaches to (`spec.parentRefs`).

use std::path::PathBuf;

use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use crate::error::InputError;
use crate::manifests::{pod_labels, selects_pods_of, Manifest, Manifests};

/// The pod label Envoy Gateway puts on a Gateway's proxy pods.
pub const OWNING_GATEWAY_LABEL: &str = "gateway.envoyproxy.io/owning-gateway-name";

/// Seed 001's node range: a gateway tier scales to at most 20 instances.
pub const SEED_MAX_GATEWAY_INSTANCES: i32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The app behind the route.
    Backend,
    /// The gateway's instances, in front of the backend.
    Gateway,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Gateway => "gateway",
        }
    }
}

/// One workload: a Deployment, where it was declared, and its HPA.
#[derive(Debug, Clone)]
pub struct Tier {
    pub role: Role,
    pub deployment: Deployment,
    pub file: PathBuf,
    pub hpa: Option<HorizontalPodAutoscaler>,
}

impl Tier {
    pub fn name(&self) -> &str {
        self.deployment.metadata.name.as_deref().unwrap_or_default()
    }

    /// The first container's CPU limit in millicores, if it has one.
    pub fn cpu_limit_milli(&self) -> Option<i64> {
        self.cpu("limits")
    }

    /// The first container's CPU request in millicores, if it has one.
    pub fn cpu_request_milli(&self) -> Option<i64> {
        self.cpu("requests")
    }

    fn cpu(&self, which: &str) -> Option<i64> {
        let r = self
            .deployment
            .spec
            .as_ref()?
            .template
            .spec
            .as_ref()?
            .containers
            .first()?
            .resources
            .as_ref()?;
        let m = if which == "limits" {
            r.limits.as_ref()
        } else {
            r.requests.as_ref()
        }?;
        m.get("cpu")
            .and_then(|q| crate::autoscaler::parse_quantity_milli(&q.0).ok())
    }
}

/// The tiers, backend first. `target` is the HPA the scenario watches.
pub(super) fn resolve(
    m: &Manifests,
    route: &HttpRoute,
    route_file: &std::path::Path,
    target: &HorizontalPodAutoscaler,
) -> Result<Vec<Tier>, InputError> {
    let gateways: Vec<(&Manifest, &Deployment)> = m
        .deployments()
        .filter(|(_, d)| pod_labels(d).contains_key(OWNING_GATEWAY_LABEL))
        .collect();
    if let [(first, _), (second, _), ..] = gateways[..] {
        return Err(second.err(
            "spec.template.metadata.labels",
            format!(
                "a second gateway Deployment (label {OWNING_GATEWAY_LABEL}); the embedded cluster runs one gateway tier, and {} ({}:{}) is already it",
                first.name(),
                first.file.display(),
                first.line
            ),
        ));
    }
    let gateway = gateways.first().copied();
    if let Some((gm, gd)) = gateway {
        let owner = pod_labels(gd)
            .get(OWNING_GATEWAY_LABEL)
            .cloned()
            .unwrap_or_default();
        let parents: Vec<&str> = route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .map(|p| p.name.as_str())
            .collect();
        if !parents.contains(&owner.as_str()) {
            return Err(gm.err(
                &format!("spec.template.metadata.labels.{OWNING_GATEWAY_LABEL}"),
                format!(
                    "names Gateway `{owner}`, but HTTPRoute {} ({}) attaches to {}; the gateway tier must serve the route the load goes through",
                    route.metadata.name.as_deref().unwrap_or_default(),
                    route_file.display(),
                    if parents.is_empty() {
                        "no Gateway (spec.parentRefs is empty)".to_owned()
                    } else {
                        parents
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
        if !m.services().any(|(_, svc)| selects_pods_of(svc, gd)) {
            return Err(gm.err(
                "spec.template.metadata.labels",
                "no Service selects the gateway's pods; the load goes to a Service in front of the gateway instances, so add one whose selector matches these labels",
            ));
        }
    }

    let target_name = target
        .spec
        .as_ref()
        .map(|sp| sp.scale_target_ref.name.as_str())
        .unwrap_or_default();
    let is_gateway = |name: &str| gateway.is_some_and(|(gm, _)| gm.name() == name);
    // The backend: the HPA's Deployment, or, when the HPA scales the
    // gateway, the Deployment the route's first backend Service selects.
    let backend = if is_gateway(target_name) {
        backend_of_route(m, route)
    } else {
        m.deployments().find(|(dm, _)| dm.name() == target_name)
    };
    let Some((bm, bd)) = backend else {
        return Err(InputError::new(
            route_file,
            "no Deployment serves the route's first backend Service: the embedded cluster needs the backend's pods",
        )
        .field("spec.rules[0].backendRefs[0].name"));
    };
    if is_gateway(&bm.name()) {
        return Err(InputError::new(
            route_file,
            format!(
                "the route's backend Service selects the gateway's own pods ({}): the gateway would proxy to itself",
                bm.name()
            ),
        )
        .field("spec.rules[0].backendRefs[0].name"));
    }

    let hpa_of = |name: &str| -> Option<HorizontalPodAutoscaler> {
        let scales = |h: &HorizontalPodAutoscaler| {
            h.spec
                .as_ref()
                .is_some_and(|sp| sp.scale_target_ref.name == name)
        };
        if scales(target) {
            return Some(target.clone());
        }
        m.hpas().map(|(_, h)| h).find(|h| scales(h)).cloned()
    };
    let mut tiers = vec![Tier {
        role: Role::Backend,
        deployment: bd.clone(),
        file: bm.file.clone(),
        hpa: hpa_of(&bm.name()),
    }];
    if let Some((gm, gd)) = gateway {
        tiers.push(Tier {
            role: Role::Gateway,
            deployment: gd.clone(),
            file: gm.file.clone(),
            hpa: hpa_of(&gm.name()),
        });
    }
    Ok(tiers)
}

/// The Deployment whose pods the route's first backend Service selects.
pub(super) fn backend_of_route<'a>(
    m: &'a Manifests,
    route: &HttpRoute,
) -> Option<(&'a Manifest, &'a Deployment)> {
    let name = route
        .spec
        .rules
        .as_ref()?
        .first()?
        .backend_refs
        .as_ref()?
        .first()?
        .name
        .clone();
    let (_, svc) = m.services().find(|(sm, _)| sm.name() == name)?;
    m.deployments().find(|(_, d)| selects_pods_of(svc, d))
}
