//! The kind cluster's files (manifests/kind/) and the nightly scenario agree
//! with each other: the port the host reaches is the gateway's node port,
//! every add-on is pinned and its files exist, the adapter serves the metric
//! the HPAs ask for from series Prometheus records, and the scenarios are
//! valid and pass on the sim backend.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use autoscale_harness::backend::kube::kind::{load_plan, Plan};
use serde::Deserialize;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kind_dir() -> PathBuf {
    root().join("manifests/kind")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file.
fn docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn one(path: &Path) -> Value {
    let mut d = docs(path);
    assert_eq!(d.len(), 1, "{}: expected one document", path.display());
    d.remove(0)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v:?}"))
}

// ------------------------------------------------------------ the add-on plan

fn plan() -> Plan {
    // The harness's own loader: what `--kind` installs is what is checked.
    load_plan(&root()).unwrap_or_else(|e| panic!("{e}"))
}

/// An exact chart version: `1.2.3` or `v1.2.3`, no range, no `latest`.
fn exact_version(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[test]
fn every_addon_is_pinned_and_its_files_exist() {
    let _g = crate::common::shared();
    let plan = plan();
    assert!(!plan.addons.is_empty());
    let mut names = BTreeSet::new();
    for a in &plan.addons {
        assert!(
            names.insert(a.name.as_str()),
            "add-on {} listed twice",
            a.name
        );
        assert!(!a.namespace.is_empty(), "{}: namespace", a.name);
        assert!(a.timeout > Duration::ZERO, "{}: timeout", a.name);
        match (&a.helm, a.apply.is_empty()) {
            (Some(h), true) => {
                assert!(
                    exact_version(&h.version),
                    "{}: chart version `{}` is not pinned to one release",
                    a.name,
                    h.version
                );
                if h.chart.starts_with("oci://") {
                    assert!(
                        h.repo.is_none(),
                        "{}: an oci:// chart takes no repo",
                        a.name
                    );
                } else {
                    let repo = h.repo.as_deref().unwrap_or_default();
                    assert!(
                        repo.starts_with("https://"),
                        "{}: chart `{}` needs an https repo",
                        a.name,
                        h.chart
                    );
                }
                assert!(!h.release.is_empty(), "{}: release", a.name);
                if let Some(v) = &h.values {
                    assert!(
                        kind_dir().join(v).is_file(),
                        "{}: values file {v} missing",
                        a.name
                    );
                }
            }
            (None, false) => {
                for f in &a.apply {
                    assert!(
                        kind_dir().join(f).is_file(),
                        "{}: manifest {f} missing",
                        a.name
                    );
                }
            }
            _ => panic!("{}: needs exactly one of `helm` or `apply`", a.name),
        }
        for w in &a.wait {
            assert!(
                w.resource.contains('/') && !w.condition.is_empty(),
                "{}: wait entries are TYPE/NAME and a condition, got {w:?}",
                a.name
            );
        }
    }
}

#[test]
fn addons_come_in_dependency_order() {
    let _g = crate::common::shared();
    let plan = plan();
    let at = |name: &str| {
        plan.addons
            .iter()
            .position(|a| a.name == name)
            .unwrap_or_else(|| panic!("no add-on {name}"))
    };
    // The Envoy Gateway chart brings the Gateway API CRDs that gateway.yaml
    // and kube-state-metrics' HTTPRoute watch need; the adapter reads
    // Prometheus.
    assert!(at("envoy-gateway") < at("gateway"));
    assert!(at("envoy-gateway") < at("prometheus"));
    assert!(at("prometheus") < at("prometheus-adapter"));
    let gw = &plan.addons[at("gateway")];
    assert!(gw.apply.iter().any(|f| f == "gateway.yaml"));
}

// ------------------------------------------------- host → NodePort → Gateway

/// The EnvoyProxy a Gateway runs with: its own (`spec.infrastructure.
/// parametersRef`, looked up in the Gateway's namespace: Envoy Gateway
/// v1.5.0 internal/gatewayapi/contexts.go attachEnvoyProxy), else its
/// GatewayClass's.
fn proxy_of<'a>(gw: &'a [Value], gateway: &Value) -> &'a Value {
    let own = &gateway["spec"]["infrastructure"]["parametersRef"];
    if !own.is_null() {
        assert_eq!(s(&own["group"]), "gateway.envoyproxy.io");
        assert_eq!(s(&own["kind"]), "EnvoyProxy");
        let p = find(gw, "EnvoyProxy", s(&own["name"]));
        assert_eq!(
            s(&p["metadata"]["namespace"]),
            s(&gateway["metadata"]["namespace"]),
            "a Gateway's parametersRef is local: the EnvoyProxy must be in its namespace"
        );
        return p;
    }
    let class = find(gw, "GatewayClass", s(&gateway["spec"]["gatewayClassName"]));
    let pref = &class["spec"]["parametersRef"];
    assert_eq!(s(&pref["kind"]), "EnvoyProxy");
    let p = find(gw, "EnvoyProxy", s(&pref["name"]));
    assert_eq!(s(&pref["namespace"]), s(&p["metadata"]["namespace"]));
    p
}

/// The node ports an EnvoyProxy pins through its Service patch, with the
/// Service port each belongs to.
fn node_ports(proxy: &Value) -> Vec<(u64, u64)> {
    let service = &proxy["spec"]["provider"]["kubernetes"]["envoyService"];
    assert_eq!(s(&service["type"]), "NodePort");
    // The host's ports are mapped to the one node; `Local` would drop
    // traffic for a proxy pod elsewhere.
    assert_eq!(s(&service["externalTrafficPolicy"]), "Cluster");
    let ports = service["patch"]["value"]["spec"]["ports"]
        .as_sequence()
        .expect("the EnvoyProxy pins a nodePort through its service patch");
    assert!(!ports.is_empty());
    ports
        .iter()
        .map(|p| (u(&p["port"]), u(&p["nodePort"])))
        .collect()
}

/// Host `http://ADDR:PORT` URLs that cluster.yaml maps, by node port.
fn host_urls() -> Vec<(u64, String)> {
    let cluster = one(&kind_dir().join("cluster.yaml"));
    cluster["nodes"]
        .as_sequence()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["extraPortMappings"].as_sequence())
        .flatten()
        .map(|m| {
            let host = m["listenAddress"].as_str().unwrap_or("0.0.0.0");
            let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
            (
                u(&m["containerPort"]),
                format!("http://{host}:{}", u(&m["hostPort"])),
            )
        })
        .collect()
}

#[test]
fn host_port_mapping_reaches_the_gateway_node_port() {
    let _g = crate::common::shared();
    let cluster = one(&kind_dir().join("cluster.yaml"));
    assert_eq!(s(&cluster["kind"]), "Cluster");
    assert_eq!(s(&cluster["apiVersion"]), "kind.x-k8s.io/v1alpha4");
    for n in cluster["nodes"].as_sequence().expect("nodes") {
        assert!(
            s(&n["image"]).contains("@sha256:"),
            "node image must be pinned by digest: {:?}",
            n["image"]
        );
    }
    let urls = host_urls();
    let gw = docs(&kind_dir().join("gateway.yaml"));
    let gateways: Vec<&Value> = gw
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Gateway"))
        .collect();
    assert!(gateways.len() >= 2, "ramp-kind's and paper-kind's Gateways");
    let mut seen = BTreeSet::new();
    for gateway in &gateways {
        let name = s(&gateway["metadata"]["name"]);
        assert_eq!(s(&gateway["spec"]["gatewayClassName"]), "eg");
        let listeners = gateway["spec"]["listeners"]
            .as_sequence()
            .expect("listeners");
        for (port, node_port) in node_ports(proxy_of(&gw, gateway)) {
            assert!(
                (30000..=32767).contains(&node_port),
                "{name}: nodePort {node_port} out of range"
            );
            assert!(
                seen.insert(node_port),
                "{name}: nodePort {node_port} is another Gateway's too"
            );
            assert!(
                urls.iter().any(|(np, _)| *np == node_port),
                "cluster.yaml maps no host port to Gateway {name}'s nodePort {node_port}"
            );
            assert!(
                listeners
                    .iter()
                    .any(|l| u(&l["port"]) == port && s(&l["protocol"]) == "HTTP"),
                "{name}: no HTTP listener on the patched Service port {port}"
            );
        }
    }

    // Each nightly scenario's gateway URL is the host address mapped to
    // the node port of the Gateway its route attaches to.
    for (scenario, route) in [
        ("ramp-kind", "httproute-kind.yaml"),
        ("paper-kind", "httproute-paper-kind.yaml"),
        ("schedule-kind", "httproute-kind.yaml"),
    ] {
        let sc = one(&root().join(format!("scenarios/{scenario}.yaml")));
        let url = s(&sc["target"]["url"]);
        let listed: Vec<&str> = sc["manifests"]
            .as_sequence()
            .expect("manifests")
            .iter()
            .map(s)
            .collect();
        assert!(
            listed.iter().any(|m| m.ends_with(route)),
            "{scenario} lists {route}"
        );
        let parent = &one(&kind_dir().join(route))["spec"]["parentRefs"][0];
        let gateway = gateways
            .iter()
            .find(|g| {
                g["metadata"]["name"] == parent["name"]
                    && g["metadata"]["namespace"] == parent["namespace"]
            })
            .unwrap_or_else(|| panic!("{route}'s parent is no Gateway in gateway.yaml"));
        let node_port = node_ports(proxy_of(&gw, gateway))[0].1;
        let mapped = urls.iter().find(|(np, _)| *np == node_port).map(|(_, u)| u);
        assert_eq!(
            mapped.map(String::as_str),
            Some(url),
            "{scenario}: target.url {url} is not the host address of its Gateway's nodePort {node_port}"
        );
    }
}

// --------------------------------------------------------- metrics to the HPA

/// Names of the series that values/prometheus.yaml records, with their rules.
fn recorded() -> Vec<(String, String)> {
    let values = one(&kind_dir().join("values/prometheus.yaml"));
    let groups = values["serverFiles"]["recording_rules.yml"]["groups"]
        .as_sequence()
        .expect("recording rule groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .map(|r| (s(&r["record"]).to_string(), s(&r["expr"]).to_string()))
        .collect()
}

/// `{__name__="X",...}` → X.
fn series_name(query: &str) -> &str {
    let rest = query
        .split("__name__=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("seriesQuery names no series: {query}"));
    &rest[..rest.find('"').expect("closing quote")]
}

#[test]
fn adapter_serves_seed_000_and_paper_metrics_from_recorded_series() {
    let _g = crate::common::shared();
    let adapter = one(&kind_dir().join("values/prometheus-adapter.yaml"));
    let recorded = recorded();

    let external = adapter["rules"]["external"]
        .as_sequence()
        .expect("external rules");
    let sls = external
        .iter()
        .find(|r| r["name"]["as"].as_str() == Some("sls_ingress_qps"))
        .expect("an external rule names sls_ingress_qps");
    let series = series_name(s(&sls["seriesQuery"]));
    let (_, expr) = recorded
        .iter()
        .find(|(name, _)| name == series)
        .unwrap_or_else(|| panic!("sls_ingress_qps reads {series}, which no rule records"));
    assert!(
        expr.contains("by (route)") && s(&sls["metricsQuery"]).contains("route"),
        "sls_ingress_qps must keep the `route` label the HPA selects on"
    );
    assert_eq!(sls["resources"]["namespaced"].as_bool(), Some(false));

    let custom = adapter["rules"]["custom"]
        .as_sequence()
        .expect("custom rules");
    let rps = custom
        .iter()
        .find(|r| r["name"]["as"].as_str() == Some("http_requests_per_second"))
        .expect("a custom rule names http_requests_per_second");
    let series = series_name(s(&rps["seriesQuery"]));
    assert!(
        recorded.iter().any(|(name, _)| name == series),
        "http_requests_per_second reads {series}, which no rule records"
    );
    let overrides = &rps["resources"]["overrides"];
    assert_eq!(s(&overrides["pod"]["resource"]), "pod");
    assert_eq!(s(&overrides["namespace"]["resource"]), "namespace");

    // The adapter points at the Prometheus the plan installs.
    let plan = plan();
    let prom = plan
        .addons
        .iter()
        .find(|a| a.name == "prometheus")
        .expect("prometheus add-on");
    let release = &prom.helm.as_ref().expect("helm").release;
    assert_eq!(
        s(&adapter["prometheus"]["url"]),
        format!("http://{release}-server.{}.svc", prom.namespace)
    );
}

#[test]
fn hpas_select_the_route_id_the_routes_carry() {
    let _g = crate::common::shared();
    let label = |path: &str| {
        let route = one(&root().join(path));
        assert_eq!(s(&route["kind"]), "HTTPRoute");
        s(&route["metadata"]["labels"]["route"]).to_string()
    };
    let selects = |path: &str| {
        let hpa = one(&root().join(path));
        let m = &hpa["spec"]["metrics"][0]["external"];
        assert_eq!(s(&m["metric"]["name"]), "sls_ingress_qps");
        s(&m["metric"]["selector"]["matchLabels"]["route"]).to_string()
    };
    assert_eq!(
        selects("manifests/kind/hpa-ramp-kind.yaml"),
        label("manifests/kind/httproute-kind.yaml")
    );
    assert_eq!(
        selects("manifests/hpa-ack-qps.yaml"),
        label("manifests/httproute.yaml")
    );

    // The kind route attaches to the Gateway that gateway.yaml installs.
    let route = one(&kind_dir().join("httproute-kind.yaml"));
    let gw = docs(&kind_dir().join("gateway.yaml"));
    let gateway = find(&gw, "Gateway", "gateway");
    let parent = &route["spec"]["parentRefs"][0];
    assert_eq!(s(&parent["name"]), s(&gateway["metadata"]["name"]));
    assert_eq!(
        s(&parent["namespace"]),
        s(&gateway["metadata"]["namespace"])
    );
}

/// The gateway tier (scenarios/paper-kind.yaml): Envoy Gateway puts the
/// proxy Deployment of Gateway `default/paper` under the HPA of its
/// EnvoyProxy's `envoyHpa`; the HPA's Pods metric is served by the adapter
/// from a series Prometheus records from Envoy's own downstream counter;
/// the scenario names that HPA where Envoy Gateway creates it.
#[test]
fn envoy_proxy_hpa_scales_the_gateway_tier_on_cpu_and_adapter_served_qps() {
    let _g = crate::common::shared();
    let gw = docs(&kind_dir().join("gateway.yaml"));
    let paper = find(&gw, "Gateway", "paper");
    let proxy = proxy_of(&gw, paper);
    let k8s = &proxy["spec"]["provider"]["kubernetes"];
    let dep = &k8s["envoyDeployment"];
    let hpa = &k8s["envoyHpa"];

    // Fixed names (KubernetesDeploymentSpec.name,
    // KubernetesHorizontalPodAutoscalerSpec.name), so the HPA is
    // addressable; no `replicas`, which Envoy Gateway would re-apply over
    // the HPA's choice.
    let dep_name = s(&dep["name"]);
    let hpa_name = s(&hpa["name"]);
    assert!(
        dep["replicas"].is_null(),
        "envoyDeployment.replicas fights the HPA"
    );
    // CPU utilization needs a CPU request on the proxy container.
    let cpu = s(&dep["container"]["resources"]["requests"]["cpu"]);
    assert!(
        cpu.ends_with('m') || cpu.parse::<f64>().is_ok(),
        "cpu request {cpu}"
    );

    // The paper's range, and metrics on CPU and on per-pod QPS.
    assert_eq!(u(&hpa["minReplicas"]), 2);
    assert_eq!(u(&hpa["maxReplicas"]), 3);
    let metrics = hpa["metrics"].as_sequence().expect("envoyHpa.metrics");
    let cpu_metric = metrics
        .iter()
        .find(|m| s(&m["type"]) == "Resource")
        .expect("a Resource metric");
    assert_eq!(s(&cpu_metric["resource"]["name"]), "cpu");
    assert_eq!(s(&cpu_metric["resource"]["target"]["type"]), "Utilization");
    let pods_metric = metrics
        .iter()
        .find(|m| s(&m["type"]) == "Pods")
        .expect("a Pods metric");
    let metric = s(&pods_metric["pods"]["metric"]["name"]);
    assert_eq!(s(&pods_metric["pods"]["target"]["type"]), "AverageValue");

    // The adapter serves that metric per pod from a recorded series...
    let adapter = one(&kind_dir().join("values/prometheus-adapter.yaml"));
    let rule = adapter["rules"]["custom"]
        .as_sequence()
        .expect("custom rules")
        .iter()
        .find(|r| r["name"]["as"].as_str() == Some(metric))
        .unwrap_or_else(|| panic!("no adapter rule serves the Pods metric {metric}"));
    let overrides = &rule["resources"]["overrides"];
    assert_eq!(s(&overrides["pod"]["resource"]), "pod");
    assert_eq!(s(&overrides["namespace"]["resource"]), "namespace");
    let series = series_name(s(&rule["seriesQuery"]));
    assert_eq!(
        s(&rule["name"]["matches"]),
        format!("^{series}$"),
        "the rule renames the series it queries"
    );
    // ... which Prometheus records per pod from Envoy's downstream
    // counter on the Gateway's listeners (not the stats listener).
    let recorded = recorded();
    let (_, expr) = recorded
        .iter()
        .find(|(name, _)| name == series)
        .unwrap_or_else(|| panic!("{metric} reads {series}, which no rule records"));
    assert!(expr.contains("envoy_http_downstream_rq_total"), "{expr}");
    assert!(expr.contains("by (namespace, pod)"), "{expr}");
    assert!(expr.contains("envoy_http_conn_manager_prefix"), "{expr}");

    // The scenario watches the HPA Envoy Gateway creates, in Envoy
    // Gateway's namespace (the add-on's), by the fixed name.
    let plan = plan();
    let eg = plan
        .addons
        .iter()
        .find(|a| a.name == "envoy-gateway")
        .expect("envoy-gateway add-on");
    let scenario = one(&root().join("scenarios/paper-kind.yaml"));
    assert_eq!(
        s(&scenario["target"]["hpa"]),
        format!("{}/{hpa_name}", eg.namespace)
    );
    assert!(!dep_name.is_empty());
    // Its expectations stay inside the HPA's range.
    for e in scenario["expect"].as_sequence().expect("expect") {
        if let Some(n) = e["max_replicas"].as_u64() {
            assert!(n <= u(&hpa["maxReplicas"]));
        }
        if let Some(n) = e["min_replicas"].as_u64() {
            assert!(n >= u(&hpa["minReplicas"]));
        }
    }
    // The add-on plan waits for the paper Gateway too.
    let step = plan
        .addons
        .iter()
        .find(|a| a.name == "gateway")
        .expect("gateway step");
    assert!(step
        .wait
        .iter()
        .any(|w| w.resource == "gateways.gateway.networking.k8s.io/paper"));

    // ramp-kind's Gateway keeps one unscaled proxy: its run measures the
    // backend's HPA only.
    let ramp_proxy = proxy_of(&gw, find(&gw, "Gateway", "gateway"));
    assert!(ramp_proxy["spec"]["provider"]["kubernetes"]["envoyHpa"].is_null());
    assert_ne!(
        s(&ramp_proxy["metadata"]["name"]),
        s(&proxy["metadata"]["name"])
    );

    // The fields were checked against the Envoy Gateway release the plan
    // installs; gateway.yaml says which.
    let version = &eg.helm.as_ref().expect("helm").version;
    assert!(
        read(&kind_dir().join("gateway.yaml")).contains(&format!("at {version}")),
        "gateway.yaml names the Envoy Gateway release ({version}) its fields were checked in"
    );
}

// ----------------------------------------------------------- the scenario

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

#[test]
fn ramp_kind_validates() {
    let _g = crate::common::shared();
    let out = harness(&["validate", "scenarios/ramp-kind.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bounds leave room for a real cluster's metric lag; the sim backend
/// (no lag beyond the metric window) must land inside them too.
#[test]
fn ramp_kind_passes_on_the_sim_backend() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("run");
    let out = harness(&[
        "experiment",
        "scenarios/ramp-kind.yaml",
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn paper_kind_validates() {
    let _g = crate::common::shared();
    let out = harness(&["validate", "scenarios/paper-kind.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HPA in the cluster has no embedded counterpart: local and sim say so
/// with the file, line and field, exit 2, before anything starts.
#[test]
fn paper_kind_is_refused_by_the_embedded_backends() {
    let _g = crate::common::shared();
    let text = read(&root().join("scenarios/paper-kind.yaml"));
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("hpa: envoy-gateway-system/"))
        .expect("target.hpa line")
        + 1;
    for backend in ["sim", "local"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = harness(&[
            "experiment",
            "scenarios/paper-kind.yaml",
            "--backend",
            backend,
            "--no-progress",
            "--out",
            dir.path().join("run").to_str().expect("utf-8 path"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{backend}: {err}");
        assert!(
            err.contains(&format!(
                "scenarios/paper-kind.yaml:{line}: field `target.hpa`"
            )),
            "{backend}: {err}"
        );
        assert!(
            err.contains("only --backend kube")
                && err.contains(&format!("--backend {backend} needs")),
            "{backend}: {err}"
        );
        assert!(
            !dir.path().join("run").exists(),
            "{backend}: nothing started"
        );
    }
}

// ------------------------------------------- scheduled scaling on the cluster

/// The nightly runs every `*-kind` scenario, one job each.
#[test]
fn nightly_runs_every_kind_scenario() {
    let _g = crate::common::shared();
    let wf: Value = serde_norway::from_str(&read(&root().join(".github/workflows/nightly.yml")))
        .expect("nightly.yml parses");
    let matrix: BTreeSet<&str> = wf["jobs"]["kind"]["strategy"]["matrix"]["scenario"]
        .as_sequence()
        .expect("a scenario matrix")
        .iter()
        .map(s)
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix("-kind.yaml").map(|n| format!("{n}-kind")))
        .collect();
    assert_eq!(
        matrix,
        files.iter().map(String::as_str).collect(),
        "nightly.yml's matrix and scenarios/*-kind.yaml"
    );
}

/// kubernetes-cronhpa-controller as `--kind` installs it serves the
/// resource the harness applies and watches, reads cron in UTC, and the
/// plan waits for what the file creates.
#[test]
fn cronhpa_controller_serves_what_the_harness_applies() {
    let _g = crate::common::shared();
    let d = docs(&kind_dir().join("cronhpa-controller.yaml"));
    let crd = find(
        &d,
        "CustomResourceDefinition",
        "cronhorizontalpodautoscalers.autoscaling.alibabacloud.com",
    );
    let spec = &crd["spec"];
    assert_eq!(s(&spec["group"]), "autoscaling.alibabacloud.com");
    assert_eq!(s(&spec["names"]["kind"]), "CronHorizontalPodAutoscaler");
    assert_eq!(s(&spec["names"]["plural"]), "cronhorizontalpodautoscalers");
    assert_eq!(s(&spec["scope"]), "Namespaced");
    let v = &spec["versions"][0];
    assert_eq!(
        (s(&v["name"]), v["served"].as_bool()),
        ("v1beta1", Some(true))
    );
    // The status the harness reads (cronhpa::object::Condition).
    let cond = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
        ["items"]["properties"];
    for f in ["name", "jobId", "state", "lastProbeTime", "message"] {
        assert!(!cond[f].is_null(), "status.conditions[].{f}");
    }
    let dep = find(&d, "Deployment", "kubernetes-cronhpa-controller");
    assert_eq!(s(&dep["metadata"]["namespace"]), "kube-system");
    let pod = &dep["spec"]["template"]["spec"];
    let env = &pod["containers"][0]["env"];
    let tz = env
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "TZ")
        .expect("TZ");
    assert_eq!(s(&tz["value"]), "UTC");
    let sa = s(&pod["serviceAccount"]);
    let binding = find(
        &d,
        "ClusterRoleBinding",
        "kubernetes-cronhpa-controller-rolebinding",
    );
    assert_eq!(s(&binding["subjects"][0]["name"]), sa);
    find(&d, "ServiceAccount", sa);
    find(&d, "ClusterRole", s(&binding["roleRef"]["name"]));
    let plan = plan();
    let step = plan
        .addons
        .iter()
        .find(|a| a.apply.iter().any(|f| f == "cronhpa-controller.yaml"))
        .expect("the plan installs cronhpa-controller.yaml");
    assert_eq!(step.namespace, "kube-system");
    let waits: Vec<&str> = step.wait.iter().map(|w| w.resource.as_str()).collect();
    assert_eq!(
        waits,
        [
            "crd/cronhorizontalpodautoscalers.autoscaling.alibabacloud.com",
            "deployment/kubernetes-cronhpa-controller"
        ]
    );
}

/// schedule-kind's CronHPA is run by the cluster and scales the
/// scenario's HPA.
#[test]
fn schedule_kind_is_run_by_the_cluster_on_its_hpa() {
    let _g = crate::common::shared();
    let sc = one(&root().join("scenarios/schedule-kind.yaml"));
    assert_eq!(s(&sc["schedule"]["controller"]), "cluster");
    assert!(
        sc["clock"].is_null(),
        "clock.start does not apply on a real cluster"
    );
    let cron = one(&kind_dir().join("cronhpa-schedule-kind.yaml"));
    assert_eq!(
        s(&cron["apiVersion"]),
        "autoscaling.alibabacloud.com/v1beta1"
    );
    let r = &cron["spec"]["scaleTargetRef"];
    assert_eq!(s(&r["kind"]), "HorizontalPodAutoscaler");
    assert_eq!(s(&r["name"]), s(&sc["target"]["hpa"]));
    let out = harness(&["validate", "scenarios/schedule-kind.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the kube backend applies: the CronHPA too, in the run's namespace.
    let out = harness(&[
        "experiment",
        "scenarios/schedule-kind.yaml",
        "--backend",
        "kube",
        "--dry-run",
    ]);
    let y = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && y.contains("kind: CronHorizontalPodAutoscaler"),
        "{y}"
    );
}

/// On the sim backend (the schedule run by the embedded cluster from the
/// moment the run starts) the expectations hold too: they do not depend on
/// the minute t = 0 falls on.
#[test]
fn schedule_kind_passes_on_the_sim_backend() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("run");
    let out = harness(&[
        "experiment",
        "scenarios/schedule-kind.yaml",
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------ a Lua policy on the cluster

/// lua-kind runs seed 003's script unchanged on the kind workload, scaled
/// by the harness (no HPA among its manifests), and validates.
#[test]
fn lua_kind_runs_the_seeds_script_without_an_hpa() {
    let _g = crate::common::shared();
    let sc = one(&root().join("scenarios/lua-kind.yaml"));
    let a = &sc["target"]["autoscaler"];
    assert_eq!(s(&a["lua"]), "../policies/cpu.lua");
    assert!(sc["target"]["hpa"].is_null());
    let files: Vec<&str> = sc["manifests"]
        .as_sequence()
        .expect("manifests")
        .iter()
        .map(s)
        .collect();
    for f in &files {
        let d = docs(&root().join("scenarios").join(f));
        assert!(
            !d.iter().any(|d| d["kind"] == "HorizontalPodAutoscaler"),
            "{f}: one scaler per target"
        );
    }
    // The route it loads is kind's, on the gateway the cluster maps to 8080.
    assert!(files.contains(&"../manifests/kind/httproute-kind.yaml"));
    assert_eq!(s(&sc["target"]["url"]), "http://127.0.0.1:8080");
    let out = harness(&["validate", "scenarios/lua-kind.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On the sim backend (its pod model standing in for go-httpbin) the
/// expectations hold too.
#[test]
fn lua_kind_passes_on_the_sim_backend() {
    let _g = crate::common::shared();
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("run");
    let out = harness(&[
        "experiment",
        "scenarios/lua-kind.yaml",
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
