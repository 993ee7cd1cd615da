//! The gateways' admin listeners as a Prometheus file service discovery
//! list (`targets.json` in the run directory, rewritten as instances come
//! and go): point a Prometheus at it (`file_sd_configs`) to scrape each
//! gateway instance's own `/metrics`, as the paper's Prometheus did.

use serde_json::json;

use super::Shared;
use crate::prepared::Role;

/// Rewrites the list: the front (the built-in gateway, or the gateway
/// tier's Service), then every running instance. Written whole and renamed
/// into place, so a reader never sees half a file.
pub(super) fn write(sh: &Shared) {
    let Some(path) = &sh.targets_file else {
        return;
    };
    let front_job = if sh.gateway_tier().is_some() {
        "gateway-service"
    } else {
        "gateway"
    };
    let _in_order = sh.publishing.lock().unwrap_or_else(|e| e.into_inner());
    let mut groups = vec![json!({
        "targets": [sh.front.admin_addr().to_string()],
        "labels": { "job": front_job },
    })];
    for (i, t) in sh.tiers.iter().enumerate() {
        if t.cfg.role != Role::Gateway {
            continue;
        }
        for p in &sh.lock(i).pods {
            let Some(gw) = p.rt.handle.as_ref().and_then(|h| h.gateway()) else {
                continue;
            };
            groups.push(json!({
                "targets": [gw.admin_addr().to_string()],
                "labels": { "job": t.cfg.deployment, "pod": p.name },
            }));
        }
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&groups).unwrap_or_default();
    // Best effort: the list is for people watching live, not the record.
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// The list is live information: gone with the cluster.
pub(super) fn remove(sh: &Shared) {
    if let Some(path) = &sh.targets_file {
        let _ = std::fs::remove_file(path);
    }
}
