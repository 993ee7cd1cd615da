//! `--kind [NAME]`: create or reuse a kind cluster from
//! `manifests/kind/cluster.yaml` and install the add-ons listed in
//! `manifests/kind/addons.yaml`, in order, each step idempotent (`helm
//! upgrade --install`, server-side apply). Shells out to `kind`, `kubectl`
//! and `helm`, which must be on PATH; a missing tool or a failed step is an
//! infrastructure error (exit 3) that names the command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::error::{InfraError, InputError};

/// manifests/kind/addons.yaml (documented in manifests/kind/README.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub addons: Vec<Addon>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addon {
    pub name: String,
    pub namespace: String,
    /// Exactly one of `helm` and `apply`.
    #[serde(default)]
    pub helm: Option<Helm>,
    /// Files applied with server-side apply, relative to the plan's folder.
    #[serde(default)]
    pub apply: Vec<String>,
    #[serde(default)]
    pub wait: Vec<Wait>,
    /// For each wait entry.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Needed by some scenarios only: when it fails, the cluster is still
    /// set up for the others (a warning, and those scenarios fail alone).
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    #[serde(default)]
    pub repo: Option<String>,
    pub chart: String,
    pub version: String,
    pub release: String,
    #[serde(default)]
    pub values: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    pub resource: String,
    pub condition: String,
}

/// The folder of the kind files under the repository root.
pub fn dir(root: &Path) -> PathBuf {
    root.join("manifests/kind")
}

pub fn load_plan(root: &Path) -> Result<Plan, InputError> {
    let path = dir(root).join("addons.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InputError::new(&path, format!("cannot read the add-on plan: {e}")))?;
    let plan: Plan = crate::yaml::from_str(&path, &text)?;
    for (i, a) in plan.addons.iter().enumerate() {
        // Both or neither.
        if a.helm.is_some() != a.apply.is_empty() {
            return Err(
                InputError::new(&path, "give exactly one of `helm` and `apply`")
                    .field(format!("addons[{i}]")),
            );
        }
    }
    Ok(plan)
}

/// The commands a step runs, as (program, args); pure, so tested.
pub fn commands(a: &Addon, kind_dir: &Path, context: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let s = |x: &str| x.to_string();
    if let Some(h) = &a.helm {
        let mut args = vec![
            s("upgrade"),
            s("--install"),
            h.release.clone(),
            h.chart.clone(),
        ];
        if let Some(r) = &h.repo {
            args.extend([s("--repo"), r.clone()]);
        }
        args.extend([
            s("--version"),
            h.version.clone(),
            s("--namespace"),
            a.namespace.clone(),
            s("--create-namespace"),
            s("--kube-context"),
            s(context),
        ]);
        if let Some(v) = &h.values {
            args.extend([s("-f"), kind_dir.join(v).display().to_string()]);
        }
        out.push((s("helm"), args));
    }
    for f in &a.apply {
        out.push((
            s("kubectl"),
            vec![
                s("--context"),
                s(context),
                s("apply"),
                s("--server-side"),
                s("--field-manager=autoscale-harness"),
                s("-f"),
                kind_dir.join(f).display().to_string(),
            ],
        ));
    }
    for w in &a.wait {
        out.push((
            s("kubectl"),
            vec![
                s("--context"),
                s(context),
                s("wait"),
                s("-n"),
                a.namespace.clone(),
                format!("--for=condition={}", w.condition),
                format!("--timeout={}s", a.timeout.as_secs()),
                w.resource.clone(),
            ],
        ));
    }
    out
}

/// Runs a tool and returns its stdout, or an infrastructure error that
/// names the command and its stderr.
fn tool(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        InfraError(format!(
            "`{program}` is needed for --kind but could not be run ({e}); install it and put it on PATH"
        ))
    })?;
    if !out.status.success() {
        // The status too: a tool killed by a signal often says nothing.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        let sep = if stderr.is_empty() { "" } else { ": " };
        return Err(InfraError(format!(
            "`{program} {}` failed ({}){sep}{stderr}",
            args.join(" "),
            out.status
        ))
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the cluster unless it exists, installs the add-ons, and
/// returns the kubeconfig context. `say` reports each step.
pub fn ensure(name: &str, root: &Path, say: &mut dyn FnMut(&str)) -> Result<String> {
    let plan = load_plan(root)?;
    let kdir = dir(root);
    let clusters = tool("kind", &["get".into(), "clusters".into()])?;
    if clusters.lines().any(|l| l.trim() == name) {
        say(&format!("kind cluster `{name}` exists; reusing it"));
    } else {
        say(&format!("creating kind cluster `{name}` (a few minutes)"));
        tool(
            "kind",
            &[
                "create".into(),
                "cluster".into(),
                "--name".into(),
                name.into(),
                "--config".into(),
                kdir.join("cluster.yaml").display().to_string(),
                "--wait".into(),
                "180s".into(),
            ],
        )?;
    }
    let context = format!("kind-{name}");
    for a in &plan.addons {
        say(&format!("add-on {} (namespace {})", a.name, a.namespace));
        for (p, args) in commands(a, &kdir, &context) {
            match tool(&p, &args) {
                Ok(_) => {}
                Err(e) if a.optional => {
                    say(&format!(
                        "warning: optional add-on {} did not install ({e}); scenarios that need it will fail",
                        a.name
                    ));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_plan_loads_and_maps_to_idempotent_commands() {
        // The repository's root: the unit tests build as a package of
        // their own, in tests/unit.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|d| d.join("manifests/kind").is_dir())
            .unwrap();
        let plan = load_plan(root).unwrap();
        let kdir = dir(root);
        let all: Vec<(String, Vec<String>)> = plan
            .addons
            .iter()
            .flat_map(|a| commands(a, &kdir, "kind-autoscale"))
            .collect();
        for (p, args) in &all {
            match p.as_str() {
                "helm" => {
                    assert_eq!(&args[..2], ["upgrade", "--install"]);
                    assert!(args.contains(&"--version".to_string()));
                    assert!(args
                        .windows(2)
                        .any(|w| w == ["--kube-context", "kind-autoscale"]));
                }
                "kubectl" => {
                    assert_eq!(&args[..2], ["--context", "kind-autoscale"]);
                    assert!(args[2] == "wait" || args.contains(&"--server-side".to_string()));
                }
                other => panic!("unexpected tool {other}"),
            }
            for a in args.iter().filter(|a| a.starts_with('/')) {
                assert!(Path::new(a).is_file(), "{a} is missing");
            }
        }
        assert!(all
            .iter()
            .any(|(_, a)| a.iter().any(|x| x.ends_with("gateway.yaml"))));
    }
}
