//! A check written in Lua over a recorded run: the script sees `samples`,
//! `events`, `meta` and `params` as tables and returns whether the run
//! passed, a message and a measured value, e.g.
//! `return { pass = false, message = "...", value = 120 }` or
//! `return false, "...", 120`. It runs in the same sandbox as policies,
//! with a larger budget (it reads the whole run once).

use mlua::{Lua, Table, Value};

use super::sandbox::{describe, Sandbox};
use crate::recorder::RunData;

/// A check's verdict, as the script gave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub pass: bool,
    pub message: String,
    pub value: Option<String>,
    /// What the check asks for, as a person reads it (`bound = ...`).
    pub bound: Option<String>,
}

/// Runs script `name` (its `source`) over `run` with `params`.
/// `Err` is the script's error as `file:line: message`.
pub(crate) fn run(
    name: &str,
    source: &str,
    run: &RunData,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Outcome, String> {
    let fail = |e: mlua::Error| describe(&e, name);
    let sb = Sandbox::new(run.meta.seed).map_err(fail)?;
    let f = sb.compile(name, source).map_err(fail)?;
    let lua = &sb.lua;
    let g = lua.globals();
    (|| -> mlua::Result<()> {
        g.set("samples", samples(lua, run)?)?;
        g.set("events", events(lua, run)?)?;
        g.set("meta", meta(lua, run)?)?;
        let p = lua.create_table()?;
        for (k, v) in params {
            p.set(k.as_str(), json(lua, v)?)?;
        }
        g.set("params", p)?;
        Ok(())
    })()
    .map_err(fail)?;
    // The run's tables are built outside the budget; the script's own work is within it.
    let r: mlua::MultiValue = sb.call(&f, ()).map_err(fail)?;
    let mut it = r.into_iter();
    let first = it.next().unwrap_or(Value::Nil);
    let (pass, message, value, bound) = match first {
        Value::Table(t) => (
            t.get::<Value>("pass").map_err(fail)?,
            t.get::<Value>("message").map_err(fail)?,
            t.get::<Value>("value").map_err(fail)?,
            t.get::<Value>("bound").map_err(fail)?,
        ),
        other => (
            other,
            it.next().unwrap_or(Value::Nil),
            it.next().unwrap_or(Value::Nil),
            Value::Nil,
        ),
    };
    let Value::Boolean(pass) = pass else {
        return Err(format!(
            "{name}: the check returned {} for `pass`: return {{ pass = true|false, message = \"...\", value = ... }}",
            pass.type_name()
        ));
    };
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::Nil => None,
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Number(x) => Some(crate::checks::num(*x)),
            other => other.to_string().ok(),
        }
    };
    Ok(Outcome {
        pass,
        message: text(&message).unwrap_or_default(),
        value: text(&value),
        bound: text(&bound),
    })
}

fn json(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(a) => {
            let t = lua.create_table()?;
            for (i, x) in a.iter().enumerate() {
                t.set(i + 1, json(lua, x)?)?;
            }
            Value::Table(t)
        }
        J::Object(o) => {
            let t = lua.create_table()?;
            for (k, x) in o {
                t.set(k.as_str(), json(lua, x)?)?;
            }
            Value::Table(t)
        }
    })
}

/// `samples[i]`: t, offered_qps, sent, completed, dropped, errors,
/// latency_ms {p50, p90, p99, p999, max}, replicas {spec, current, ready, desired}.
fn samples(lua: &Lua, run: &RunData) -> mlua::Result<Table> {
    let all = lua.create_table()?;
    for (i, s) in run.samples.iter().enumerate() {
        let t = lua.create_table()?;
        t.set("t", s.t)?;
        t.set("offered_qps", s.offered_qps)?;
        t.set("sent", s.sent)?;
        t.set("completed", s.completed)?;
        t.set("dropped", s.dropped)?;
        t.set("errors", s.status.errors())?;
        let l = lua.create_table()?;
        l.set("p50", s.latency_ms.p50)?;
        l.set("p90", s.latency_ms.p90)?;
        l.set("p99", s.latency_ms.p99)?;
        l.set("p999", s.latency_ms.p999)?;
        l.set("max", s.latency_ms.max)?;
        t.set("latency_ms", l)?;
        let r = lua.create_table()?;
        r.set("spec", s.replicas.spec)?;
        r.set("current", s.replicas.current)?;
        r.set("ready", s.replicas.ready)?;
        r.set("desired", s.replicas.desired)?;
        t.set("replicas", r)?;
        all.set(i + 1, t)?;
    }
    Ok(all)
}

/// `events[i]`: t, type, reason, object, source, message, from, to, and
/// `rescale` (a rescale of the scale target, as the built-in checks count them).
fn events(lua: &Lua, run: &RunData) -> mlua::Result<Table> {
    let all = lua.create_table()?;
    for (i, e) in run.events.iter().enumerate() {
        let t = lua.create_table()?;
        t.set("t", e.t)?;
        t.set("type", e.type_.as_str())?;
        t.set("reason", e.reason.as_str())?;
        t.set("object", e.object.as_str())?;
        t.set("source", e.source.as_str())?;
        t.set("message", e.message.as_str())?;
        t.set("from", e.from_replicas)?;
        t.set("to", e.to_replicas)?;
        t.set("rescale", run.is_target_rescale(e))?;
        all.set(i + 1, t)?;
    }
    Ok(all)
}

/// `meta`: duration, load_stop, interval (seconds), min, max, scaler, backend.
fn meta(lua: &Lua, run: &RunData) -> mlua::Result<Table> {
    let m = &run.meta;
    let t = lua.create_table()?;
    t.set("duration", m.duration_s)?;
    t.set("load_stop", m.load_stop_s)?;
    t.set("interval", m.interval_s)?;
    t.set("min", m.min_replicas)?;
    t.set("max", m.max_replicas)?;
    t.set("scaler", m.hpa_name.as_str())?;
    t.set("backend", m.backend.as_str())?;
    Ok(t)
}
