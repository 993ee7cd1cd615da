//! Scenario validation: everything a run would fail on, found before it
//! starts, each error naming the field and what is allowed.

use super::*;

pub(super) fn validate(l: &Loaded) -> Result<(), InputError> {
    let s = &l.scenario;
    if s.duration.is_zero() {
        return Err(l.err("duration", "must be longer than 0s, e.g. `35m`"));
    }
    if s.sample_interval.is_zero() || s.sample_interval > s.duration {
        return Err(l.err(
            "sample_interval",
            "must be more than 0s and no longer than `duration`",
        ));
    }
    if s.manifests.is_empty() {
        return Err(l.err(
            "manifests",
            "list at least one manifest file (Deployment, Service, HPA, HTTPRoute)",
        ));
    }
    match s.load.model {
        LoadModel::Open => validate_open(l)?,
        LoadModel::Users => validate_users(l)?,
    }
    let total = s.load.total();
    if total > s.duration.as_secs_f64() + 1e-9 {
        return Err(l.err(
            "duration",
            format!(
                "is {} but the load stages last {}; make `duration` at least as long",
                fmt_dur(s.duration),
                fmt_dur(Duration::from_secs_f64(total))
            ),
        ));
    }
    if s.target.replicas.is_some_and(|n| n < 1) {
        return Err(l.err("target.replicas", "must be ≥ 1"));
    }
    let m = &s.local.pods.model;
    if m.concurrency == 0 {
        return Err(l.err("local.pods.model.concurrency", "must be at least 1"));
    }
    if m.service_time.is_zero() {
        return Err(l.err("local.pods.model.service_time", "must be more than 0s"));
    }
    if let Some(cmd) = &s.local.pods.command {
        if !cmd.contains("{port}") {
            return Err(l.err(
                "local.pods.command",
                "must contain `{port}`, where the pod's port is put",
            ));
        }
    }
    // The engine's own checks on the curve, at validation time, not mid-run
    // (the users model has stages of users, not a rate curve).
    if !s.load.is_users() {
        l.rate_curve()?;
    }
    let c = &s.local.controller;
    if c.sync_period.is_zero() {
        return Err(l.err("local.controller.sync_period", "must be more than 0s"));
    }
    if !(c.tolerance.is_finite() && c.tolerance >= 0.0) {
        return Err(l.err(
            "local.controller.tolerance",
            "must be a number ≥ 0, e.g. 0.1",
        ));
    }
    let mt = &s.local.metrics;
    for (f, d) in [
        ("local.ready_timeout", s.local.ready_timeout),
        ("kube.ready_timeout", s.kube.ready_timeout),
        ("local.metrics.window", mt.window),
        ("local.metrics.resource_window", mt.resource_window),
        ("local.metrics.scrape_interval", mt.scrape_interval),
    ] {
        if d.is_zero() {
            return Err(l.err(f, "must be more than 0s"));
        }
    }
    validate_prometheus(l, &s.kube.prometheus)?;
    for (i, e) in s.expect.iter().enumerate() {
        let f = |k: &str| format!("expect[{i}].{k}");
        match e {
            Expectation::ScaleOut(so)
                if so.to < 1 || so.from.is_some_and(|f| f < 0 || f >= so.to) =>
            {
                return Err(l.err(
                    &f("scale_out"),
                    "needs `to` ≥ 1 and, when given, 0 ≤ `from` < `to`",
                ));
            }
            Expectation::ScaleIn(si) if si.to < 0 => {
                return Err(l.err(&f("scale_in.to"), "must be ≥ 0"));
            }
            Expectation::MaxReplicas(n) | Expectation::MinReplicas(n) if *n < 0 => {
                return Err(l.err(&format!("expect[{i}]"), "replica bounds must be ≥ 0"));
            }
            Expectation::ErrorRatio(r) if !(0.0..=1.0).contains(&r.below) => {
                return Err(l.err(&f("error_ratio.below"), "must be between 0 and 1"));
            }
            Expectation::Latency(lat) if !(lat.percentile > 0.0 && lat.percentile <= 100.0) => {
                return Err(l.err(
                    &f("latency.percentile"),
                    "must be in (0, 100], e.g. 99 or 99.9",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The open model: a rate schedule and one request; no journey.
fn validate_open(l: &Loaded) -> Result<(), InputError> {
    let load = &l.scenario.load;
    for (field, written) in [
        ("load.journey", !load.journey.is_empty()),
        ("load.think_time", load.think_time.is_some()),
    ] {
        if written {
            return Err(l.err(
                field,
                "only with `model: users` (the closed model); the open model sends `load.request` on the stages' schedule",
            ));
        }
    }
    if load.stages.is_empty() {
        return Err(l.err(
            "load.stages",
            "list at least one stage: {ramp_to: R, over: D}, {hold: D} or {rate: R, for: D}",
        ));
    }
    if load.max_in_flight() == 0 {
        return Err(l.err("load.max_in_flight", "must be at least 1"));
    }
    if load.connections == Some(0) {
        return Err(l.err(
            "load.connections",
            "must be at least 1 (leave it out to allow one per request in flight)",
        ));
    }
    let req = load.request();
    if req.timeout.is_zero() {
        return Err(l.err("load.request.timeout", "must be more than 0s"));
    }
    if !req.path.starts_with('/') {
        return Err(l.err("load.request.path", "must start with `/`, e.g. `/get`"));
    }
    if hyper::Method::from_bytes(req.method.as_bytes()).is_err() {
        return Err(l.err(
            "load.request.method",
            format!(
                "`{}` is not an HTTP method (GET, POST, PUT, ...)",
                req.method
            ),
        ));
    }
    Ok(())
}

/// The closed model: stages in whole users, a journey, no open-model fields.
fn validate_users(l: &Loaded) -> Result<(), InputError> {
    let load = &l.scenario.load;
    for (field, written, why) in [
        (
            "load.request",
            load.request.is_some(),
            "each `load.journey` step carries its own method, path, headers, body and timeout",
        ),
        (
            "load.spacing",
            load.spacing.is_some(),
            "a user sends when its previous response and its think time are over",
        ),
        (
            "load.max_in_flight",
            load.max_in_flight.is_some(),
            "each user has at most one request in flight, so the user count is the cap",
        ),
        (
            "load.connections",
            load.connections.is_some(),
            "each user keeps its own connection",
        ),
    ] {
        if written {
            return Err(l.err(
                field,
                format!("only for `model: open`; with `model: users` {why}"),
            ));
        }
    }
    const SHAPES: &str = "{ramp_to: N, over: D} (N users; `over: 0s` jumps) or {hold: D}";
    if load.stages.is_empty() {
        return Err(l.err(
            "load.stages",
            format!("list at least one stage, in users: {SHAPES}"),
        ));
    }
    for (i, stage) in load.stages.iter().enumerate() {
        match stage {
            Stage::Step { .. } => {
                return Err(l.err(
                    &format!("load.stages[{i}]"),
                    format!(
                        "with `model: users` a stage is {SHAPES}; `rate` is for the open model"
                    ),
                ));
            }
            Stage::Ramp { to, .. } if to.0.fract() != 0.0 || to.0 > MAX_USERS => {
                return Err(l.err(
                    &format!("load.stages[{i}].ramp_to"),
                    format!(
                        "counts users with `model: users`: a whole number from 0 to {MAX_USERS}, got {}",
                        to.0
                    ),
                ));
            }
            _ => {}
        }
    }
    if load.load_stop() == 0.0 {
        return Err(l.err(
            "load.stages",
            "no stage starts a user; ramp to at least 1, e.g. {ramp_to: 10, over: 1m}",
        ));
    }
    if load.journey.is_empty() {
        return Err(l.err(
            "load.journey",
            "required with `model: users`: the steps each user repeats, e.g. `- { name: home, path: /get }`",
        ));
    }
    for (i, step) in load.journey.iter().enumerate() {
        let f = |k: &str| format!("load.journey[{i}].{k}");
        if !step.path.starts_with('/') {
            return Err(l.err(&f("path"), "must start with `/`, e.g. `/get`"));
        }
        if !JOURNEY_METHODS.contains(&step.method.as_str()) {
            return Err(l.err(
                &f("method"),
                format!(
                    "`{}` is not one of {}",
                    step.method,
                    JOURNEY_METHODS.join(", ")
                ),
            ));
        }
        if step.timeout.is_zero() {
            return Err(l.err(&f("timeout"), "must be more than 0s"));
        }
        for (name, value) in &step.headers {
            let bad = hyper::header::HeaderName::from_bytes(name.as_bytes())
                .err()
                .map(|e| format!("`{name}` is not a header name: {e}"))
                .or_else(|| {
                    hyper::header::HeaderValue::from_str(value)
                        .err()
                        .map(|e| format!("`{name}: {value}` is not a header value: {e}"))
                });
            if let Some(msg) = bad {
                return Err(l.err(&f("headers"), msg));
            }
        }
    }
    Ok(())
}

fn validate_prometheus(l: &Loaded, p: &super::Prometheus) -> Result<(), InputError> {
    let (ns, name, port) = p.parts();
    let label = |x: &str| {
        !x.is_empty()
            && x.len() <= 63
            && x.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !x.starts_with('-')
            && !x.ends_with('-')
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0) || label(p));
    if !(p.service.contains('/') && label(ns) && label(name) && port_ok) {
        return Err(l.err(
            "kube.prometheus.service",
            format!(
                "is `{}`; give `namespace/service` or `namespace/service:port` (a port number or name), e.g. monitoring/prometheus-server:80",
                p.service
            ),
        ));
    }
    if p.query.trim().is_empty() {
        return Err(l.err(
            "kube.prometheus.query",
            "is empty; give PromQL with one series per pod labelled `pod`",
        ));
    }
    Ok(())
}
