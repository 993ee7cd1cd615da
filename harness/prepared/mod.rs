//! A scenario and its manifests, loaded, cross-checked and resolved once:
//! the HPA the run watches, the Deployment it scales, the route the load
//! goes through and the Host header the load sends. Every backend, the run
//! record and `sweep` read these from here instead of looking them up again.

mod lua;
mod schedule;
mod tiers;

pub use schedule::Schedule;
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
    /// The HPA the scenario watches (`target.hpa`, or the only one). For an
    /// HPA in the cluster (`in_cluster`) only its name and namespace: its
    /// spec is the cluster's, read by the kube backend.
    pub hpa: HorizontalPodAutoscaler,
    /// Its scale target, and the manifest file it came from (for an HPA in
    /// the cluster: empty, and the scenario file; the kube backend reads
    /// the Deployment from the cluster).
    pub deployment: Deployment,
    pub deployment_file: std::path::PathBuf,
    /// `target.hpa: NAMESPACE/NAME`: an HPA that something in the cluster
    /// created (Envoy Gateway for its proxies), not one of the manifests.
    pub in_cluster: Option<InClusterHpa>,
    /// The route the load goes through (`target.route`).
    pub route: HttpRoute,
    /// The Host header the load sends: `target.host`, else the route's first
    /// hostname without a wildcard.
    pub host: Option<String>,
    /// The workloads of the embedded cluster: the backend, then the
    /// gateway's instances when the manifests declare them.
    pub tiers: Vec<Tier>,
    /// The CronHorizontalPodAutoscaler that adjusts a tier, if any.
    pub schedule: Option<Schedule>,
    /// `target.autoscaler`: a Lua policy scales the target instead of an
    /// HPA. `hpa` is then a stand-in with the policy's name and bounds (no
    /// metrics), so that what reads the HPA's name and range still works,
    /// and no tier runs it as an HPA.
    pub lua: Option<crate::lua::Policy>,
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
        lua::checks(&loaded)?;
        if s.target.autoscaler.is_some() && s.target.hpa.is_some() {
            return Err(loaded.err(
                "target.hpa",
                "a target is scaled by an HPA (`target.hpa`) or by a Lua policy (`target.autoscaler`), not both: drop one",
            ));
        }
        if let Some(r) = s.target.hpa.as_deref().filter(|h| h.contains('/')) {
            return Self::in_cluster(loaded.clone(), manifests, r);
        }
        let route = manifests
            .route(&loaded.path, &s.target.route)
            .map_err(locate)?
            .clone();
        let lua = match &s.target.autoscaler {
            Some(a) => Some(lua::resolve(&loaded, &manifests, &route, a)?),
            None => None,
        };
        let hpa = match &lua {
            Some((policy, deployment)) => lua::stand_in(policy, deployment),
            None => manifests
                .hpa(&loaded.path, s.target.hpa.as_deref())
                .map_err(locate)?
                .clone(),
        };
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
        let mut tiers = tiers::resolve(&manifests, &route, &route_file, &hpa)?;
        if lua.is_some() {
            // The stand-in is no HPA to run.
            for t in &mut tiers {
                if t.hpa.as_ref() == Some(&hpa) {
                    t.hpa = None;
                }
            }
        }
        let host = host_of(s, &route);
        let schedule = schedule::resolve(&loaded, &manifests, &tiers)?;
        Ok(Self {
            loaded,
            manifests,
            hpa,
            deployment,
            deployment_file,
            route,
            host,
            tiers,
            schedule,
            in_cluster: None,
            lua: lua.map(|(p, _)| p),
        })
    }

    /// A scenario whose HPA lives in the cluster: the route and the Host
    /// header come from the manifests as usual; the HPA is known by name.
    fn in_cluster(loaded: Loaded, manifests: Manifests, r: &str) -> Result<Self, InputError> {
        let err = |field: &str, msg: String| {
            InputError::new(&loaded.path, msg)
                .field(field)
                .at(crate::yaml::nearest_line(&loaded.text, field), None)
        };
        let ih = InClusterHpa::parse(r).map_err(|m| err("target.hpa", m))?;
        let s = &loaded.scenario;
        if s.target.replicas.is_some() {
            return Err(err(
                "target.replicas",
                format!(
                    "cannot be set with `target.hpa: {r}`: that HPA's Deployment belongs to whatever created the HPA, not to the harness; its minReplicas sets the starting size"
                ),
            ));
        }
        let route = manifests
            .route(&loaded.path, &s.target.route)
            .map_err(|mut e| {
                if e.line.is_none() {
                    e.line = crate::yaml::nearest_line(&loaded.text, "target.route");
                }
                e
            })?
            .clone();
        let host = host_of(s, &route);
        let hpa = HorizontalPodAutoscaler {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(ih.name.clone()),
                namespace: Some(ih.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let deployment_file = loaded.path.clone();
        let schedule = schedule::resolve(&loaded, &manifests, &[])?;
        Ok(Self {
            schedule,
            loaded,
            manifests,
            hpa,
            deployment: Deployment::default(),
            deployment_file,
            route,
            host,
            // The embedded cluster refuses such a scenario (`require_manifest_hpa`).
            tiers: Vec::new(),
            in_cluster: Some(ih),
            lua: None,
        })
    }

    /// Refuses an HPA in the cluster for a backend without a cluster (local,
    /// sim): exit 2 with the file, line and field.
    pub fn require_manifest_hpa(&self, backend: &str) -> Result<(), InputError> {
        let Some(ih) = &self.in_cluster else {
            return Ok(());
        };
        let found: Vec<String> = self
            .manifests
            .hpas()
            .filter_map(|(_, h)| h.metadata.name.clone())
            .collect();
        let field = "target.hpa";
        Err(InputError::new(
            &self.loaded.path,
            format!(
                "`{}/{}` names an HPA in a cluster (NAMESPACE/NAME), which only --backend kube watches; --backend {backend} needs the name of an HPA among the manifests (found: {})",
                ih.namespace,
                ih.name,
                if found.is_empty() { "none".to_string() } else { found.join(", ") }
            ),
        )
        .field(field)
        .at(crate::yaml::nearest_line(&self.loaded.text, field), None))
    }

    /// `--schedule-controller`: who runs the CronHorizontalPodAutoscaler,
    /// over the scenario's `schedule.controller`; the schedule is resolved
    /// again as if the file said so. `off` on manifests without one is the
    /// baseline already and changes nothing; `harness` or `cluster` there
    /// is a usage error (nothing to run).
    pub fn set_schedule_controller(
        &mut self,
        c: scenario::ScheduleController,
    ) -> anyhow::Result<()> {
        if self.manifests.cron_hpas().next().is_none() {
            if c == scenario::ScheduleController::Off {
                return Ok(());
            }
            return Err(crate::error::UsageError(format!(
                "--schedule-controller {}: the manifests of {} hold no CronHorizontalPodAutoscaler",
                c.name(),
                self.loaded.path.display()
            ))
            .into());
        }
        self.loaded.scenario.schedule.controller = c;
        self.schedule = schedule::resolve(&self.loaded, &self.manifests, &self.tiers)?;
        Ok(())
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

/// `target.hpa: NAMESPACE/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InClusterHpa {
    pub namespace: String,
    pub name: String,
}

impl InClusterHpa {
    /// A namespace (a DNS-1123 label) and an HPA name (a DNS-1123
    /// subdomain), as the API server accepts them.
    pub fn parse(r: &str) -> Result<Self, String> {
        let shape = || {
            format!(
                "`{r}`: write NAMESPACE/NAME for an HPA in the cluster (e.g. envoy-gateway-system/envoy-paper), or the name of an HPA among the manifests"
            )
        };
        let (ns, name) = r.split_once('/').ok_or_else(shape)?;
        use crate::manifests::dns;
        dns::label(ns).map_err(|why| format!("{}; the namespace `{ns}` {why}", shape()))?;
        dns::subdomain(name).map_err(|why| format!("{}; the name `{name}` {why}", shape()))?;
        Ok(Self {
            namespace: ns.into(),
            name: name.into(),
        })
    }
}

/// Expectations the HPA's own bounds rule out: the run could only fail them.
/// The kube backend asks this again of an HPA it reads from the cluster.
pub(crate) fn check_against_hpa(
    l: &Loaded,
    hpa: &HorizontalPodAutoscaler,
) -> Result<(), InputError> {
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

/// The Host header the load sends: `target.host`, else the route's first
/// hostname without a wildcard.
fn host_of(s: &scenario::Scenario, route: &HttpRoute) -> Option<String> {
    s.target.host.clone().or_else(|| {
        route
            .spec
            .hostnames
            .clone()
            .and_then(|h| h.into_iter().find(|h| !h.starts_with('*')))
    })
}

/// `namespace/name` of a route.
pub(crate) fn route_key(r: &HttpRoute) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or("default"),
        r.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::InClusterHpa;

    #[test]
    fn in_cluster_hpa_is_namespace_slash_name() {
        assert_eq!(
            InClusterHpa::parse("envoy-gateway-system/envoy-paper"),
            Ok(InClusterHpa {
                namespace: "envoy-gateway-system".into(),
                name: "envoy-paper".into()
            })
        );
        for bad in ["/x", "ns/", "a/b/c", "NS/x", "ns/x_y", "-ns/x"] {
            let e = InClusterHpa::parse(bad).unwrap_err();
            assert!(e.contains("NAMESPACE/NAME"), "{bad}: {e}");
        }
    }
}
