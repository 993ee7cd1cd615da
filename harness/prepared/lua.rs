//! `target.autoscaler`: a Lua policy in place of an HPA. Resolves the
//! Deployment it scales, refuses an HPA on the same Deployment and a
//! script that does not compile (file and line), and makes the stand-in
//! HPA object the rest of the harness reads the name and bounds from.

use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::InputError;
use crate::lua::Policy;
use crate::manifests::Manifests;
use crate::scenario::{fmt_dur, Loaded, LuaAutoscaler, MAX_PODS};

/// The policy and the name of the Deployment it scales.
pub(super) fn resolve(
    l: &Loaded,
    m: &Manifests,
    route: &HttpRoute,
    a: &LuaAutoscaler,
) -> Result<(Policy, String), InputError> {
    let f = "target.autoscaler";
    if l.scenario.target.hpa.is_some() {
        return Err(l.err(
            "target.hpa",
            "a target is scaled by an HPA (`target.hpa`) or by a Lua policy (`target.autoscaler`), not both: drop one",
        ));
    }
    if a.min < 1 || a.max < a.min || a.max > MAX_PODS {
        return Err(l.err(
            &format!("{f}.max"),
            format!(
                "min {} and max {}: 1 <= min <= max <= {MAX_PODS}",
                a.min, a.max
            ),
        ));
    }
    let sync = l.scenario.local.controller.sync_period;
    let (iv, sp) = (a.interval.as_millis(), sync.as_millis());
    if iv == 0 || sp == 0 || iv % sp != 0 {
        return Err(l.err(
            &format!("{f}.interval"),
            format!(
                "{}: the policy runs at the embedded controller's syncs, so its interval is a whole multiple of `local.controller.sync_period` ({}); set that lower for a shorter interval",
                fmt_dur(a.interval),
                fmt_dur(sync)
            ),
        ));
    }
    let deployment = match &a.deployment {
        Some(d) => {
            if !m.deployments().any(|(dm, _)| dm.name() == *d) {
                let found: Vec<String> = m.deployments().map(|(dm, _)| dm.name()).collect();
                return Err(l.err(
                    &format!("{f}.deployment"),
                    format!(
                        "no Deployment named `{d}` among the manifests (found: {})",
                        found.join(", ")
                    ),
                ));
            }
            d.clone()
        }
        None => super::tiers::backend_of_route(m, route)
            .map(|(dm, _)| dm.name())
            .ok_or_else(|| {
            l.err(
                f,
                "no Deployment serves the route's first backend Service; name the one the policy scales with `deployment:`",
            )
        })?,
    };
    if let Some((hm, h)) = m.hpas().find(|(_, h)| {
        h.spec
            .as_ref()
            .is_some_and(|s| s.scale_target_ref.name == deployment)
    }) {
        return Err(l.err(
            f,
            format!(
                "Deployment {deployment} is also scaled by HorizontalPodAutoscaler {} ({}): one target has one scaler; remove the HPA from the manifests or drop `target.autoscaler`",
                h.metadata.name.as_deref().unwrap_or_default(),
                hm.file.display()
            ),
        ));
    }
    let source = crate::lua::read(&l.path, &a.lua).map_err(|e| {
        l.err(
            &format!("{f}.lua"),
            format!(
                "cannot read `{}` (relative to the scenario file): {e}",
                a.lua
            ),
        )
    })?;
    compile(l, &a.lua, &source)?;
    Ok((
        Policy {
            name: a.lua.clone(),
            source,
            interval: a.interval,
            min: a.min,
            max: a.max,
        },
        deployment,
    ))
}

/// Refuses a script that does not compile: the script's file and line.
pub(crate) fn compile(l: &Loaded, name: &str, source: &str) -> Result<(), InputError> {
    crate::lua::compile_check(name, source).map_err(|(line, msg)| {
        let file = l
            .path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(name);
        // The message starts with `name:line: `; the error prints the file and line itself.
        let msg = line
            .and_then(|n| msg.strip_prefix(&format!("{name}:{n}: ")))
            .unwrap_or(&msg)
            .to_string();
        InputError::new(&file, format!("the Lua script does not compile: {msg}")).at(line, None)
    })
}

/// The HPA-shaped stand-in: the policy's name and bounds, its Deployment,
/// no metrics.
pub(super) fn stand_in(p: &Policy, deployment: &str) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(p.display()),
            ..Default::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: deployment.into(),
            },
            min_replicas: Some(p.min),
            max_replicas: p.max,
            ..Default::default()
        }),
        status: None,
    }
}

/// Refuses a Lua check whose script is missing or does not compile.
pub(super) fn checks(l: &Loaded) -> Result<(), InputError> {
    for (i, e) in l.scenario.expect.iter().enumerate() {
        let crate::scenario::Expectation::Lua(c) = e else {
            continue;
        };
        let source = crate::lua::read(&l.path, c.script()).map_err(|e| {
            l.err(
                &format!("expect[{i}].lua"),
                format!(
                    "cannot read `{}` (relative to the scenario file): {e}",
                    c.script()
                ),
            )
        })?;
        compile(l, c.script(), &source)?;
    }
    Ok(())
}
