//! A scenario and its manifests, loaded, cross-checked and resolved once:
//! the HPA the run watches, the Deployment it scales, the route the load
//! goes through and the Host header the load sends. Every backend, the run
//! record and `sweep` read these from here instead of looking them up again.

use std::path::Path;

use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use crate::error::InputError;
use crate::manifests::Manifests;
use crate::scenario::{self, Loaded};

pub struct Prepared {
    pub loaded: Loaded,
    pub manifests: Manifests,
    /// The HPA the scenario watches (`target.hpa`, or the only one).
    pub hpa: HorizontalPodAutoscaler,
    /// Its scale target, and the manifest file it came from.
    pub deployment: Deployment,
    pub deployment_file: std::path::PathBuf,
    /// The route the load goes through (`target.route`).
    pub route: HttpRoute,
    /// The Host header the load sends: `target.host`, else the route's first
    /// hostname without a wildcard.
    pub host: Option<String>,
}

impl Prepared {
    /// Loads the scenario file and its manifests (the `validate` command).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let loaded = scenario::load(path)?;
        let manifests = Manifests::load(&loaded.manifest_paths()).map_err(|mut e| {
            e.message = format!(
                "{} (manifest listed in {})",
                e.message,
                loaded.path.display()
            );
            e
        })?;
        Ok(Self::new(loaded, manifests)?)
    }

    /// Resolves the scenario's references into its manifests.
    pub fn new(loaded: Loaded, manifests: Manifests) -> Result<Self, InputError> {
        // Cross-reference errors point into the scenario file; give them its line.
        let locate = |mut e: InputError| {
            if e.file == loaded.path && e.line.is_none() {
                e.line = e
                    .field
                    .as_deref()
                    .and_then(|f| crate::yaml::nearest_line(&loaded.text, f));
            }
            e
        };
        let s = &loaded.scenario;
        let hpa = manifests
            .hpa(&loaded.path, s.target.hpa.as_deref())
            .map_err(locate)?
            .clone();
        let route = manifests
            .route(&loaded.path, &s.target.route)
            .map_err(locate)?
            .clone();
        let target = hpa
            .spec
            .as_ref()
            .map(|sp| sp.scale_target_ref.name.clone())
            .unwrap_or_default();
        let (dm, deployment) = manifests
            .deployments()
            .find(|(dm, _)| dm.name() == target)
            .ok_or_else(|| {
                let hm = manifests
                    .hpas()
                    .find(|(_, h)| h.metadata.name == hpa.metadata.name)
                    .map(|(m, _)| m.file.clone())
                    .unwrap_or_else(|| loaded.path.clone());
                InputError::new(
                    &hm,
                    format!("the scale target Deployment `{target}` is not among the manifests"),
                )
                .field("spec.scaleTargetRef.name")
            })?;
        let (deployment, deployment_file) = (deployment.clone(), dm.file.clone());
        let host = s.target.host.clone().or_else(|| {
            route
                .spec
                .hostnames
                .clone()
                .and_then(|h| h.into_iter().find(|h| !h.starts_with('*')))
        });
        Ok(Self {
            loaded,
            manifests,
            hpa,
            deployment,
            deployment_file,
            route,
            host,
        })
    }

    pub fn scenario(&self) -> &scenario::Scenario {
        &self.loaded.scenario
    }

    /// `name` of the HPA.
    pub fn hpa_name(&self) -> &str {
        self.hpa.metadata.name.as_deref().unwrap_or_default()
    }

    /// `namespace/name` of the target route.
    pub fn route_key(&self) -> String {
        route_key(&self.route)
    }
}

/// `namespace/name` of a route.
pub(crate) fn route_key(r: &HttpRoute) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or("default"),
        r.metadata.name.as_deref().unwrap_or_default()
    )
}
