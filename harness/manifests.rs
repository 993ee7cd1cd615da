//! Kubernetes manifests decoded into the real API types (k8s-openapi and
//! gateway-api), the same files a real cluster gets. Validation here covers
//! what the API server would reject and what the harness needs to run.

use std::path::{Path, PathBuf};

use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

use crate::cronhpa::CronHorizontalPodAutoscaler;
use crate::error::InputError;
use crate::scenario::MAX_PODS;
use crate::yaml;

/// One decoded object and where it came from.
#[derive(Debug, Clone)]
pub enum Object {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    Hpa(Box<HorizontalPodAutoscaler>),
    HttpRoute(Box<HttpRoute>),
    CronHpa(Box<CronHorizontalPodAutoscaler>),
}

impl Object {
    /// The object as JSON: what the API server would be sent (the apply
    /// body, `kind`/`apiVersion` included), so a field the types do not
    /// know is absent from it.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Hpa(o) => serde_json::to_value(o),
            Object::HttpRoute(o) => serde_json::to_value(o),
            Object::CronHpa(o) => return o.to_json(),
        };
        v.unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: Object,
    pub file: PathBuf,
    /// 1-based line where the document starts in `file`.
    pub line: usize,
    /// The document's own text (for line look-ups and `--dry-run`).
    pub text: String,
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self.object {
            Object::Deployment(_) => "Deployment",
            Object::Service(_) => "Service",
            Object::Hpa(_) => "HorizontalPodAutoscaler",
            Object::HttpRoute(_) => "HTTPRoute",
            Object::CronHpa(_) => crate::cronhpa::object::KIND,
        }
    }
    pub fn name(&self) -> String {
        self.metadata().name.clone().unwrap_or_default()
    }
    fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match &self.object {
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Hpa(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::CronHpa(o) => &o.metadata,
        }
    }
    pub(crate) fn err(&self, field: &str, msg: impl Into<String>) -> InputError {
        let line = yaml::nearest_line(&self.text, field).map(|l| l + self.line - 1);
        InputError::new(&self.file, msg)
            .field(format!("{} {}: {field}", self.kind(), self.name()))
            .at(line.or(Some(self.line)), None)
    }
}

fn join(ports: &[i32]) -> String {
    if ports.is_empty() {
        return "no ports".into();
    }
    ports
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Service has ports in range and a selector (without one it selects
/// nothing the harness runs).
fn check_service(m: &Manifest, svc: &Service) -> Result<(), InputError> {
    let spec = svc
        .spec
        .as_ref()
        .ok_or_else(|| m.err("spec", "is required"))?;
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() {
        return Err(m.err("spec.ports", "list at least one port"));
    }
    for (i, p) in ports.iter().enumerate() {
        if !(1..=65535).contains(&p.port) {
            return Err(m.err(
                &format!("spec.ports[{i}].port"),
                format!("{} is not a port: allowed are 1-65535", p.port),
            ));
        }
    }
    if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(m.err(
            "spec.selector",
            "is required: the labels of the pods the Service sends traffic to",
        ));
    }
    Ok(())
}

/// Containers: names are DNS labels, and resource quantities parse, are
/// not negative and requests do not exceed limits (as the API server
/// checks them).
fn check_containers(
    m: &Manifest,
    spec: &k8s_openapi::api::apps::v1::DeploymentSpec,
) -> Result<(), InputError> {
    let containers = spec
        .template
        .spec
        .as_ref()
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    if containers.is_empty() {
        return Err(m.err(
            "spec.template.spec.containers",
            "list at least one container",
        ));
    }
    for (i, c) in containers.iter().enumerate() {
        let at = |k: &str| format!("spec.template.spec.containers[{i}].{k}");
        dns::label(&c.name).map_err(|why| m.err(&at("name"), format!("`{}` {why}", c.name)))?;
        let Some(res) = &c.resources else { continue };
        let mut parsed = std::collections::BTreeMap::new();
        for (block, map) in [("requests", &res.requests), ("limits", &res.limits)] {
            for (name, q) in map.iter().flatten() {
                let field = at(&format!("resources.{block}.{name}"));
                let v = crate::autoscaler::parse_quantity_milli(&q.0).map_err(|e| {
                    m.err(
                        &field,
                        format!(
                            "`{}` is not a Kubernetes quantity ({e}); e.g. 100m, 64Mi, 1",
                            q.0
                        ),
                    )
                })?;
                if v < 0 {
                    return Err(m.err(&field, format!("`{}` must not be negative", q.0)));
                }
                parsed.insert((block, name.as_str()), (v, q.0.as_str()));
            }
        }
        for (&(block, name), &(req, text)) in &parsed {
            if block != "requests" {
                continue;
            }
            if let Some(&(lim, lim_text)) = parsed.get(&("limits", name)) {
                if req > lim {
                    return Err(m.err(
                        &at(&format!("resources.requests.{name}")),
                        format!("`{text}` is above limits.{name} `{lim_text}`; a request must not exceed its limit"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The labels of a Deployment's pods (its pod template's).
pub(crate) fn pod_labels(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|sp| sp.template.metadata.as_ref())
        .and_then(|md| md.labels.clone())
        .unwrap_or_default()
}

/// Whether a Service's selector picks a Deployment's pods (a Service
/// without a selector picks none).
pub(crate) fn selects_pods_of(svc: &Service, d: &Deployment) -> bool {
    let sel = svc
        .spec
        .as_ref()
        .and_then(|sp| sp.selector.clone())
        .unwrap_or_default();
    let labels = pod_labels(d);
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Kubernetes name rules (RFC 1123 and RFC 1035), as the API server's
/// validation states them.
pub(crate) mod dns {
    const WHAT: &str =
        "lowercase letters, digits and `-`, starting and ending with a letter or digit";

    /// RFC 1123 label: namespaces, container names.
    pub(crate) fn label(s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err("is empty; a name is required".into());
        }
        if s.len() > 63 {
            return Err(format!("is {} characters; at most 63", s.len()));
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(format!("is not a DNS label: {WHAT}"))
        }
    }

    /// RFC 1035 label: also starts with a letter (Service names).
    pub(super) fn label_1035(s: &str) -> Result<(), String> {
        label(s)?;
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("is not a DNS-1035 label: a Service name starts with a letter".into());
        }
        Ok(())
    }

    /// RFC 1123 subdomain: dot-separated labels, 253 characters at most.
    pub(crate) fn subdomain(s: &str) -> Result<(), String> {
        if s.len() > 253 {
            return Err(format!("is {} characters; at most 253", s.len()));
        }
        s.split('.')
            .try_for_each(label)
            .map_err(|_| format!("is not a DNS subdomain name: {WHAT}, in parts separated by `.`"))
    }
}

/// A metric's source block matches its type, and its target names a
/// type with the value that type needs, as a valid quantity (what the API
/// server's validation rejects, so a typo fails here and not mid-run).
fn check_target(m: &Manifest, i: usize, metric: &MetricSpec) -> Result<(), InputError> {
    let (block, target) = match metric.type_.as_str() {
        "Resource" => ("resource", metric.resource.as_ref().map(|x| &x.target)),
        "ContainerResource" => (
            "containerResource",
            metric.container_resource.as_ref().map(|x| &x.target),
        ),
        "Pods" => ("pods", metric.pods.as_ref().map(|x| &x.target)),
        "Object" => ("object", metric.object.as_ref().map(|x| &x.target)),
        "External" => ("external", metric.external.as_ref().map(|x| &x.target)),
        _ => return Ok(()),
    };
    let at = |k: &str| format!("spec.metrics[{i}].{block}{k}");
    let t = target.ok_or_else(|| {
        m.err(
            &at(""),
            format!("is required when type is {}", metric.type_),
        )
    })?;
    let quantity = |field: &str, q: &Option<Quantity>| -> Result<bool, InputError> {
        match q {
            None => Ok(false),
            Some(q) => match crate::autoscaler::parse_quantity_milli(&q.0) {
                Ok(v) if v > 0 => Ok(true),
                Ok(_) => Err(m.err(
                    &at(&format!(".target.{field}")),
                    format!("`{}` must be more than 0 (upstream validation)", q.0),
                )),
                Err(e) => Err(m.err(
                    &at(&format!(".target.{field}")),
                    format!(
                        "`{}` is not a Kubernetes quantity ({e}); e.g. 10, 500m, 1k",
                        q.0
                    ),
                )),
            },
        }
    };
    if t.average_utilization.is_some_and(|u| u <= 0) {
        return Err(m.err(
            &at(".target.averageUtilization"),
            "must be more than 0 (percent of the pods' requests)",
        ));
    }
    let has_avg = quantity("averageValue", &t.average_value)?;
    let has_value = quantity("value", &t.value)?;
    let ok = match t.type_.as_str() {
        "Utilization" => t.average_utilization.is_some(),
        "AverageValue" => has_avg,
        "Value" => has_value,
        other => {
            return Err(m.err(
                &at(".target.type"),
                format!("`{other}`: allowed are Utilization, AverageValue, Value"),
            ))
        }
    };
    if !ok {
        let need = match t.type_.as_str() {
            "Utilization" => "averageUtilization",
            "AverageValue" => "averageValue",
            _ => "value",
        };
        return Err(m.err(
            &at(&format!(".target.{need}")),
            format!("is required when target.type is {}", t.type_),
        ));
    }
    Ok(())
}

/// Every object of a scenario, in manifest order.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    pub items: Vec<Manifest>,
}

const SUPPORTED: &str = "apps/v1 Deployment, v1 Service, autoscaling/v2 HorizontalPodAutoscaler, \
gateway.networking.k8s.io/v1 HTTPRoute, autoscaling.alibabacloud.com/v1beta1 \
CronHorizontalPodAutoscaler";

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

impl Manifests {
    pub fn load(paths: &[PathBuf]) -> Result<Self, InputError> {
        let mut items = Vec::new();
        for p in paths {
            let text = yaml::read(p, "the manifest")?;
            let objects = parse_file(p, &text)?;
            if objects.is_empty() {
                return Err(InputError::new(
                    p,
                    format!("the manifest file holds no object (it is empty or only comments); supported: {SUPPORTED}"),
                ));
            }
            items.extend(objects);
        }
        let m = Manifests { items };
        m.validate()?;
        Ok(m)
    }

    /// Replaces item `i` with the single object decoded from `text` (an
    /// edited copy of its document, for `sweep`) and validates the set again.
    pub fn replace(&mut self, i: usize, text: &str) -> Result<(), InputError> {
        let old = &self.items[i];
        let mut new = parse_file(&old.file, text)?;
        if new.len() != 1 || new[0].kind() != old.kind() {
            return Err(InputError::new(
                &old.file,
                format!(
                    "an edit of {} {} must stay one object of that kind",
                    old.kind(),
                    old.name()
                ),
            ));
        }
        let mut m = new.remove(0);
        m.line = old.line;
        self.items[i] = m;
        self.validate()
    }

    pub fn deployments(&self) -> impl Iterator<Item = (&Manifest, &Deployment)> {
        self.items.iter().filter_map(|m| match &m.object {
            Object::Deployment(d) => Some((m, d.as_ref())),
            _ => None,
        })
    }
    pub fn services(&self) -> impl Iterator<Item = (&Manifest, &Service)> {
        self.items.iter().filter_map(|m| match &m.object {
            Object::Service(d) => Some((m, d.as_ref())),
            _ => None,
        })
    }
    pub fn hpas(&self) -> impl Iterator<Item = (&Manifest, &HorizontalPodAutoscaler)> {
        self.items.iter().filter_map(|m| match &m.object {
            Object::Hpa(d) => Some((m, d.as_ref())),
            _ => None,
        })
    }
    pub(crate) fn cron_hpas(
        &self,
    ) -> impl Iterator<Item = (&Manifest, &CronHorizontalPodAutoscaler)> {
        self.items.iter().filter_map(|m| match &m.object {
            Object::CronHpa(d) => Some((m, d.as_ref())),
            _ => None,
        })
    }
    pub fn routes(&self) -> impl Iterator<Item = (&Manifest, &HttpRoute)> {
        self.items.iter().filter_map(|m| match &m.object {
            Object::HttpRoute(d) => Some((m, d.as_ref())),
            _ => None,
        })
    }

    /// The HPA the scenario watches: by name, or the only one.
    pub fn hpa(
        &self,
        scenario: &Path,
        name: Option<&str>,
    ) -> Result<&HorizontalPodAutoscaler, InputError> {
        let all: Vec<_> = self.hpas().map(|(_, h)| h).collect();
        let names: Vec<String> = all
            .iter()
            .map(|h| h.metadata.name.clone().unwrap_or_default())
            .collect();
        match name {
            Some(n) => all
                .into_iter()
                .find(|h| h.metadata.name.as_deref() == Some(n))
                .ok_or_else(|| {
                    InputError::new(
                        scenario,
                        format!(
                            "no HorizontalPodAutoscaler named `{n}` in the manifests (found: {})",
                            names.join(", ")
                        ),
                    )
                    .field("target.hpa")
                }),
            None if all.len() == 1 => Ok(all[0]),
            None => Err(InputError::new(
                scenario,
                format!(
                    "the manifests hold {} HorizontalPodAutoscalers ({}); name the one to watch",
                    all.len(),
                    names.join(", ")
                ),
            )
            .field("target.hpa")),
        }
    }

    pub fn route(&self, scenario: &Path, name: &str) -> Result<&HttpRoute, InputError> {
        self.routes()
            .map(|(_, r)| r)
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| {
                let names: Vec<String> = self.routes().map(|(m, _)| m.name()).collect();
                InputError::new(
                    scenario,
                    format!(
                        "no HTTPRoute named `{name}` in the manifests (found: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
                .field("target.route")
            })
    }

    fn validate(&self) -> Result<(), InputError> {
        self.validate_names()?;
        for (m, d) in self.deployments() {
            let spec = d
                .spec
                .as_ref()
                .ok_or_else(|| m.err("spec", "is required"))?;
            if spec.replicas.is_some_and(|r| !(0..=MAX_PODS).contains(&r)) {
                return Err(m.err(
                    "spec.replicas",
                    format!("must be from 0 to {MAX_PODS} (the embedded cluster's pod limit)"),
                ));
            }
            check_containers(m, spec)?;
            let sel = spec.selector.match_labels.clone().unwrap_or_default();
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|md| md.labels.clone())
                .unwrap_or_default();
            if sel.is_empty() || sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                return Err(m.err(
                    "spec.selector",
                    "matchLabels must be non-empty and match spec.template.metadata.labels",
                ));
            }
        }
        for (m, h) in self.hpas() {
            let spec = h
                .spec
                .as_ref()
                .ok_or_else(|| m.err("spec", "is required"))?;
            let min = spec.min_replicas.unwrap_or(1);
            if min < 1 {
                return Err(m.err(
                    "spec.minReplicas",
                    format!("{min} is not allowed: minReplicas must be ≥ 1"),
                ));
            }
            if !(1..=MAX_PODS).contains(&spec.max_replicas) {
                return Err(m.err(
                    "spec.maxReplicas",
                    format!("must be from 1 to {MAX_PODS} (the embedded cluster's pod limit)"),
                ));
            }
            if spec.max_replicas < min {
                return Err(m.err(
                    "spec.maxReplicas",
                    format!(
                        "{} is below spec.minReplicas {min}: maxReplicas must be ≥ minReplicas",
                        spec.max_replicas
                    ),
                ));
            }
            let r = &spec.scale_target_ref;
            if r.kind != "Deployment" {
                return Err(m.err(
                    "spec.scaleTargetRef.kind",
                    format!("`{}`: the harness scales a Deployment", r.kind),
                ));
            }
            if !self.deployments().any(|(dm, _)| dm.name() == r.name) {
                return Err(m.err(
                    "spec.scaleTargetRef.name",
                    format!("no Deployment named `{}` in the manifests", r.name),
                ));
            }
            if let Some(b) = &spec.behavior {
                for (dir, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                    let Some(rules) = rules else { continue };
                    let f = |k: &str| format!("spec.behavior.{dir}.{k}");
                    if rules
                        .stabilization_window_seconds
                        .is_some_and(|w| !(0..=3600).contains(&w))
                    {
                        return Err(m.err(&f("stabilizationWindowSeconds"), "must be 0-3600"));
                    }
                    if let Some(p) = &rules.select_policy {
                        if !["Max", "Min", "Disabled"].contains(&p.as_str()) {
                            return Err(m.err(
                                &f("selectPolicy"),
                                format!("`{p}`: allowed are Max, Min, Disabled"),
                            ));
                        }
                    }
                    // Upstream defaults a missing list but not an empty one,
                    // and an empty one would stop all scaling this way.
                    if rules.policies.as_ref().is_some_and(Vec::is_empty) {
                        return Err(m.err(
                            &f("policies"),
                            "must specify at least one policy (leave `policies` out for the defaults)",
                        ));
                    }
                    if let Some(t) = &rules.tolerance {
                        match crate::autoscaler::parse_quantity_milli(&t.0) {
                            Ok(v) if v >= 0 => {}
                            Ok(_) => {
                                return Err(m.err(
                                    &f("tolerance"),
                                    format!("`{}`: must be ≥ 0 (a fraction, e.g. 0.05)", t.0),
                                ))
                            }
                            Err(e) => {
                                return Err(m.err(
                                    &f("tolerance"),
                                    format!("`{}` is not a quantity: {e}", t.0),
                                ))
                            }
                        }
                    }
                    for (i, p) in rules.policies.iter().flatten().enumerate() {
                        if p.value <= 0 || !(1..=1800).contains(&p.period_seconds) {
                            return Err(m.err(
                                &f(&format!("policies[{i}]")),
                                "value must be > 0 and periodSeconds 1-1800",
                            ));
                        }
                        if p.type_ != "Pods" && p.type_ != "Percent" {
                            return Err(m.err(
                                &f(&format!("policies[{i}].type")),
                                format!("`{}`: allowed are Pods, Percent", p.type_),
                            ));
                        }
                    }
                }
            }
            for (i, metric) in spec.metrics.iter().flatten().enumerate() {
                let allowed = [
                    "Resource",
                    "ContainerResource",
                    "Pods",
                    "Object",
                    "External",
                ];
                if !allowed.contains(&metric.type_.as_str()) {
                    return Err(m.err(
                        &format!("spec.metrics[{i}].type"),
                        format!("`{}`: allowed are {}", metric.type_, allowed.join(", ")),
                    ));
                }
                check_target(m, i, metric)?;
            }
        }
        for (m, svc) in self.services() {
            check_service(m, svc)?;
        }
        for (m, r) in self.routes() {
            self.check_route(m, r)?;
        }
        for (m, c) in self.cron_hpas() {
            self.check_cron_hpa(m, c)?;
        }
        Ok(())
    }

    /// What kubernetes-cronhpa-controller would fail on at a firing, refused
    /// before the run: a bad cron expression, a target that is missing or
    /// neither a Deployment nor an HPA, a size the target cannot take.
    fn check_cron_hpa(
        &self,
        m: &Manifest,
        c: &CronHorizontalPodAutoscaler,
    ) -> Result<(), InputError> {
        use crate::cronhpa::{cron, Target};
        let r = &c.spec.scale_target_ref;
        let group = r.api_version.split_once('/').map_or("", |(g, _)| g);
        let ns = m.metadata().namespace.clone();
        let same_ns = |x: &Manifest| x.metadata().namespace == ns;
        let (target, floor) = match c.target() {
            Some(Target::Deployment(name)) if group == "apps" => {
                if !self
                    .deployments()
                    .any(|(dm, _)| dm.name() == name && same_ns(dm))
                {
                    return Err(m.err(
                        "spec.scaleTargetRef.name",
                        format!("no Deployment named `{name}` in the manifests"),
                    ));
                }
                ("Deployment", 0)
            }
            Some(Target::Hpa(name)) if group == "autoscaling" => {
                if !self.hpas().any(|(hm, _)| hm.name() == name && same_ns(hm)) {
                    return Err(m.err(
                        "spec.scaleTargetRef.name",
                        format!("no HorizontalPodAutoscaler named `{name}` in the manifests"),
                    ));
                }
                // The HPA's minReplicas becomes the size: it must stay ≥ 1.
                ("HorizontalPodAutoscaler", 1)
            }
            Some(_) => {
                return Err(m.err(
                    "spec.scaleTargetRef.apiVersion",
                    format!(
                        "`{}` does not serve {}; use apps/v1 for a Deployment, \
                         autoscaling/v2 for a HorizontalPodAutoscaler",
                        r.api_version, r.kind
                    ),
                ))
            }
            None => {
                return Err(m.err(
                    "spec.scaleTargetRef.kind",
                    format!(
                        "`{}`: the harness scales a Deployment (scheduled scaling only) \
                         or adjusts a HorizontalPodAutoscaler (combined with metric scaling)",
                        r.kind
                    ),
                ))
            }
        };
        if let Some((other, _)) = self
            .cron_hpas()
            .find(|(om, o)| om.name() != m.name() && o.spec.scale_target_ref == *r)
        {
            return Err(m.err(
                "spec.scaleTargetRef",
                format!(
                    "CronHorizontalPodAutoscaler {} already targets {target} {}; \
                     two schedules on one target would overwrite each other",
                    other.name(),
                    r.name
                ),
            ));
        }
        if c.spec.jobs.is_empty() {
            return Err(m.err("spec.jobs", "must hold at least one job"));
        }
        for (i, job) in c.spec.jobs.iter().enumerate() {
            let f = |k: &str| format!("spec.jobs[{i}].{k}");
            if job.name.is_empty() {
                return Err(m.err(
                    &f("name"),
                    "is required (status conditions are kept per job name)",
                ));
            }
            if c.spec.jobs[..i].iter().any(|j| j.name == job.name) {
                return Err(m.err(
                    &f("name"),
                    format!(
                        "a second job named `{}`; job names must be unique",
                        job.name
                    ),
                ));
            }
            cron::parse(&job.schedule).map_err(|e| m.err(&f("schedule"), e))?;
            if !(floor..=MAX_PODS).contains(&job.target_size) {
                return Err(m.err(
                    &f("targetSize"),
                    format!(
                        "{} is not allowed for a {target}: must be from {floor} to {MAX_PODS}",
                        job.target_size
                    ),
                ));
            }
        }
        for (i, d) in c.spec.exclude_dates.iter().enumerate() {
            cron::parse(d).map_err(|e| m.err(&format!("spec.excludeDates[{i}]"), e))?;
        }
        Ok(())
    }

    /// Routing that cannot work is refused, not run: the local gateway
    /// would answer 404 or 503 to every request while the sim, which does
    /// not route, would scale happily. So both refuse it here.
    fn check_route(&self, m: &Manifest, r: &HttpRoute) -> Result<(), InputError> {
        let rules = r.spec.rules.as_deref().unwrap_or_default();
        if rules.is_empty() {
            return Err(m.err(
                "spec.rules",
                "the route has no rules, so no request reaches a backend; add one with backendRefs",
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            let refs = rule.backend_refs.as_deref().unwrap_or_default();
            if refs.is_empty() {
                return Err(m.err(
                    &format!("spec.rules[{i}]"),
                    "the rule has no backendRefs: the gateway would answer 500 to what it matches",
                ));
            }
            for (j, b) in refs.iter().enumerate() {
                let at = |k: &str| format!("spec.rules[{i}].backendRefs[{j}].{k}");
                if b.kind.as_deref().is_some_and(|k| k != "Service") {
                    return Err(m.err(&at("kind"), "only Service backends are supported"));
                }
                let Some((sm, svc)) = self.services().find(|(sm, _)| sm.name() == b.name) else {
                    return Err(m.err(
                        &at("name"),
                        format!("no Service named `{}` in the manifests", b.name),
                    ));
                };
                let ports: Vec<i32> = svc
                    .spec
                    .iter()
                    .flat_map(|sp| sp.ports.iter().flatten())
                    .map(|p| p.port)
                    .collect();
                match b.port {
                    Some(port) if ports.contains(&port) => {}
                    Some(port) => {
                        return Err(m.err(
                            &at("port"),
                            format!(
                                "Service {} ({}:{}) has no port {port}; its ports: {}",
                                b.name,
                                sm.file.display(),
                                sm.line,
                                join(&ports)
                            ),
                        ))
                    }
                    None => {
                        return Err(m.err(
                            &at("port"),
                            format!(
                                "is required for a Service backend; Service {} has {}",
                                b.name,
                                join(&ports)
                            ),
                        ))
                    }
                }
                let selects = self.deployments().any(|(_, d)| selects_pods_of(svc, d));
                if !selects {
                    return Err(sm.err(
                        "spec.selector",
                        format!(
                            "selects no pod of any Deployment in the manifests, so route {} has no endpoints; match the pod template's labels",
                            m.name()
                        ),
                    ));
                }
            }
        }
        // What else the local gateway refuses (regular expressions, filters, ...).
        crate::backend::local::gateway::check_routes(std::slice::from_ref(r))
            .map_err(|e| m.err(&e.field, e.message))
    }

    /// Names as the API server requires them, and no two objects of one
    /// kind with the same namespace and name (the second would overwrite
    /// the first when applied).
    fn validate_names(&self) -> Result<(), InputError> {
        for (i, m) in self.items.iter().enumerate() {
            let md = m.metadata();
            let name = md.name.as_deref().unwrap_or_default();
            // Services become DNS names of their own: RFC 1035 labels.
            let rule = if matches!(m.object, Object::Service(_)) {
                dns::label_1035(name)
            } else {
                dns::subdomain(name)
            };
            rule.map_err(|why| m.err("metadata.name", format!("`{name}` {why}")))?;
            if let Some(ns) = &md.namespace {
                dns::label(ns)
                    .map_err(|why| m.err("metadata.namespace", format!("`{ns}` {why}")))?;
            }
            let key = |x: &Manifest| (x.kind(), x.metadata().namespace.clone(), x.name());
            if let Some(first) = self.items[..i].iter().find(|x| key(x) == key(m)) {
                return Err(m.err(
                    "metadata.name",
                    format!(
                        "a second {} named `{name}`; the first is at {}:{}",
                        m.kind(),
                        first.file.display(),
                        first.line
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Splits a multi-document file and decodes each document by its apiVersion/kind.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Manifest>, InputError> {
    let mut out = Vec::new();
    for (start, doc) in split_documents(text) {
        let shift = |mut e: InputError| {
            e.line = e.line.map(|l| l + start - 1);
            e
        };
        let tm: TypeMeta = yaml::from_str(path, &doc).map_err(shift)?;
        let (api, kind) = match (&tm.api_version, &tm.kind) {
            (Some(a), Some(k)) => (a.as_str(), k.as_str()),
            _ => {
                return Err(InputError::new(
                    path,
                    format!("each document needs apiVersion and kind; supported: {SUPPORTED}"),
                )
                .at(Some(start), None))
            }
        };
        let object = match (api, kind) {
            ("apps/v1", "Deployment") => {
                Object::Deployment(Box::new(yaml::from_str_strict(path, &doc).map_err(shift)?))
            }
            ("v1", "Service") => {
                Object::Service(Box::new(yaml::from_str_strict(path, &doc).map_err(shift)?))
            }
            ("autoscaling/v2", "HorizontalPodAutoscaler") => {
                Object::Hpa(Box::new(yaml::from_str_strict(path, &doc).map_err(shift)?))
            }
            ("gateway.networking.k8s.io/v1", "HTTPRoute") => {
                Object::HttpRoute(Box::new(yaml::from_str_strict(path, &doc).map_err(shift)?))
            }
            (crate::cronhpa::object::API_VERSION, crate::cronhpa::object::KIND) => {
                Object::CronHpa(Box::new(yaml::from_str_strict(path, &doc).map_err(shift)?))
            }
            _ => {
                return Err(InputError::new(
                    path,
                    format!("{api} {kind} is not supported; supported: {SUPPORTED}"),
                )
                .field("kind")
                .at(Some(start), None))
            }
        };
        out.push(Manifest {
            object,
            file: path.to_path_buf(),
            line: start,
            text: doc,
        });
    }
    Ok(out)
}

/// Documents separated by `---` lines, with the 1-based line each starts on;
/// empty documents (comments only) are skipped.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    docs.push((start, cur));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}
