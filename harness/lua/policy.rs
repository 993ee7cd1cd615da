//! A Lua policy as a scaler: at each of its intervals it runs the script
//! (seed 003's form: the chunk itself, calling `scale_up_instances()`,
//! `scale_down_instances()`, `log()`), or `decide(m)` when the script
//! defines one, and turns what it asked for into a clamped new size with
//! an Event shaped like the HPA's (`outcome`, which the kube backend's
//! loop settles its calls with too). A failing or runaway call holds the
//! size and posts a Warning naming the script's file and line.

use mlua::{Function, Lua, Table, Value};

use super::ledger::Ledger;
use super::sandbox::{caller, describe, Sandbox};
use super::Policy;
use crate::autoscaler::{ConditionStatus, PodInfo};
use crate::cluster::metrics::Snapshot;
use crate::cluster::scaler::{Decision, Scaler, View};
use crate::load::IntervalStats;
use crate::recorder::{ConditionSample, Event, HpaSample};

/// The events' `source`.
pub(crate) const SOURCE: &str = "lua-policy";

/// What one call sees, frozen before it and handed to the functions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    /// Cluster seconds.
    pub now: f64,
    /// Mean CPU utilization of the ready pods, % of request.
    pub cpu: Option<f64>,
    /// Mean memory utilization of the ready pods, % of request.
    pub memory: Option<f64>,
    /// Mean memory of the ready pods, bytes.
    pub memory_bytes: Option<f64>,
    /// Requests per second through the route (the gateway's count).
    pub qps: Option<f64>,
    /// Mean requests per second per ready pod.
    pub qps_per_pod: Option<f64>,
    /// spec.replicas.
    pub replicas: i32,
    /// Pods that exist and are not terminating.
    pub current: i32,
    pub ready: i32,
    pub min: i32,
    pub max: i32,
    /// The policy's interval, seconds.
    pub interval: f64,
}

/// Per call: the metrics, the load engine's record, and what the script asked.
#[derive(Default)]
struct Ctx {
    m: Metrics,
    ledger: Ledger,
    /// The size asked for so far (starts at spec.replicas).
    want: i32,
    asked: bool,
    logs: Vec<String>,
}

pub(crate) struct LuaScaler {
    policy: Policy,
    deployment: String,
    cpu_request_milli: Option<i64>,
    memory_request_milli: Option<i64>,
    sandbox: Result<(Sandbox, Function), String>,
    /// `decide`, once the top level has run and defined it.
    decide: Option<Function>,
    /// The top level has run (the function form runs it once).
    started: bool,
    /// Cluster time of the last call.
    last: Option<f64>,
    ledger: Ledger,
    last_status: HpaSample,
    active: bool,
}

impl LuaScaler {
    pub(crate) fn new(
        policy: Policy,
        deployment: String,
        cpu_request_milli: Option<i64>,
        memory_request_milli: Option<i64>,
        seed: u64,
    ) -> Self {
        let sandbox = Sandbox::new(seed)
            .and_then(|sb| {
                install(&sb.lua)?;
                let f = sb.compile(&policy.name, &policy.source)?;
                Ok((sb, f))
            })
            .map_err(|e| describe(&e, &policy.name));
        Self {
            last_status: HpaSample {
                name: policy.display(),
                ..Default::default()
            },
            policy,
            deployment,
            cpu_request_milli,
            memory_request_milli,
            sandbox,
            decide: None,
            started: false,
            last: None,
            ledger: Ledger::default(),
            active: false,
        }
    }

    /// The metrics a call sees.
    pub(crate) fn metrics(&self, now: f64, v: &View<'_>) -> Metrics {
        metrics(
            now,
            v,
            self.cpu_request_milli,
            self.memory_request_milli,
            &self.policy,
        )
    }

    /// One call: the size the script wants (`None`: hold) and its log
    /// lines, or the error as `file:line: message`.
    pub(crate) fn call(&mut self, m: Metrics) -> (Result<Option<i32>, String>, Vec<String>) {
        let (sb, chunk) = match &self.sandbox {
            Ok(x) => x,
            Err(e) => return (Err(e.clone()), Vec::new()),
        };
        let lua = &sb.lua;
        let want = m.replicas;
        lua.set_app_data(Ctx {
            ledger: std::mem::take(&mut self.ledger),
            want,
            m,
            ..Default::default()
        });
        let r = (|| -> mlua::Result<Option<i32>> {
            if !self.started {
                self.started = true;
                sb.call::<_, ()>(chunk, ())?;
                self.decide = match lua.globals().get::<Value>("decide")? {
                    Value::Function(f) => Some(f),
                    _ => None,
                };
                if self.decide.is_none() {
                    return Ok(None);
                }
            } else if self.decide.is_none() {
                sb.call::<_, ()>(chunk, ())?;
                return Ok(None);
            }
            let f = self.decide.clone().expect("set above");
            let t = metrics_table(lua)?;
            match sb.call::<_, Value>(&f, t)? {
                Value::Nil => Ok(None),
                Value::Integer(n) => Ok(Some(n.clamp(i32::MIN.into(), i32::MAX.into()) as i32)),
                Value::Number(x) if x.is_finite() => Ok(Some(x.round() as i32)),
                other => Err(mlua::Error::runtime(format!(
                    "{}: decide(m) returned a {}: return the desired replica count, or nil to hold",
                    self.policy.name,
                    other.type_name()
                ))),
            }
        })();
        let ctx = lua.remove_app_data::<Ctx>().unwrap_or_default();
        self.ledger = ctx.ledger;
        let r = match r {
            Ok(Some(n)) => Ok(Some(n)),
            Ok(None) => Ok(ctx.asked.then_some(ctx.want)),
            Err(e) => Err(describe(&e, &self.policy.name)),
        };
        (r, ctx.logs)
    }

    /// A call's result as a decision on a target at `spec_replicas`, with
    /// its events at `now` (see `outcome`); marks the policy active once a
    /// call has succeeded and keeps the status for the samples in between.
    pub(crate) fn settle(
        &mut self,
        now: f64,
        spec_replicas: i32,
        r: Result<Option<i32>, String>,
        logs: Vec<String>,
    ) -> Outcome {
        if r.is_ok() {
            self.active = true;
        }
        let o = outcome(
            &self.policy,
            &self.deployment,
            now,
            spec_replicas,
            self.active,
            r,
            logs,
        );
        self.last_status = o.status.clone();
        o
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The status of the last call (before the first: the policy's name).
    pub(crate) fn status(&self) -> &HpaSample {
        &self.last_status
    }

    /// What the load engine saw, as `client_stats` fed it.
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// What one call comes to, wherever the policy runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// The new spec.replicas, when it differs from the current one.
    pub new_size: Option<i32>,
    /// The size the policy wants (the current one when it holds or failed).
    pub desired: i32,
    /// Its log lines, the rescale or the failure, at `now`.
    pub events: Vec<Event>,
    pub status: HpaSample,
}

/// A call's result (`r`, its `logs`) as a decision on `deployment` at
/// `spec_replicas`: the asked size clamped to the policy's bounds, a
/// SuccessfulRescale shaped like the HPA's when it changes (the last log
/// line is its reason, the others PolicyLog events), or on an error a
/// FailedPolicy warning that holds the size. `active`: a call has
/// succeeded before (the ScalingActive condition of a failure).
pub(crate) fn outcome(
    policy: &Policy,
    deployment: &str,
    now: f64,
    spec_replicas: i32,
    active: bool,
    r: Result<Option<i32>, String>,
    logs: Vec<String>,
) -> Outcome {
    let object = format!("Deployment/{deployment}");
    let event = |type_: &str, reason: &str, message: String| Event {
        t: now,
        type_: type_.into(),
        reason: reason.into(),
        object: object.clone(),
        source: SOURCE.into(),
        message,
        ..Default::default()
    };
    let mut events = Vec::new();
    let (new_size, desired, cond) = match r {
        Ok(want) => {
            let desired = want.unwrap_or(spec_replicas).clamp(policy.min, policy.max);
            let changed = (desired != spec_replicas).then_some(desired);
            // The last log line is the rescale's reason; the others are events of their own.
            let mut logs = logs;
            let reason = match changed {
                Some(_) => logs.pop().unwrap_or_else(|| {
                    format!("{} asked for {}", policy.name, want.unwrap_or(desired))
                }),
                None => String::new(),
            };
            events.extend(logs.into_iter().map(|l| event("Normal", "PolicyLog", l)));
            if let Some(n) = changed {
                let mut e = event(
                    "Normal",
                    "SuccessfulRescale",
                    format!("New size: {n}; reason: {reason}"),
                );
                e.from_replicas = Some(spec_replicas);
                e.to_replicas = Some(n);
                events.push(e);
            }
            let cond = ConditionSample {
                type_: "ScalingActive".into(),
                status: "True".into(),
                reason: "PolicyRan".into(),
                message: format!("{} ran at its interval", policy.name),
            };
            (changed, desired, cond)
        }
        Err(msg) => {
            events.extend(logs.into_iter().map(|l| event("Normal", "PolicyLog", l)));
            events.push(event(
                "Warning",
                "FailedPolicy",
                format!("{msg}; holding at {spec_replicas}"),
            ));
            let cond = ConditionSample {
                type_: "ScalingActive".into(),
                status: if active { "True" } else { "False" }.into(),
                reason: "FailedPolicy".into(),
                message: msg,
            };
            (None, spec_replicas, cond)
        }
    };
    Outcome {
        new_size,
        desired,
        events,
        status: HpaSample {
            name: policy.display(),
            // No metric with a target: a script has thresholds, not a target.
            metrics: Vec::new(),
            conditions: vec![cond],
            min_replicas: None,
            max_replicas: None,
        },
    }
}

/// The script's functions, reading the call's `Ctx`.
fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.set("state", lua.create_table()?)?;
    let num = |f: fn(&Metrics) -> Option<f64>| {
        move |lua: &Lua, (): ()| Ok(lua.app_data_ref::<Ctx>().and_then(|c| f(&c.m)))
    };
    g.set("get_cpu_usage", lua.create_function(num(|m| m.cpu))?)?;
    g.set("get_memory_usage", lua.create_function(num(|m| m.memory))?)?;
    g.set(
        "get_memory_bytes",
        lua.create_function(num(|m| m.memory_bytes))?,
    )?;
    g.set("get_qps", lua.create_function(num(|m| m.qps))?)?;
    g.set(
        "get_qps_per_pod",
        lua.create_function(num(|m| m.qps_per_pod))?,
    )?;
    g.set("now", lua.create_function(num(|m| Some(m.now)))?)?;
    let int = |f: fn(&Metrics) -> i32| {
        move |lua: &Lua, (): ()| Ok(lua.app_data_ref::<Ctx>().map(|c| f(&c.m)))
    };
    g.set("get_replicas", lua.create_function(int(|m| m.replicas))?)?;
    g.set(
        "get_current_replicas",
        lua.create_function(int(|m| m.current))?,
    )?;
    g.set("get_ready_replicas", lua.create_function(int(|m| m.ready))?)?;
    g.set("get_min_replicas", lua.create_function(int(|m| m.min))?)?;
    g.set("get_max_replicas", lua.create_function(int(|m| m.max))?)?;
    g.set(
        "get_desired_replicas",
        lua.create_function(|lua, ()| Ok(lua.app_data_ref::<Ctx>().map(|c| c.want)))?,
    )?;
    g.set(
        "get_latency",
        lua.create_function(|lua, (p, window): (f64, Option<f64>)| {
            if !(p > 0.0 && p <= 100.0) {
                return Err(mlua::Error::runtime(format!(
                    "{}: get_latency(p[, window]): p is a percentile in (0, 100], got {p}",
                    caller(lua)
                )));
            }
            let c = lua.app_data_ref::<Ctx>();
            Ok(c.and_then(|c| {
                let w = window_s(&c.m, window);
                c.ledger.percentile_ms(c.m.now, w, p)
            }))
        })?,
    )?;
    g.set(
        "get_error_rate",
        lua.create_function(|lua, window: Option<f64>| {
            let c = lua.app_data_ref::<Ctx>();
            Ok(c.and_then(|c| {
                let (done, failed) = c.ledger.counts(c.m.now, window_s(&c.m, window));
                (done > 0).then(|| failed as f64 / done as f64)
            }))
        })?,
    )?;
    g.set(
        "get_request_count",
        lua.create_function(|lua, window: Option<f64>| {
            let c = lua.app_data_ref::<Ctx>();
            Ok(c.map(|c| c.ledger.counts(c.m.now, window_s(&c.m, window)).0))
        })?,
    )?;
    let step = |sign: i32| {
        move |lua: &Lua, n: Option<i64>| {
            let n = n.unwrap_or(1);
            if n < 0 {
                return Err(mlua::Error::runtime(format!(
                    "{}: the count of instances must not be negative, got {n}",
                    caller(lua)
                )));
            }
            if let Some(mut c) = lua.app_data_mut::<Ctx>() {
                c.want = c
                    .want
                    .saturating_add(sign.saturating_mul(n.min(1 << 20) as i32));
                c.asked = true;
            }
            Ok(())
        }
    };
    g.set("scale_up_instances", lua.create_function(step(1))?)?;
    g.set("scale_down_instances", lua.create_function(step(-1))?)?;
    g.set(
        "scale_to",
        lua.create_function(|lua, n: i64| {
            if let Some(mut c) = lua.app_data_mut::<Ctx>() {
                c.want = n.clamp(0, 1 << 20) as i32;
                c.asked = true;
            }
            Ok(())
        })?,
    )?;
    g.set(
        "log",
        lua.create_function(|lua, v: Value| {
            let s = match &v {
                Value::String(s) => s.to_string_lossy(),
                other => other.to_string()?,
            };
            if let Some(mut c) = lua.app_data_mut::<Ctx>() {
                // Long lines are cut: an event message is one line.
                if c.logs.len() < 20 {
                    c.logs
                        .push(crate::recorder::one_line(&s).chars().take(500).collect());
                }
            }
            Ok(())
        })?,
    )?;
    Ok(())
}

/// A window argument in seconds, the interval by default, within what the
/// ledger keeps.
fn window_s(m: &Metrics, w: Option<f64>) -> f64 {
    w.filter(|w| w.is_finite() && *w > 0.0)
        .unwrap_or(m.interval)
        .min(super::ledger::KEEP_S)
}

/// `decide(m)`'s argument: the metrics as a table.
fn metrics_table(lua: &Lua) -> mlua::Result<Table> {
    let c = lua.app_data_ref::<Ctx>();
    let t = lua.create_table()?;
    if let Some(c) = c {
        let m = &c.m;
        t.set("now", m.now)?;
        t.set("cpu", m.cpu)?;
        t.set("memory", m.memory)?;
        t.set("memory_bytes", m.memory_bytes)?;
        t.set("qps", m.qps)?;
        t.set("qps_per_pod", m.qps_per_pod)?;
        t.set("replicas", m.replicas)?;
        t.set("current", m.current)?;
        t.set("ready", m.ready)?;
        t.set("min", m.min)?;
        t.set("max", m.max)?;
        t.set("interval", m.interval)?;
        for (k, p) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
            t.set(k, c.ledger.percentile_ms(m.now, m.interval, p))?;
        }
        let (done, failed) = c.ledger.counts(m.now, m.interval);
        t.set("requests", done)?;
        t.set(
            "error_rate",
            (done > 0).then(|| failed as f64 / done as f64),
        )?;
    }
    Ok(t)
}

fn is_ready(p: &PodInfo) -> bool {
    p.ready
        .as_ref()
        .is_some_and(|r| r.status == ConditionStatus::True)
        && !p.deletion_timestamp_set
}

/// The metrics of a view, over the ready pods (as the HPA counts them).
pub(crate) fn metrics(
    now: f64,
    v: &View<'_>,
    cpu_req: Option<i64>,
    mem_req: Option<i64>,
    policy: &Policy,
) -> Metrics {
    let ready: Vec<&str> = v
        .pods
        .iter()
        .filter(|p| is_ready(p))
        .map(|p| p.name.as_str())
        .collect();
    let s: &Snapshot = v.metrics;
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let usage = |list: &[crate::autoscaler::PodResourceMetric], res: &str| -> Vec<f64> {
        list.iter()
            .filter(|m| ready.contains(&m.pod.as_str()))
            .map(|m| {
                m.containers
                    .iter()
                    .filter_map(|c| c.usage.get(res))
                    .sum::<i64>() as f64
            })
            .collect()
    };
    let cpu_milli = usage(&s.cpu, "cpu");
    let mem_milli = usage(&s.memory, "memory");
    let pct = |xs: &[f64], req: Option<i64>| {
        req.filter(|r| *r > 0)
            .and_then(|r| mean(xs.iter().map(|x| x / r as f64 * 100.0).collect()))
    };
    Metrics {
        now,
        cpu: pct(&cpu_milli, cpu_req),
        memory: pct(&mem_milli, mem_req),
        // Memory usage is in milli-bytes, as quantities are.
        memory_bytes: mean(mem_milli.iter().map(|x| x / 1000.0).collect()),
        qps: (!s.route_qps.is_empty()).then(|| s.route_qps.iter().map(|r| r.2).sum()),
        qps_per_pod: mean(
            s.pod_qps
                .iter()
                .filter(|(p, _)| ready.contains(&p.as_str()))
                .map(|(_, q)| *q)
                .collect(),
        ),
        replicas: v.spec_replicas,
        current: v.current,
        ready: ready.len() as i32,
        min: policy.min,
        max: policy.max,
        interval: policy.interval.as_secs_f64(),
    }
}

impl Scaler for LuaScaler {
    fn sync(&mut self, now: f64, v: &View<'_>) -> Decision {
        let interval = self.policy.interval.as_secs_f64();
        let due = self.last.is_none_or(|l| now - l >= interval - 1e-6);
        let hold = |s: &Self| Decision {
            new_size: None,
            events: Vec::new(),
            status: s.last_status.clone(),
            active: s.active,
            desired: v.spec_replicas,
        };
        if !due {
            return hold(self);
        }
        self.last = Some(now);
        let m = self.metrics(now, v);
        let (r, logs) = self.call(m);
        // Ready for load once a call succeeded, or once the pods' metrics
        // are in (a script that fails then fails with data: the run goes
        // on, holding, with its warnings).
        if !v.metrics.cpu.is_empty() {
            self.active = true;
        }
        let o = self.settle(now, v.spec_replicas, r, logs);
        Decision {
            new_size: o.new_size,
            events: o.events,
            status: o.status,
            active: self.active,
            desired: o.desired,
        }
    }

    fn client_stats(&mut self, t: f64, s: &IntervalStats) {
        self.ledger.push(t, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEED: &str = include_str!("../../policies/cpu.lua");

    fn policy(name: &str, source: &str) -> Policy {
        Policy {
            name: name.into(),
            source: source.into(),
            interval: Duration::from_secs(15),
            min: 1,
            max: 10,
        }
    }

    fn scaler(name: &str, source: &str) -> LuaScaler {
        LuaScaler::new(policy(name, source), "web".into(), Some(100), None, 7)
    }

    fn m(cpu: Option<f64>, replicas: i32, now: f64) -> Metrics {
        Metrics {
            now,
            cpu,
            replicas,
            current: replicas,
            ready: replicas,
            min: 1,
            max: 10,
            interval: 15.0,
            ..Default::default()
        }
    }

    fn empty() -> Snapshot {
        Snapshot {
            cpu: Vec::new(),
            memory: Vec::new(),
            pod_qps: Default::default(),
            route_qps: Vec::new(),
        }
    }

    #[test]
    fn the_seeds_script_runs_unchanged() {
        let mut s = scaler("policies/cpu.lua", SEED);
        assert_eq!(
            s.call(m(Some(93.5), 2, 15.0)),
            (
                Ok(Some(3)),
                vec!["Scaled up instances due to high CPU usage: 93.5%".to_string()]
            )
        );
        assert_eq!(s.call(m(Some(50.0), 3, 30.0)), (Ok(None), vec![]));
        assert_eq!(
            s.call(m(Some(12.0), 3, 45.0)),
            (
                Ok(Some(2)),
                vec!["Scaled down instances due to low CPU usage: 12.0%".to_string()]
            )
        );
    }

    #[test]
    fn a_failing_call_holds_and_names_file_and_line() {
        let mut s = scaler("policies/cpu.lua", SEED);
        let v = View {
            spec_replicas: 3,
            current: 3,
            pods: &[],
            metrics: &empty(),
        };
        // No ready pod has a CPU sample: get_cpu_usage() is nil.
        let d = s.sync(15.0, &v);
        assert_eq!(d.new_size, None);
        assert_eq!(d.desired, 3);
        let e = &d.events[0];
        assert_eq!(
            (e.type_.as_str(), e.reason.as_str(), e.source.as_str()),
            ("Warning", "FailedPolicy", SOURCE)
        );
        assert_eq!(
            e.message,
            "policies/cpu.lua:2: attempt to compare number with nil; holding at 3"
        );
        // Not due again before its interval.
        assert!(s.sync(20.0, &v).events.is_empty());
    }

    #[test]
    fn decisions_are_clamped_and_become_rescale_events() {
        let mut s = scaler("p.lua", "scale_up_instances(50)\nlog('way up')");
        let snap = empty();
        let v = View {
            spec_replicas: 4,
            current: 4,
            pods: &[],
            metrics: &snap,
        };
        let d = s.sync(15.0, &v);
        assert_eq!(d.new_size, Some(10));
        let e = &d.events[0];
        assert_eq!(e.reason, "SuccessfulRescale");
        assert_eq!(e.object, "Deployment/web");
        assert_eq!(e.message, "New size: 10; reason: way up");
        assert_eq!((e.from_replicas, e.to_replicas), (Some(4), Some(10)));
    }

    #[test]
    fn function_form_with_state_and_cooldown() {
        let src = "state.n = 0\nfunction decide(m)\n  state.n = state.n + 1\n  if m.cpu > 80 then return m.replicas + 2 end\n  return nil\nend";
        let mut s = scaler("f.lua", src);
        assert_eq!(s.call(m(Some(90.0), 2, 15.0)).0, Ok(Some(4)));
        assert_eq!(s.call(m(Some(10.0), 4, 30.0)).0, Ok(None));
        // The top level ran once: state persisted across calls.
        let sb = &s.sandbox.as_ref().unwrap().0;
        let st: Table = sb.lua.globals().get("state").unwrap();
        assert_eq!(st.get::<i64>("n").unwrap(), 2);
        let mut bad = scaler("f.lua", "function decide(m) return 'many' end");
        assert_eq!(
            bad.call(m(Some(1.0), 2, 15.0)).0,
            Err("f.lua: decide(m) returned a string: return the desired replica count, or nil to hold".into())
        );
    }

    #[test]
    fn shipped_latency_policy_scales_on_p95_with_a_cooldown() {
        let mut s = scaler(
            "policies/latency.lua",
            include_str!("../../policies/latency.lua"),
        );
        let slow = |ms: u64| {
            let mut st = IntervalStats::new();
            for _ in 0..100 {
                st.response_time.saturating_record(ms * 1000);
            }
            st.completed = 100;
            st.status.s2xx = 100;
            st
        };
        for k in 1..=15 {
            s.client_stats(f64::from(k), &slow(300));
        }
        let (r, logs) = s.call(m(Some(50.0), 2, 15.0));
        assert_eq!(r, Ok(Some(4)), "{logs:?}");
        // Still slow, but cooling down.
        for k in 16..=30 {
            s.client_stats(f64::from(k), &slow(300));
        }
        assert_eq!(s.call(m(Some(50.0), 4, 30.0)).0, Ok(None));
    }

    #[test]
    fn sandbox_escapes_fail_the_call_not_the_run() {
        for (src, want) in [
            (
                "io.open('/etc/passwd')",
                "p.lua:1: attempt to index a nil value (global 'io')",
            ),
            (
                "os.execute('true')",
                "p.lua:1: attempt to index a nil value (global 'os')",
            ),
            (
                "require('io')",
                "p.lua:1: attempt to call a nil value (global 'require')",
            ),
            (
                "load('x = 1')()",
                "p.lua:1: attempt to call a nil value (global 'load')",
            ),
            (
                "scale_up_instances(-1)",
                "p.lua:1: the count of instances must not be negative, got -1",
            ),
            (
                "local s = string.rep('ab', 1 << 28)",
                "p.lua: memory limit of 16 MiB exceeded",
            ),
        ] {
            let mut s = scaler("p.lua", src);
            assert_eq!(s.call(m(Some(50.0), 2, 15.0)).0, Err(want.into()), "{src}");
            // The next call runs again.
            assert!(s.call(m(Some(50.0), 2, 30.0)).0.is_err());
        }
        let mut s = scaler("p.lua", "while true do end");
        let e = s.call(m(Some(50.0), 2, 15.0)).0.unwrap_err();
        assert!(e.starts_with("p.lua:1: instruction budget"), "{e}");
    }
}
