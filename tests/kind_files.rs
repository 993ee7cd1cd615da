//! The kind cluster's files (manifests/kind/) and the nightly scenario agree
//! with each other: the port the host reaches is the gateway's node port,
//! every add-on is pinned and its files exist, the adapter serves the metric
//! the HPAs ask for from series Prometheus records, and the scenario is valid
//! and passes on the sim backend.

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

#[test]
fn host_port_mapping_reaches_the_gateway_node_port() {
    let cluster = one(&kind_dir().join("cluster.yaml"));
    assert_eq!(s(&cluster["kind"]), "Cluster");
    assert_eq!(s(&cluster["apiVersion"]), "kind.x-k8s.io/v1alpha4");
    let nodes = cluster["nodes"].as_sequence().expect("nodes");
    for n in nodes {
        assert!(
            s(&n["image"]).contains("@sha256:"),
            "node image must be pinned by digest: {:?}",
            n["image"]
        );
    }
    let mappings: Vec<&Value> = nodes
        .iter()
        .filter_map(|n| n["extraPortMappings"].as_sequence())
        .flatten()
        .collect();

    let gw = docs(&kind_dir().join("gateway.yaml"));
    let proxy = find(&gw, "EnvoyProxy", "kind-nodeport");
    let service = &proxy["spec"]["provider"]["kubernetes"]["envoyService"];
    assert_eq!(s(&service["type"]), "NodePort");
    let ports = service["patch"]["value"]["spec"]["ports"]
        .as_sequence()
        .expect("the EnvoyProxy pins a nodePort through its service patch");
    assert!(!ports.is_empty());

    // The GatewayClass uses this EnvoyProxy, and the Gateway this class with
    // an HTTP listener on the patched Service port.
    let class = find(&gw, "GatewayClass", "eg");
    let pref = &class["spec"]["parametersRef"];
    assert_eq!(s(&pref["kind"]), "EnvoyProxy");
    assert_eq!(s(&pref["name"]), s(&proxy["metadata"]["name"]));
    assert_eq!(s(&pref["namespace"]), s(&proxy["metadata"]["namespace"]));
    let gateway = find(&gw, "Gateway", "gateway");
    assert_eq!(s(&gateway["spec"]["gatewayClassName"]), "eg");
    let listeners = gateway["spec"]["listeners"]
        .as_sequence()
        .expect("listeners");

    for p in ports {
        let node_port = u(&p["nodePort"]);
        assert!(
            (30000..=32767).contains(&node_port),
            "nodePort {node_port} out of range"
        );
        assert!(
            mappings.iter().any(|m| u(&m["containerPort"]) == node_port),
            "cluster.yaml maps no host port to the gateway's nodePort {node_port}"
        );
        assert!(
            listeners
                .iter()
                .any(|l| u(&l["port"]) == u(&p["port"]) && s(&l["protocol"]) == "HTTP"),
            "no HTTP listener on the patched Service port {}",
            u(&p["port"])
        );
    }

    // The scenario's gateway URL is the mapped host address.
    let scenario = one(&root().join("scenarios/ramp-kind.yaml"));
    let url = s(&scenario["target"]["url"]);
    assert!(
        mappings.iter().any(|m| {
            let host = m["listenAddress"].as_str().unwrap_or("0.0.0.0");
            let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
            url == format!("http://{host}:{}", u(&m["hostPort"]))
        }),
        "target.url {url} is not a host address cluster.yaml maps"
    );
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
