//! A scenario and its manifests, loaded, cross-checked and resolved once:
//! the HPA the run watches, the Deployment it scales, the route the load
//! goes through and the Host header the load sends. Every backend, the run
//! record and `sweep` read these from here instead of looking them up again.

mod tiers;

pub use tiers::{Role, Tier, SEED_MAX_GATEWAY_INSTANCES};

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
    /// The workloads of the embedded cluster: the backend, then the
    /// gateway's instances when the manifests declare them.
    pub tiers: Vec<Tier>,
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
        check_against_hpa(&loaded, &hpa)?;
        let route_file = manifests
            .routes()
            .find(|(_, r)| route_key(r) == route_key(&route))
            .map(|(m, _)| m.file.clone())
            .unwrap_or_else(|| loaded.path.clone());
        let tiers = tiers::resolve(&manifests, &route, &route_file, &hpa)?;
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
            tiers,
        })
    }

    pub fn scenario(&self) -> &scenario::Scenario {
        &self.loaded.scenario
    }

    /// `name` of the HPA.
    pub fn hpa_name(&self) -> &str {
        self.hpa.metadata.name.as_deref().unwrap_or_default()
    }

    /// The index in `tiers` of the one the scenario's HPA scales.
    pub fn target_tier(&self) -> usize {
        let name = self.deployment.metadata.name.as_deref();
        self.tiers
            .iter()
            .position(|t| t.deployment.metadata.name.as_deref() == name)
            .unwrap_or(0)
    }

    /// The gateway tier, when the manifests declare one.
    pub fn gateway_tier(&self) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.role == Role::Gateway)
    }

    /// `namespace/name` of the target route.
    pub fn route_key(&self) -> String {
        route_key(&self.route)
    }
}

/// Expectations the HPA's own bounds rule out: the run could only fail them.
fn check_against_hpa(l: &Loaded, hpa: &HorizontalPodAutoscaler) -> Result<(), InputError> {
    let Some(spec) = hpa.spec.as_ref() else {
        return Ok(());
    };
    let (min, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
    let name = hpa.metadata.name.as_deref().unwrap_or_default();
    let err = |field: String, msg: String| {
        InputError::new(&l.path, msg)
            .field(field.clone())
            .at(crate::yaml::nearest_line(&l.text, &field), None)
    };
    use scenario::Expectation as E;
    for (i, e) in l.scenario.expect.iter().enumerate() {
        match e {
            E::ScaleOut(so) if so.to > max => {
                return Err(err(
                    format!("expect[{i}].scale_out.to"),
                    format!(
                        "{} is above maxReplicas {max} of HorizontalPodAutoscaler {name}: it can never scale there",
                        so.to
                    ),
                ))
            }
            E::ScaleIn(si) if si.to < min => {
                return Err(err(
                    format!("expect[{i}].scale_in.to"),
                    format!(
                        "{} is below minReplicas {min} of HorizontalPodAutoscaler {name}: it never scales below {min}",
                        si.to
                    ),
                ))
            }
            E::MinReplicas(n) if *n > max => {
                return Err(err(
                    format!("expect[{i}].min_replicas"),
                    format!(
                        "{n} is above maxReplicas {max} of HorizontalPodAutoscaler {name}: it could never hold"
                    ),
                ))
            }
            E::MaxReplicas(n) if *n < min => {
                return Err(err(
                    format!("expect[{i}].max_replicas"),
                    format!(
                        "{n} is below minReplicas {min} of HorizontalPodAutoscaler {name}: it could never hold"
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// `namespace/name` of a route.
pub(crate) fn route_key(r: &HttpRoute) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or("default"),
        r.metadata.name.as_deref().unwrap_or_default()
    )
}
