//! Scenario validation: everything a run would fail on, found before it
//! starts, each error naming the field and what is allowed.

use super::*;

/// Limits that keep a run inside one machine: the sim allocates per
/// sample and steps every 10 ms, the engines hold per-request state, and
/// the embedded cluster runs every pod in this process. Documented in
/// docs/scenario.md ("Limits").
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_SAMPLES: f64 = 1_000_000.0;
pub const MAX_STAGES: usize = 10_000;
pub const MAX_RATE: f64 = 1_000_000.0;
pub const MAX_REQUESTS: f64 = 1e9;
pub const MAX_IN_FLIGHT: usize = 1_000_000;
pub const MAX_CONCURRENCY: usize = 10_000;
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// Pods the embedded cluster runs at once (replicas, maxReplicas).
pub const MAX_PODS: i32 = 1000;

pub(super) fn validate(l: &Loaded) -> Result<(), InputError> {
    let s = &l.scenario;
    if s.duration.is_zero() {
        return Err(l.err("duration", "must be longer than 0s, e.g. `35m`"));
    }
    if s.duration > MAX_DURATION {
        return Err(l.err(
            "duration",
            format!(
                "{} is over the limit of {}",
                fmt_dur(s.duration),
                fmt_dur(MAX_DURATION)
            ),
        ));
    }
    if s.sample_interval.is_zero() || s.sample_interval > s.duration {
        return Err(l.err(
            "sample_interval",
            "must be more than 0s and no longer than `duration`",
        ));
    }
    let samples = s.duration.as_secs_f64() / s.sample_interval.as_secs_f64();
    if samples > MAX_SAMPLES {
        return Err(l.err(
            "sample_interval",
            format!(
                "{} over {} makes {samples:.0} samples; at most {MAX_SAMPLES:.0} are allowed (`duration` ÷ `sample_interval`)",
                fmt_dur(s.sample_interval),
                fmt_dur(s.duration)
            ),
        ));
    }
    if s.load.stages.len() > MAX_STAGES {
        return Err(l.err(
            "load.stages",
            format!(
                "{} stages; at most {MAX_STAGES} are allowed",
                s.load.stages.len()
            ),
        ));
    }
    check_durations(l)?;
    if let Some(url) = &s.target.url {
        target_url(url).map_err(|m| l.err("target.url", m))?;
    }
    if let Some(host) = &s.target.host {
        if host.is_empty() || hyper::header::HeaderValue::from_str(host).is_err() {
            return Err(l.err(
                "target.host",
                format!(
                    "`{}` cannot be sent as a Host header; write a host name such as httpbin.example.com",
                    host.escape_debug()
                ),
            ));
        }
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
    if s.target
        .replicas
        .is_some_and(|n| !(1..=MAX_PODS).contains(&n))
    {
        return Err(l.err(
            "target.replicas",
            format!("must be from 1 to {MAX_PODS} (the embedded cluster's pod limit)"),
        ));
    }
    let m = &s.local.pods.model;
    if !(1..=MAX_CONCURRENCY).contains(&m.concurrency) {
        return Err(l.err(
            "local.pods.model.concurrency",
            format!("must be from 1 to {MAX_CONCURRENCY}"),
        ));
    }
    if m.service_time.is_zero() {
        return Err(l.err("local.pods.model.service_time", "must be more than 0s"));
    }
    if m.memory_base_mib > MAX_MEMORY_MIB {
        return Err(l.err(
            "local.pods.model.memory_base_mib",
            format!("must be at most {MAX_MEMORY_MIB} (1 TiB)"),
        ));
    }
    if s.local.pods.startup_delay >= s.local.ready_timeout {
        return Err(l.err(
            "local.pods.startup_delay",
            format!(
                "{} is not shorter than local.ready_timeout {}: no pod could become ready in time",
                fmt_dur(s.local.pods.startup_delay),
                fmt_dur(s.local.ready_timeout)
            ),
        ));
    }
    let g = &s.local.gateway;
    if !(1..=MAX_CONCURRENCY).contains(&g.model.concurrency) {
        return Err(l.err(
            "local.gateway.model.concurrency",
            format!("must be from 1 to {MAX_CONCURRENCY}"),
        ));
    }
    if g.model.cpu_per_request.is_zero() {
        return Err(l.err(
            "local.gateway.model.cpu_per_request",
            "must be more than 0s: an instance's capacity is its CPU",
        ));
    }
    if g.model.memory_base_mib > MAX_MEMORY_MIB {
        return Err(l.err(
            "local.gateway.model.memory_base_mib",
            format!("must be at most {MAX_MEMORY_MIB} (1 TiB)"),
        ));
    }
    if g.startup_delay >= s.local.ready_timeout {
        return Err(l.err(
            "local.gateway.startup_delay",
            format!(
                "{} is not shorter than local.ready_timeout {}: no instance could become ready in time",
                fmt_dur(g.startup_delay),
                fmt_dur(s.local.ready_timeout)
            ),
        ));
    }
    if let Some(p) = &s.local.pods.readiness_path {
        url_path(p).map_err(|m| l.err("local.pods.readiness_path", m))?;
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
            Expectation::ErrorRatio(r) if !(r.below > 0.0 && r.below <= 1.0) => {
                // The check is `ratio < below`: 0 could never hold.
                return Err(l.err(
                    &f("error_ratio.below"),
                    "must be more than 0 and at most 1, e.g. 0.01",
                ));
            }
            Expectation::Latency(lat) if !(lat.percentile > 0.0 && lat.percentile <= 100.0) => {
                return Err(l.err(
                    &f("latency.percentile"),
                    "must be in (0, 100], e.g. 99 or 99.9",
                ));
            }
            Expectation::Replicas(r) => {
                if r.at.is_some() == r.during.is_some() {
                    return Err(l.err(
                        &f("replicas"),
                        "needs exactly one of `at: <time>` and `during: [from, to]`",
                    ));
                }
                if r.is.is_some() == (r.min.is_some() || r.max.is_some()) {
                    return Err(l.err(
                        &f("replicas"),
                        "needs `is: <n>`, or `min` and/or `max`, but not both",
                    ));
                }
                let (lo, hi) = r.bounds();
                if lo < 0 || lo > hi {
                    return Err(l.err(
                        &f("replicas"),
                        format!("the bounds must satisfy 0 ≤ min ≤ max (got {lo}..{hi})"),
                    ));
                }
            }
            Expectation::HpaRange(h) if h.min < 1 || h.max < h.min => {
                return Err(l.err(
                    &f("hpa_range"),
                    format!("needs 1 ≤ min ≤ max (got {}..{})", h.min, h.max),
                ));
            }
            Expectation::Latency(lat) if lat.below.is_zero() => {
                return Err(l.err(
                    &f("latency.below"),
                    "must be more than 0s: no response time is below 0",
                ));
            }
            _ => {}
        }
        check_times(l, i, e)?;
    }
    check_bounds(l)?;
    Ok(())
}

/// Times and windows of expectation `i` lie inside the run: a check past
/// `duration` could never be decided.
fn check_times(l: &Loaded, i: usize, e: &Expectation) -> Result<(), InputError> {
    let s = &l.scenario;
    let end = s.duration;
    let window = |field: &str, w: &Window| -> Result<(), InputError> {
        if w.to > end {
            return Err(l.err(
                &format!("expect[{i}].{field}"),
                format!(
                    "[{}, {}] ends after `duration` {}; the window must lie inside the run",
                    fmt_dur(w.from),
                    fmt_dur(w.to),
                    fmt_dur(end)
                ),
            ));
        }
        Ok(())
    };
    let instant = |field: &str, at: Option<Duration>| -> Result<(), InputError> {
        match at {
            Some(t) if t > end => Err(l.err(
                &format!("expect[{i}].{field}"),
                format!(
                    "{} is after `duration` {}; the instant must lie inside the run",
                    fmt_dur(t),
                    fmt_dur(end)
                ),
            )),
            _ => Ok(()),
        }
    };
    match e {
        Expectation::ScaleOut(so) => {
            if let Some(w) = &so.between {
                window("scale_out.between", w)?;
            }
            if let Some(r) = &so.offered_qps {
                let peak = s
                    .load
                    .pieces()
                    .iter()
                    .map(|p| p.from.max(p.to))
                    .fold(0.0, f64::max);
                if !s.load.is_users() && r.low > peak {
                    return Err(l.err(
                        &format!("expect[{i}].scale_out.offered_qps"),
                        format!(
                            "[{}, {}] starts above the highest offered rate, {peak} requests/s: it could never hold",
                            r.low, r.high
                        ),
                    ));
                }
            }
        }
        Expectation::ScaleIn(si) => {
            let at = si.after.at(s.load.load_stop());
            if at > end.as_secs_f64() {
                return Err(l.err(
                    &format!("expect[{i}].scale_in.after"),
                    format!(
                        "{} is after `duration` {}",
                        si.after.describe(),
                        fmt_dur(end)
                    ),
                ));
            }
            let until = at + si.within.as_secs_f64();
            if until > end.as_secs_f64() + 1e-9 {
                return Err(l.err(
                    &format!("expect[{i}].scale_in.within"),
                    format!(
                        "{} after {} ends at {}, after `duration` {}; shorten it or lengthen the run",
                        fmt_dur(si.within),
                        si.after.describe(),
                        fmt_dur(Duration::from_secs_f64(until)),
                        fmt_dur(end)
                    ),
                ));
            }
        }
        Expectation::Latency(lat) => {
            if let Some(w) = &lat.during {
                window("latency.during", w)?;
            }
        }
        Expectation::PodQps(q) => window("pod_qps.during", &q.during)?,
        Expectation::Replicas(r) => {
            if let Some(w) = &r.during {
                window("replicas.during", w)?;
            }
            instant("replicas.at", r.at)?;
        }
        Expectation::HpaRange(h) => instant("hpa_range.at", Some(h.at))?,
        _ => {}
    }
    Ok(())
}

/// Replica bounds among the expectations that no run could meet together.
fn check_bounds(l: &Loaded) -> Result<(), InputError> {
    let expect = &l.scenario.expect;
    let find = |pick: fn(&Expectation) -> Option<i32>| {
        expect
            .iter()
            .enumerate()
            .find_map(|(i, e)| pick(e).map(|n| (i, n)))
    };
    let max = find(|e| match e {
        Expectation::MaxReplicas(n) => Some(*n),
        _ => None,
    });
    let min = find(|e| match e {
        Expectation::MinReplicas(n) => Some(*n),
        _ => None,
    });
    if let (Some((_, hi)), Some((j, lo))) = (max, min) {
        if lo > hi {
            return Err(l.err(
                &format!("expect[{j}].min_replicas"),
                format!("{lo} is above the max_replicas expectation {hi}: both cannot hold"),
            ));
        }
    }
    for (i, e) in expect.iter().enumerate() {
        match e {
            Expectation::ScaleOut(so) => {
                if let Some((_, hi)) = max.filter(|&(_, hi)| so.to > hi) {
                    return Err(l.err(
                        &format!("expect[{i}].scale_out.to"),
                        format!("{} is above the max_replicas expectation {hi}", so.to),
                    ));
                }
            }
            Expectation::ScaleIn(si) => {
                if let Some((_, lo)) = min.filter(|&(_, lo)| si.to < lo) {
                    return Err(l.err(
                        &format!("expect[{i}].scale_in.to"),
                        format!("{} is below the min_replicas expectation {lo}", si.to),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every duration field is at most `MAX_DURATION`: beyond it a timer or a
/// warm-up would outlast any run.
fn check_durations(l: &Loaded) -> Result<(), InputError> {
    let s = &l.scenario;
    let (p, mt, c) = (&s.local.pods, &s.local.metrics, &s.local.controller);
    let mut all = vec![
        ("local.pods.startup_delay", p.startup_delay),
        ("local.pods.termination_grace", p.termination_grace),
        ("local.pods.model.service_time", p.model.service_time),
        ("local.pods.model.cpu_per_request", p.model.cpu_per_request),
        ("local.gateway.startup_delay", s.local.gateway.startup_delay),
        (
            "local.gateway.model.cpu_per_request",
            s.local.gateway.model.cpu_per_request,
        ),
        ("local.ready_timeout", s.local.ready_timeout),
        ("kube.ready_timeout", s.kube.ready_timeout),
        ("local.metrics.window", mt.window),
        ("local.metrics.resource_window", mt.resource_window),
        ("local.metrics.scrape_interval", mt.scrape_interval),
        ("local.controller.sync_period", c.sync_period),
        (
            "local.controller.downscale_stabilization",
            c.downscale_stabilization,
        ),
        (
            "local.controller.cpu_initialization_period",
            c.cpu_initialization_period,
        ),
        (
            "local.controller.initial_readiness_delay",
            c.initial_readiness_delay,
        ),
    ];
    if let Some(r) = &s.load.request {
        all.push(("load.request.timeout", r.timeout));
    }
    for (f, d) in all {
        if d > MAX_DURATION {
            return Err(l.err(
                f,
                format!(
                    "{} is over the limit of {}",
                    fmt_dur(d),
                    fmt_dur(MAX_DURATION)
                ),
            ));
        }
    }
    Ok(())
}

/// `target.url`: where `--backend kube` sends the load. An absolute
/// http(s) URL with a host; the path, if any, is ignored by the engine.
pub(crate) fn target_url(text: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(text).map_err(|e| {
        format!(
            "`{text}` is not a URL ({e}); write the gateway's address, e.g. http://127.0.0.1:8080"
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}`: the scheme is `{}`; allowed are http and https",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host; e.g. http://127.0.0.1:8080"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("`{text}` carries credentials; the load sends none"));
    }
    Ok(u)
}

/// Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost).
pub(crate) fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A request path as it goes on the request line: starts with `/`, and is
/// a valid URI path and query (no spaces, no control characters).
fn url_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("`{p}` must start with `/`, e.g. `/get`"));
    }
    hyper::http::uri::PathAndQuery::try_from(p)
        .map(|_| ())
        .map_err(|e| {
            format!("`{}` is not a URL path ({e}); percent-encode spaces and other special characters, e.g. %20", p.escape_debug())
        })
}

/// A header name and value the HTTP client can send.
fn header(name: &str, value: &str) -> Result<(), String> {
    hyper::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| format!("`{}` is not a header name: {e}", name.escape_debug()))?;
    hyper::header::HeaderValue::from_str(value).map_err(|e| {
        format!(
            "`{}: {}` is not a header value: {e}",
            name.escape_debug(),
            value.escape_debug()
        )
    })?;
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
    url_path(&req.path).map_err(|m| l.err("load.request.path", m))?;
    for (name, value) in &req.headers {
        header(name, value).map_err(|m| l.err(&format!("load.request.headers.{name}"), m))?;
    }
    if load.max_in_flight() > MAX_IN_FLIGHT {
        return Err(l.err(
            "load.max_in_flight",
            format!("must be at most {MAX_IN_FLIGHT}"),
        ));
    }
    if load.connections.is_some_and(|c| c > MAX_IN_FLIGHT) {
        return Err(l.err(
            "load.connections",
            format!("must be at most {MAX_IN_FLIGHT}"),
        ));
    }
    for (i, stage) in load.stages.iter().enumerate() {
        let (field, rate) = match stage {
            Stage::Ramp { to, .. } => ("ramp_to", to.0),
            Stage::Step { rate, .. } => ("rate", rate.0),
            Stage::Hold { .. } => continue,
        };
        if rate > MAX_RATE {
            return Err(l.err(
                &format!("load.stages[{i}].{field}"),
                format!("{rate} requests/s is over the limit of {MAX_RATE:.0}"),
            ));
        }
    }
    let requests: f64 = load
        .pieces()
        .iter()
        .map(|p| 0.5 * (p.from + p.to) * (p.end - p.start))
        .sum();
    if requests > MAX_REQUESTS {
        return Err(l.err(
            "load.stages",
            format!(
                "send {requests:.3e} requests in all; at most {MAX_REQUESTS:.0e} are allowed in one run"
            ),
        ));
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
        url_path(&step.path).map_err(|m| l.err(&f("path"), m))?;
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
            header(name, value).map_err(|m| l.err(&f("headers"), m))?;
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
