//! The embedded cluster's fixed facts, read once from the prepared scenario
//! and manifests: the scale target's pods (container, requests, probe,
//! start-up delay, grace), the Services in front of them, the routes, the
//! HPA and the controller settings. All durations are experiment time.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::deployment::template_hash;
use super::metrics::Windows;
use crate::autoscaler::{parse_quantity_milli, ControllerConfig, Millis};
use crate::error::InputError;
use crate::manifests::selects_pods_of;
use crate::prepared::{route_key, Prepared, Role};

pub(crate) struct Config {
    pub(crate) role: Role,
    pub(crate) deployment: String,
    pub(crate) replica_set: String,
    pub(crate) container: String,
    pub(crate) cpu_request_milli: Option<i64>,
    pub(crate) memory_request_milli: Option<i64>,
    pub(crate) startup_delay: Duration,
    pub(crate) probe_path: String,
    pub(crate) probe_period: Duration,
    pub(crate) probe_initial_delay: Duration,
    pub(crate) grace: Duration,
    /// Services in front of the pods: (name, port).
    pub(crate) services: Vec<(String, u16)>,
    /// The HPA that scales this Deployment, if one does.
    pub(crate) hpa: Option<HorizontalPodAutoscaler>,
    /// The Lua policy that scales it instead of an HPA, if one does.
    pub(crate) lua: Option<crate::lua::Policy>,
    /// The CronHorizontalPodAutoscaler that adjusts it, if one does.
    pub(crate) schedule: Option<crate::prepared::Schedule>,
    /// The scale subresource's selector, e.g. `app=httpbin`.
    pub(crate) selector: String,
    pub(crate) controller: ControllerConfig,
    pub(crate) sync_period: Duration,
    pub(crate) scrape_interval: Duration,
    pub(crate) windows: Windows,
    /// Every route's `namespace/name` and labels (External metrics select by them).
    pub(crate) routes: Vec<(String, BTreeMap<String, String>)>,
    /// `namespace/name` of the route the load goes through.
    pub(crate) target_route: String,
    /// spec.replicas at the start.
    pub(crate) initial_replicas: i32,
    /// Seconds of scrapes the metrics history keeps.
    pub(crate) history_keep: f64,
    /// How long the cluster may take until it is ready (`local.ready_timeout`).
    pub(crate) ready_timeout: Duration,
}

impl Config {
    /// The settings of tier `tier` of `p.tiers`.
    pub(crate) fn new(p: &Prepared, tier: usize) -> Result<Self, InputError> {
        let s = p.scenario();
        let t = &p.tiers[tier];
        let gateway = t.role == Role::Gateway;
        let hpa = t.hpa.clone();
        let deploy_name = t.name().to_owned();
        let dspec = t.deployment.spec.clone().unwrap_or_default();
        let pod_spec = dspec.template.spec.clone().unwrap_or_default();
        let Some(container) = pod_spec.containers.first().cloned() else {
            return Err(
                InputError::new(&t.file, "the pod template has no containers").field(format!(
                    "Deployment {deploy_name}: spec.template.spec.containers"
                )),
            );
        };
        let requests = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        let request = |name: &str| {
            requests
                .get(name)
                .and_then(|q| parse_quantity_milli(&q.0).ok())
        };
        let probe = container.readiness_probe.clone();
        let readiness_path = if gateway {
            None
        } else {
            s.local.pods.readiness_path.clone()
        };
        let probe_path = readiness_path
            .or_else(|| {
                probe
                    .as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .and_then(|g| g.path.clone())
            })
            .unwrap_or_else(|| {
                if gateway {
                    // The instance's admin listener, as Envoy's /ready.
                    "/ready".into()
                } else if s.local.pods.command.is_some() {
                    "/".into()
                } else {
                    "/health".into()
                }
            });
        let probe_seconds = |f: Option<i32>, default: i32, min: i32| {
            Duration::from_secs(f.unwrap_or(default).max(min) as u64)
        };
        let probe_period = probe_seconds(probe.as_ref().and_then(|p| p.period_seconds), 10, 1);
        let probe_initial_delay =
            probe_seconds(probe.as_ref().and_then(|p| p.initial_delay_seconds), 0, 0);
        let grace = pod_spec
            .termination_grace_period_seconds
            .map(|g| Duration::from_secs(g.max(0) as u64))
            .unwrap_or(s.local.pods.termination_grace);

        // Services whose selector picks the Deployment's pods.
        let services: Vec<(String, u16)> = p
            .manifests
            .services()
            .filter(|(_, svc)| selects_pods_of(svc, &t.deployment))
            .flat_map(|(sm, svc)| {
                let ports: Vec<u16> = svc
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.ports.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|p| p.port as u16)
                    .collect();
                let name = sm.name();
                ports.into_iter().map(move |p| (name.clone(), p))
            })
            .collect();

        let routes = p
            .manifests
            .routes()
            .map(|(_, r)| (route_key(r), r.metadata.labels.clone().unwrap_or_default()))
            .collect();

        let c = &s.local.controller;
        let controller = ControllerConfig {
            tolerance: c.tolerance,
            cpu_initialization_period: c.cpu_initialization_period.as_millis() as Millis,
            initial_readiness_delay: c.initial_readiness_delay.as_millis() as Millis,
            downscale_stabilization_window: c.downscale_stabilization.as_millis() as Millis,
            ..ControllerConfig::default()
        };
        let mt = &s.local.metrics;
        let startup_delay = if gateway {
            s.local.gateway.startup_delay
        } else {
            s.local.pods.startup_delay
        };
        // `target.replicas` sizes the tier the scenario's HPA scales.
        let initial_replicas = if tier == p.target_tier() {
            s.target.replicas.or(dspec.replicas)
        } else {
            dspec.replicas
        }
        .unwrap_or(1);
        Ok(Config {
            role: t.role,
            replica_set: format!("{deploy_name}-{}", template_hash(&deploy_name)),
            deployment: deploy_name,
            container: container.name.clone(),
            cpu_request_milli: request("cpu"),
            memory_request_milli: request("memory"),
            startup_delay,
            probe_path,
            probe_period,
            probe_initial_delay,
            grace,
            services,
            hpa,
            lua: p.lua.clone().filter(|_| tier == p.target_tier()),
            schedule: p.schedule.clone().filter(|sc| sc.tier == Some(tier)),
            selector: dspec
                .selector
                .match_labels
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            controller,
            sync_period: c.sync_period,
            scrape_interval: mt.scrape_interval,
            windows: Windows {
                rate: mt.window.as_secs_f64(),
                resource: mt.resource_window.as_secs_f64(),
                container: container.name.clone(),
            },
            routes,
            target_route: p.route_key(),
            initial_replicas,
            history_keep: mt.window.max(mt.resource_window).as_secs_f64()
                + 2.0 * mt.scrape_interval.as_secs_f64(),
            ready_timeout: s.local.ready_timeout,
        })
    }
}
