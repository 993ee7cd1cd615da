//! The scenario's load as the load engines take it: the open model's rate
//! curve and request, or the closed model's Goose users and journey.

use std::time::Duration;

use anyhow::Result;

use super::Options;
use crate::backend::LoadTarget;
use crate::clock::Clock;
use crate::error::{InfraError, UsageError};
use crate::load::{self, ClosedConfig, Engine, LoadConfig, RequestSpec, StepSpec};
use crate::scenario::{self, Loaded};

/// Starts the engine the scenario's load model asks for, at experiment time 0.
pub(super) fn start_engine(
    l: &Loaded,
    target: &LoadTarget,
    opts: &Options,
    clock: &Clock,
) -> Result<Engine> {
    if l.scenario.load.is_users() {
        let cfg = closed_config(l, target, opts);
        let h = load::closed::start(cfg, clock.start())
            .map_err(|e| InfraError(format!("cannot start the Goose users: {e}")))?;
        Ok(Engine::Closed(h))
    } else {
        let cfg = load_config(l, target, opts)?;
        let h = load::start(cfg, clock.start()).map_err(|e| match e {
            // A raw-log path that cannot be created is a flag to fix.
            load::LoadError::RawLog { .. } => {
                anyhow::Error::from(UsageError(format!("--raw-log: {e}")))
            }
            e => InfraError(format!("cannot start the load engine: {e}")).into(),
        })?;
        Ok(Engine::Open(h))
    }
}

/// The closed model's engine settings. The scenario was validated (methods,
/// headers, whole users), so nothing here can be bad input.
fn closed_config(l: &Loaded, target: &LoadTarget, opts: &Options) -> ClosedConfig {
    let load = &l.scenario.load;
    let think = load
        .think_time
        .map(|t| (t.min, t.max))
        .unwrap_or((Duration::ZERO, Duration::ZERO));
    ClosedConfig {
        base_url: target.base_url.clone(),
        host: target.host.clone(),
        journey: load
            .journey
            .iter()
            .map(|s| StepSpec {
                name: s.label(),
                method: hyper::Method::from_bytes(s.method.as_bytes())
                    .unwrap_or(hyper::Method::GET),
                path: s.path.clone(),
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                body: s.body.clone().map(bytes::Bytes::from),
                timeout: s.timeout,
            })
            .collect(),
        think,
        plan: l.users_plan(),
        speed: opts.speed,
        sample_interval: l.scenario.sample_interval,
    }
}

fn load_config(l: &Loaded, target: &LoadTarget, opts: &Options) -> Result<LoadConfig> {
    let s = &l.scenario;
    let curve = l.rate_curve()?;
    let req = s.load.request();
    let url: hyper::Uri = format!("{}{}", target.base_url, req.path)
        .parse()
        .map_err(|e| {
            crate::error::InputError::new(&l.path, format!("not a valid URL path: {e}"))
                .field("load.request.path")
        })?;
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(h) = &target.host {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            headers.push(("host".into(), h.clone()));
        }
    }
    Ok(LoadConfig {
        curve,
        spacing: l.spacing(opts.seed),
        speed: opts.speed,
        request: RequestSpec {
            method: hyper::Method::from_bytes(req.method.as_bytes()).unwrap_or(hyper::Method::GET),
            url,
            headers,
            body: req.body.clone().map(bytes::Bytes::from),
            timeout: req.timeout,
        },
        max_in_flight: s.load.max_in_flight(),
        http2: req.http == scenario::HttpVersion::Http2,
        max_connections: s.load.connections,
        raw_log: opts.raw_log.clone(),
        sample_interval: s.sample_interval,
    })
}

/// One line on what the raw log holds, loss and errors included.
pub(super) fn raw_log_note(r: &load::RawLogSummary) -> String {
    let mut s = format!("raw log: {} rows in {}", r.rows, r.path.display());
    if r.lost > 0 {
        s.push_str(&format!(
            "; {} rows LOST (the writer could not keep up)",
            r.lost
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("; write error: {e}"));
    }
    s
}
