//! Every manifest the harness applies goes through the apply code path:
//! decoded into the k8s-openapi / gateway-api types, validated, moved into
//! a run namespace and serialized as the server-side apply body. Files under
//! manifests/ that are not app manifests (the kind cluster config, the add-on
//! plan and values, the gateway that `--kind` installs with kubectl) are
//! listed here by name, so a new file cannot slip past unchecked.

use std::path::{Path, PathBuf};

use autoscale_harness::backend::kube::convert::relocate;
use autoscale_harness::manifests::Manifests;

const NOT_APP_MANIFESTS: [&str; 8] = [
    "kind/README.md",
    "kind/addons.yaml",
    "kind/cluster.yaml",
    // The controller's CRD, RBAC and Deployment: cluster add-on, not app.
    "kind/cronhpa-controller.yaml",
    "kind/gateway.yaml",
    "kind/values/metrics-server.yaml",
    "kind/values/prometheus-adapter.yaml",
    "kind/values/prometheus.yaml",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_app_manifest_decodes_validates_and_serializes_for_apply() {
    let _g = crate::common::shared();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    // The app manifests in the sets the scenarios apply them in (an HPA
    // needs its Deployment, a route its Service); every file is in one.
    let sets: [&[&str]; 9] = [
        &["httpbin.yaml", "hpa-paper.yaml", "httproute.yaml"],
        &[
            "httpbin.yaml",
            "hpa-schedule.yaml",
            "httproute.yaml",
            "cronhpa-seed001.yaml",
        ],
        &[
            "httpbin.yaml",
            "hpa-schedule.yaml",
            "httproute.yaml",
            "cronhpa-daily.yaml",
        ],
        &[
            "httpbin.yaml",
            "gateway.yaml",
            "hpa-gateway.yaml",
            "httproute.yaml",
        ],
        &["httpbin.yaml", "hpa-ack-qps.yaml", "httproute.yaml"],
        &["httpbin.yaml", "hpa-smoke.yaml", "httproute.yaml"],
        &[
            "kind/httpbin-kind.yaml",
            "kind/hpa-ramp-kind.yaml",
            "kind/httproute-kind.yaml",
            "kind/cronhpa-schedule-kind.yaml",
        ],
        // paper-kind's HPA is Envoy Gateway's, not a manifest.
        &["kind/httpbin-kind.yaml", "kind/httproute-paper-kind.yaml"],
        // lua-kind's autoscaler is the harness, running a Lua policy.
        &["kind/httpbin-lua-kind.yaml", "kind/httproute-kind.yaml"],
    ];
    for p in &all {
        let rel = p.strip_prefix(&root).unwrap().display().to_string();
        if NOT_APP_MANIFESTS.contains(&rel.as_str()) {
            continue;
        }
        assert!(
            sets.iter().any(|s| s.contains(&rel.as_str())),
            "{rel}: a new manifest; add it to a set here or to NOT_APP_MANIFESTS"
        );
    }
    for set in sets {
        let paths: Vec<PathBuf> = set.iter().map(|f| root.join(f)).collect();
        let m = Manifests::load(&paths).unwrap_or_else(|e| panic!("{set:?}: {e}"));
        let applied = relocate(&m, "autoscale-test-abcdef", Some(2));
        assert_eq!(applied.len(), m.items.len());
        for a in applied {
            let body = a.object.to_json();
            assert_eq!(
                body["metadata"]["namespace"], "autoscale-test-abcdef",
                "{set:?}"
            );
            assert!(
                body["apiVersion"].is_string() && body["kind"] == a.kind,
                "{set:?}: {body}"
            );
            if a.kind == "Deployment" {
                assert_eq!(body["spec"]["replicas"], 2);
            }
        }
    }
}
