//! `--kind [NAME]`: create or reuse a kind cluster from
//! `manifests/kind/cluster.yaml` and install the add-ons the kube backend
//! needs. Shells out to `kind`, `kubectl` and `helm`, which must be on PATH.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::error::InfraError;

/// Runs a tool and returns its stdout, or an infrastructure error that
/// names the command and its stderr.
pub(crate) fn tool(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        InfraError(format!(
            "`{program}` is needed for --kind but could not be run ({e}); install it and put it on PATH"
        ))
    })?;
    if !out.status.success() {
        return Err(InfraError(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the cluster unless it exists; returns the kubeconfig context.
pub fn ensure_cluster(name: &str, root: &Path) -> Result<String> {
    let clusters = tool("kind", &["get", "clusters"])?;
    if !clusters.lines().any(|l| l.trim() == name) {
        let config = root.join("manifests/kind/cluster.yaml");
        tool(
            "kind",
            &[
                "create",
                "cluster",
                "--name",
                name,
                "--config",
                &config.display().to_string(),
                "--wait",
                "180s",
            ],
        )?;
    }
    Ok(format!("kind-{name}"))
}
