//! `--set [OBJECT:]PATH=VALUES`: what a sweep varies, and how one value is
//! written into the scenario or a manifest. Edits are made on the YAML
//! tree before decoding, so every variant goes through the same decoding
//! and validation as a file a user wrote.

use serde_norway::Value;

/// Where a setting applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The scenario file itself (`load.stages[0].ramp_to`).
    Scenario,
    /// A manifest object by canonical kind, and by name when given
    /// (`hpa:`, `deployment:`, `service:`, `route:`, or `Kind/name:`).
    Object {
        kind: &'static str,
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// One `--set`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// `OBJECT:PATH` as typed, for labels and messages.
    pub key: String,
    pub target: Target,
    pub path: Vec<Seg>,
    /// The values in order, as typed (one run each).
    pub values: Vec<String>,
}

pub const SYNTAX: &str = "[OBJECT:]PATH=V1,V2,... or PATH=FROM..TO[/STEP], where OBJECT is \
hpa, deployment, service, route, cronhpa or Kind/name, and PATH is dotted with [i] for list items, \
e.g. hpa:spec.maxReplicas=3,4,5 or load.stages[0].ramp_to=80..120/10";

/// Most runs one sweep may ask for: each writes a full run directory.
pub const MAX_VALUES: usize = 1000;

fn canonical_kind(k: &str) -> Option<&'static str> {
    Some(match k.to_ascii_lowercase().as_str() {
        "hpa" | "horizontalpodautoscaler" => "HorizontalPodAutoscaler",
        "deploy" | "deployment" => "Deployment",
        "svc" | "service" => "Service",
        "route" | "httproute" => "HTTPRoute",
        "cronhpa" | "cronhorizontalpodautoscaler" => crate::cronhpa::object::KIND,
        _ => return None,
    })
}

/// Parses one `--set` argument.
pub fn parse(arg: &str) -> Result<Setting, String> {
    let (key, values) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` has no `=`; expected {SYNTAX}"))?;
    let key = key.trim();
    let (target, path) = match key.split_once(':') {
        Some((obj, path)) => {
            let (kind, name) = match obj.split_once('/') {
                Some((k, n)) if !n.is_empty() => (k, Some(n.to_string())),
                Some(_) => return Err(format!("`{obj}`: the name after `/` is empty")),
                None => (obj, None),
            };
            let kind = canonical_kind(kind).ok_or_else(|| {
                format!(
                    "`{obj}` is not an object kind; use hpa, deployment, service, route, cronhpa \
                     (or HorizontalPodAutoscaler, Deployment, Service, HTTPRoute, \
                     CronHorizontalPodAutoscaler), optionally /name"
                )
            })?;
            (Target::Object { kind, name }, path)
        }
        None => (Target::Scenario, key),
    };
    let path = parse_path(path).map_err(|e| format!("`{key}`: {e}"))?;
    let values = parse_values(values).map_err(|e| format!("`{key}`: {e}"))?;
    Ok(Setting {
        key: key.to_string(),
        target,
        path,
        values,
    })
}

fn parse_path(p: &str) -> Result<Vec<Seg>, String> {
    if p.is_empty() {
        return Err("the field path is empty".into());
    }
    let mut out = Vec::new();
    for part in p.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && out.is_empty() && rest.is_empty() {
            return Err(format!("empty segment in `{p}`"));
        }
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        } else if rest.is_empty() {
            return Err(format!("empty segment in `{p}`"));
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .filter(|_| rest.starts_with('['))
                .ok_or_else(|| format!("`{part}`: expected `[index]`"))?;
            let i: usize = rest[1..close]
                .parse()
                .map_err(|_| format!("`{part}`: `{}` is not a list index", &rest[1..close]))?;
            out.push(Seg::Index(i));
            rest = &rest[close + 1..];
        }
    }
    Ok(out)
}

fn parse_values(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("a value is empty (values are separated by commas)".into());
        }
        match range(item)? {
            Some(r) => out.extend(r),
            None => out.push(item.to_string()),
        }
        if out.len() > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
    }
    Ok(out)
}

/// `FROM..TO` (step 1) or `FROM..TO/STEP`, inclusive; `None` if `s` is not a range.
fn range(s: &str) -> Result<Option<Vec<String>>, String> {
    let Some((from, rest)) = s.split_once("..") else {
        return Ok(None);
    };
    let (to, step) = match rest.split_once('/') {
        Some((t, st)) => (t, Some(st)),
        None => (rest, None),
    };
    let num = |x: &str| -> Result<f64, String> {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{s}`: `{x}` is not a number (ranges are FROM..TO[/STEP])"))
    };
    let (a, b) = (num(from)?, num(to)?);
    let st = step.map(num).transpose()?.unwrap_or(1.0);
    if st <= 0.0 {
        return Err(format!("`{s}`: the step must be more than 0"));
    }
    if b < a {
        return Err(format!("`{s}`: TO is below FROM"));
    }
    let n = ((b - a) / st + 1e-9).floor() as usize + 1;
    if n > MAX_VALUES {
        return Err(format!("`{s}` has {n} values, more than {MAX_VALUES}"));
    }
    // Print integers as integers so `3..5` writes `3`, not `3.0`.
    let integral = [from, to, step.unwrap_or("1")]
        .iter()
        .all(|x| x.trim().parse::<i64>().is_ok());
    Ok(Some(
        (0..n)
            .map(|k| {
                let v = a + st * k as f64;
                if integral {
                    format!("{}", v.round() as i64)
                } else {
                    // Trim float noise such as 0.30000000000000004.
                    format!("{}", (v * 1e9).round() / 1e9)
                }
            })
            .collect(),
    ))
}

/// The YAML value for `raw` where `old` was: a string field stays a
/// string (`averageValue: "10"` is a quantity), otherwise YAML decides.
pub fn value(raw: &str, old: Option<&Value>) -> Value {
    if matches!(old, Some(Value::String(_))) {
        return Value::String(raw.to_string());
    }
    serde_norway::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

pub fn display(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at `path`, if there is one.
pub fn get<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, seg| match (seg, v) {
        (Seg::Key(k), Value::Mapping(m)) => m.get(k.as_str()),
        (Seg::Index(i), Value::Sequence(s)) => s.get(*i),
        _ => None,
    })
}

/// The same lookup in a JSON tree (objects serialized from their types).
pub fn get_json<'a>(root: &'a serde_json::Value, path: &[Seg]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

/// Writes `v` at `path`, creating missing mapping keys on the way (so a
/// sweep can set `spec.behavior.scaleDown.stabilizationWindowSeconds` on an
/// HPA without `behavior`). List items must exist.
pub fn set(root: &mut Value, path: &[Seg], v: Value) -> Result<(), String> {
    let mut cur = root;
    for (k, seg) in path.iter().enumerate() {
        let here = display(&path[..k]);
        let at = if here.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{here}`")
        };
        if cur.is_null() {
            *cur = match seg {
                Seg::Key(_) => Value::Mapping(Default::default()),
                Seg::Index(_) => return Err(format!("{at} is not a list")),
            };
        }
        cur = match (seg, cur) {
            (Seg::Key(key), Value::Mapping(m)) => {
                let key = Value::String(key.clone());
                if !m.contains_key(&key) {
                    m.insert(key.clone(), Value::Null);
                }
                m.get_mut(&key).expect("inserted above")
            }
            (Seg::Index(i), Value::Sequence(s)) => {
                let n = s.len();
                s.get_mut(*i)
                    .ok_or_else(|| format!("{at} has {n} items; index {i} is out of range"))?
            }
            (Seg::Key(key), _) => {
                return Err(format!("{at} is not a mapping, so it has no field `{key}`"))
            }
            (Seg::Index(_), _) => return Err(format!("{at} is not a list")),
        };
    }
    *cur = v;
    Ok(())
}

/// Every combination of the settings' values (the first setting varies
/// slowest), each as one value per setting.
pub fn grid(settings: &[Setting]) -> Result<Vec<Vec<String>>, String> {
    let total = settings
        .iter()
        .try_fold(1usize, |n, s| n.checked_mul(s.values.len()))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| format!("the settings combine to more than {MAX_VALUES} runs"))?;
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; settings.len()];
    for _ in 0..total {
        out.push(
            settings
                .iter()
                .zip(&idx)
                .map(|(s, &i)| s.values[i].clone())
                .collect(),
        );
        for k in (0..settings.len()).rev() {
            idx[k] += 1;
            if idx[k] < settings[k].values.len() {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_paths_and_values() {
        let s = parse("hpa:spec.metrics[1].pods.target.averageValue=10,20").unwrap();
        assert_eq!(
            s.target,
            Target::Object {
                kind: "HorizontalPodAutoscaler",
                name: None
            }
        );
        assert_eq!(
            s.path,
            vec![
                Seg::Key("spec".into()),
                Seg::Key("metrics".into()),
                Seg::Index(1),
                Seg::Key("pods".into()),
                Seg::Key("target".into()),
                Seg::Key("averageValue".into()),
            ]
        );
        assert_eq!(s.values, ["10", "20"]);
        assert_eq!(display(&s.path), "spec.metrics[1].pods.target.averageValue");

        let s = parse("Deployment/httpbin-deploy:spec.replicas=1").unwrap();
        assert_eq!(
            s.target,
            Target::Object {
                kind: "Deployment",
                name: Some("httpbin-deploy".into())
            }
        );
        let s = parse("load.stages[0].ramp_to=80..120/20").unwrap();
        assert_eq!(s.target, Target::Scenario);
        assert_eq!(s.values, ["80", "100", "120"]);
        assert_eq!(parse("x=3..5").unwrap().values, ["3", "4", "5"]);
        assert_eq!(
            parse("x=0.1..0.3/0.1").unwrap().values,
            ["0.1", "0.2", "0.3"]
        );
        assert_eq!(parse("x=30s,5m").unwrap().values, ["30s", "5m"]);
    }

    #[test]
    fn rejects_malformed_settings() {
        for (arg, needle) in [
            ("hpa:spec.maxReplicas", "no `=`"),
            ("pod:spec.x=1", "not an object kind"),
            ("hpa:=1", "path is empty"),
            ("hpa:spec.metrics[x]=1", "not a list index"),
            ("x=1,,2", "empty"),
            ("x=5..3", "TO is below FROM"),
            ("x=1..9/0", "more than 0"),
            ("x=0..5000", "more than 1000"),
        ] {
            let e = parse(arg).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }

    #[test]
    fn set_creates_keys_keeps_strings_and_checks_lists() {
        let mut v: Value = serde_norway::from_str(
            "spec:\n  maxReplicas: 3\n  metrics:\n  - target: {averageValue: \"10\"}\n",
        )
        .unwrap();
        let p = parse_path("spec.behavior.scaleDown.stabilizationWindowSeconds").unwrap();
        set(&mut v, &p, value("60", None)).unwrap();
        assert_eq!(get(&v, &p), Some(&Value::Number(60.into())));
        let p = parse_path("spec.metrics[0].target.averageValue").unwrap();
        let old = get(&v, &p).cloned();
        set(&mut v, &p, value("20", old.as_ref())).unwrap();
        assert_eq!(get(&v, &p), Some(&Value::String("20".into())));
        let e = set(
            &mut v,
            &parse_path("spec.metrics[3].x").unwrap(),
            Value::Null,
        )
        .unwrap_err();
        assert!(e.contains("has 1 items; index 3"), "{e}");
        let e = set(
            &mut v,
            &parse_path("spec.maxReplicas.x").unwrap(),
            Value::Null,
        )
        .unwrap_err();
        assert!(e.contains("`spec.maxReplicas` is not a mapping"), "{e}");
    }

    #[test]
    fn grid_is_the_cartesian_product_in_order() {
        let a = parse("a=1,2").unwrap();
        let b = parse("b=x,y,z").unwrap();
        let g = grid(&[a, b]).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], ["1", "x"]);
        assert_eq!(g[1], ["1", "y"]);
        assert_eq!(g[3], ["2", "x"]);
        let big = parse("c=1..100").unwrap();
        assert!(grid(&[big.clone(), big]).is_err());
    }
}
