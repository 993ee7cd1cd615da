//! The scenario file: which manifests, the local cluster model, the load
//! profile, the expectations and report options. Decoded with serde (unknown
//! fields rejected) and validated; every error names file, line and field.
//!
//! - `schema`: the serde types and their defaults.
//! - `rate`: the stages as a rate curve, and what the load engines take.
//! - `validate`: the checks after decoding.

mod rate;
mod schema;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::InputError;
use crate::yaml;
pub use schema::*;
pub(crate) use validate::{is_loopback, target_url, MAX_PODS};
pub(crate) use validate::{MAX_DURATION, MAX_RATE};

/// `humantime` prints `1m 30s`; we want the compact `1m30s` as kubectl does.
pub fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// A scenario together with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub path: PathBuf,
    pub text: String,
}

impl Loaded {
    pub fn name(&self) -> String {
        self.scenario.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        })
    }

    /// Manifest paths resolved against the scenario's folder.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        self.scenario
            .manifests
            .iter()
            .map(|m| {
                if m.is_absolute() {
                    m.clone()
                } else {
                    base.join(m)
                }
            })
            .collect()
    }

    pub(crate) fn err(&self, field: &str, msg: impl Into<String>) -> InputError {
        InputError::new(&self.path, msg)
            .field(field)
            .at(yaml::nearest_line(&self.text, field), None)
    }
}

/// Finds a scenario: the path as given, else under `scenarios/` (with or without `.yaml`).
pub fn resolve(arg: &Path) -> Result<PathBuf, InputError> {
    // Something there that is not a file (a directory, a symlink loop) is
    // taken as meant, so that reading it says what it is.
    if arg.is_file() || std::fs::symlink_metadata(arg).is_ok() {
        return Ok(arg.to_path_buf());
    }
    let mut tried = vec![arg.to_path_buf()];
    for cand in [
        Path::new("scenarios").join(arg),
        Path::new("scenarios").join(arg).with_extension("yaml"),
    ] {
        if cand.is_file() {
            return Ok(cand);
        }
        tried.push(cand);
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(InputError::new(
        arg,
        format!("scenario file not found (looked for {})", list.join(", ")),
    ))
}

/// Reads, decodes and validates a scenario file.
pub fn load(arg: &Path) -> Result<Loaded, InputError> {
    let path = resolve(arg)?;
    let text = yaml::read(&path, "the scenario")?;
    parse(path, text)
}

/// Decodes and validates scenario text read from `path` (manifest paths
/// resolve against it). `sweep` calls this with edited text.
pub fn parse(path: PathBuf, text: String) -> Result<Loaded, InputError> {
    let text = yaml::strip_bom(text);
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if text.lines().all(blank) {
        return Err(InputError::new(
            &path,
            "the scenario file is empty (or only comments); see docs/scenario.md for its fields",
        ));
    }
    yaml::one_document(&path, &text, "a scenario")?;
    let scenario: Scenario = yaml::from_str(&path, &text)?;
    let loaded = Loaded {
        scenario,
        path,
        text,
    };
    validate::validate(&loaded)?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, InputError> {
        let path = PathBuf::from("t.yaml");
        let scenario: Scenario = yaml::from_str(&path, text)?;
        let l = Loaded {
            scenario,
            path,
            text: text.into(),
        };
        validate::validate(&l)?;
        Ok(l)
    }

    const BASE: &str = "\
duration: 10m
manifests: [a.yaml]
target: { route: httpbin }
load:
  stages:
    - ramp_to: 10
      over: 1m
    - hold: 1m
    - rate: 0
      for: 1m
";

    #[test]
    fn pieces_and_load_stop() {
        let l = parse(BASE).unwrap();
        let p = l.scenario.load.pieces();
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].from, p[0].to), (0.0, 10.0));
        assert_eq!((p[1].start, p[1].end, p[1].from), (60.0, 120.0, 10.0));
        assert_eq!(l.scenario.load.load_stop(), 120.0);
        assert_eq!(l.scenario.load.rate_at(30.0).0, 5.0);
        assert_eq!(l.scenario.load.rate_at(150.0).0, 0.0);
    }

    #[test]
    fn negative_rate_names_field_and_line() {
        let e = parse(&BASE.replace("ramp_to: 10", "ramp_to: -5")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("load.stages[0].ramp_to"));
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("≥ 0"), "{}", e.message);
    }

    #[test]
    fn http_version_is_optional_and_accepts_quoted_or_bare() {
        let with =
            |v: &str| BASE.replace("load:\n", &format!("load:\n  request: {{ http: {v} }}\n"));
        assert_eq!(
            parse(BASE).unwrap().scenario.load.request().http,
            HttpVersion::Http1
        );
        for (v, want) in [
            ("\"2\"", HttpVersion::Http2),
            ("2", HttpVersion::Http2),
            ("\"1.1\"", HttpVersion::Http1),
            ("1.1", HttpVersion::Http1),
        ] {
            assert_eq!(
                parse(&with(v)).unwrap().scenario.load.request().http,
                want,
                "{v}"
            );
        }
        let e = parse(&with("\"3\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("load.request.http"));
        assert!(e.message.contains("expected \"1.1\" or \"2\""), "{e}");
    }

    #[test]
    fn stage_with_missing_key_is_explained() {
        let e = parse(&BASE.replace("      over: 1m\n", "")).unwrap_err();
        assert!(e.message.contains("`ramp_to` needs `over`"), "{e}");
    }

    const USERS: &str = "\
duration: 10m
manifests: [a.yaml]
target: { route: httpbin }
load:
  model: users
  think_time: 1s..3s
  journey:
    - name: home
      path: /get
    - method: POST
      path: /anything/cart
      headers: { content-type: application/json }
      body: '{}'
      timeout: 5s
  stages:
    - ramp_to: 20
      over: 2m
    - hold: 3m
    - ramp_to: 0
      over: 30s
    - hold: 1m
";

    /// The error for `text`, which must fail validation.
    fn error(text: &str) -> InputError {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn users_model_reads_journey_think_time_and_user_stages() {
        let l = parse(USERS).unwrap();
        let load = &l.scenario.load;
        assert!(load.is_users());
        assert_eq!(
            load.think_time,
            Some(ThinkTime {
                min: Duration::from_secs(1),
                max: Duration::from_secs(3)
            })
        );
        assert_eq!(load.journey.len(), 2);
        assert_eq!(load.journey[0].label(), "home");
        assert_eq!(load.journey[1].label(), "POST /anything/cart");
        assert_eq!(load.journey[1].method, "POST");
        // Defaults: GET and 10 s; the longest step bounds the gateway timeout.
        assert_eq!(load.journey[0].method, "GET");
        assert_eq!(load.journey[0].timeout, Duration::from_secs(10));
        assert_eq!(load.timeout(), Duration::from_secs(10));
        // Load stops when the last user has left, not when the stages end.
        assert_eq!(load.load_stop(), 330.0);
        assert_eq!(
            load.rate_at(60.0),
            (10.0, "ramp_to 20 users over 2m".into())
        );
        let plan = l.users_plan();
        assert_eq!(
            plan.iter()
                .map(|p| (p.users, p.over.as_secs()))
                .collect::<Vec<_>>(),
            vec![(20, 120), (20, 180), (0, 30), (0, 60)]
        );
        // A users scenario has no rate curve to hand to the open engine or the sim.
        assert_eq!(
            l.rate_curve().unwrap_err().field.as_deref(),
            Some("load.model")
        );
    }

    #[test]
    fn think_time_is_a_duration_or_a_range() {
        let fixed = parse(&USERS.replace("1s..3s", "2s")).unwrap();
        let t = fixed.scenario.load.think_time.unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
        assert_eq!(String::from(t), "2s");
        let e = error(&USERS.replace("1s..3s", "3s..1s"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("start is above its end"), "{e}");
        let e = error(&USERS.replace("1s..3s", "soon"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("`soon`"), "{e}");
    }

    #[test]
    fn open_model_fields_are_rejected_with_users_and_named() {
        for (field, insert) in [
            ("load.request", "  request: { path: /get }\n"),
            ("load.spacing", "  spacing: poisson\n"),
            ("load.max_in_flight", "  max_in_flight: 10\n"),
            ("load.connections", "  connections: 4\n"),
        ] {
            let e = error(&USERS.replace("  model: users\n", &format!("  model: users\n{insert}")));
            assert_eq!(e.field.as_deref(), Some(field));
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.message.contains("only for `model: open`"), "{e}");
        }
    }

    #[test]
    fn users_fields_are_rejected_with_the_open_model() {
        let e = error(&BASE.replace("load:\n", "load:\n  think_time: 1s\n"));
        assert_eq!(e.field.as_deref(), Some("load.think_time"));
        assert!(e.message.contains("only with `model: users`"), "{e}");
        let e = error(&BASE.replace("load:\n", "load:\n  journey: [{ path: /get }]\n"));
        assert_eq!(e.field.as_deref(), Some("load.journey"));
    }

    #[test]
    fn users_stages_count_whole_users() {
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 2.5"));
        assert_eq!(e.field.as_deref(), Some("load.stages[0].ramp_to"));
        assert_eq!(e.line, Some(16));
        assert!(e.message.contains("whole number"), "{e}");
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 20000"));
        assert!(e.message.contains("10000"), "{e}");
        let e = error(&USERS.replace("    - hold: 3m\n", "    - rate: 5\n      for: 3m\n"));
        assert_eq!(e.field.as_deref(), Some("load.stages[1]"));
        assert!(e.message.contains("`rate` is for the open model"), "{e}");
        let e = error(&USERS.replace("ramp_to: 20", "ramp_to: 0"));
        assert_eq!(e.field.as_deref(), Some("load.stages"));
        assert!(e.message.contains("no stage starts a user"), "{e}");
    }

    #[test]
    fn journey_is_required_and_its_steps_checked() {
        let no_journey = USERS.replace(
            &USERS[USERS.find("  journey:").unwrap()..USERS.find("  stages:").unwrap()],
            "",
        );
        let e = error(&no_journey);
        assert_eq!(e.field.as_deref(), Some("load.journey"));
        assert!(e.message.contains("required with `model: users`"), "{e}");
        for (from, to, field, says) in [
            (
                "path: /get",
                "path: get",
                "load.journey[0].path",
                "must start with `/`",
            ),
            (
                "method: POST",
                "method: OPTIONS",
                "load.journey[1].method",
                "GET, HEAD",
            ),
            (
                "timeout: 5s",
                "timeout: 0s",
                "load.journey[1].timeout",
                "more than 0s",
            ),
            (
                "content-type: application/json",
                "\"content type\": x",
                "load.journey[1].headers",
                "not a header name",
            ),
        ] {
            let e = error(&USERS.replace(from, to));
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        let e = error(&USERS.replace("      path: /get\n", ""));
        assert_eq!(e.field.as_deref(), Some("load.journey[0]"));
        assert!(e.message.contains("missing field `path`"), "{e}");
    }
}
