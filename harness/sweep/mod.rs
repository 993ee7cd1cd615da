//! `sweep`: the scenario on the sim backend once per value (or combination
//! of values) of one or more settings, a table of what changed, and one
//! page that compares the runs. Every variant is decoded and validated
//! before the first run, so a bad value fails fast with exit code 2.

pub mod set;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::InputError;
use crate::manifests::Manifests;
use crate::prepared::Prepared;
use crate::report::sweep::{self as page, SweepRun};
use crate::run;
use crate::scenario::{self, Loaded};
use set::{Setting, Target};

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: PathBuf,
    /// `--set` arguments as typed.
    pub sets: Vec<String>,
    pub seed: u64,
    pub out: Option<PathBuf>,
    /// Runs at once (default: the machine's cores).
    pub jobs: Option<usize>,
}

pub struct Outcome {
    pub dir: PathBuf,
    pub rows: Vec<page::Row>,
    pub table: String,
}

/// One point of the grid, ready to run.
struct Variant {
    values: Vec<String>,
    prepared: Prepared,
}

pub fn sweep(opts: &Options) -> Result<Outcome> {
    let prepared = Prepared::load(&opts.scenario)?;
    let (base, manifests) = (&prepared.loaded, &prepared.manifests);
    let bad = |msg: String| InputError::new(&base.path, msg).field("--set");
    if opts.sets.is_empty() {
        return Err(bad(format!("give at least one --set {}", set::SYNTAX)).into());
    }
    let settings = opts
        .sets
        .iter()
        .map(|a| set::parse(a).map_err(&bad))
        .collect::<Result<Vec<_>, _>>()?;
    let targets = settings
        .iter()
        .map(|s| resolve(base, manifests, s))
        .collect::<Result<Vec<_>, _>>()?;
    let grid = set::grid(&settings).map_err(bad)?;
    let variants = grid
        .into_iter()
        .map(|values| variant(base, manifests, &settings, &targets, values))
        .collect::<Result<Vec<_>, _>>()?;

    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| crate::run::out_dir::default_dir("sweep-", &base.name()));
    // Held until every run is written.
    let _claim = crate::run::out_dir::claim(&dir, false)?;
    let names: Vec<String> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| run_dir_name(i, &settings, &v.values))
        .collect();
    let jobs = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, variants.len().max(1));
    let results = run_all(&variants, &names, &dir, opts.seed, jobs);

    let mut runs = Vec::with_capacity(variants.len());
    for ((v, name), r) in variants.iter().zip(&names).zip(results) {
        let (data, verdict) = r.with_context(|| format!("sweep run {name}"))?;
        runs.push(SweepRun {
            values: v.values.clone(),
            dir_name: name.clone(),
            run: data,
            verdict,
        });
    }
    let keys: Vec<String> = settings.iter().map(|s| s.key.clone()).collect();
    let info = page::Info {
        scenario: base.name(),
        scenario_path: base.path.display().to_string(),
        keys: keys.clone(),
        seed: opts.seed,
    };
    let rows: Vec<page::Row> = runs.iter().map(page::row).collect();
    std::fs::write(dir.join("index.html"), page::render(&info, &runs, &rows)?)
        .with_context(|| format!("cannot write {}", dir.join("index.html").display()))?;
    std::fs::write(dir.join("sweep.json"), page::json(&info, &runs, &rows)?)?;
    std::fs::write(dir.join("sweep.csv"), page::csv(&keys, &rows))?;
    Ok(Outcome {
        table: page::table(&keys, &rows),
        dir,
        rows,
    })
}

/// Where a setting writes: the scenario (None) or a manifest item index.
fn resolve(base: &Loaded, m: &Manifests, s: &Setting) -> Result<Option<usize>, InputError> {
    let Target::Object { kind, name } = &s.target else {
        return Ok(None);
    };
    let bad = |msg: String| InputError::new(&base.path, msg).field(format!("--set {}", s.key));
    let name = match name {
        Some(n) => n.clone(),
        None => match *kind {
            "HorizontalPodAutoscaler" => m
                .hpa(&base.path, base.scenario.target.hpa.as_deref())?
                .metadata
                .name
                .clone()
                .unwrap_or_default(),
            "Deployment" => {
                let hpa = m.hpa(&base.path, base.scenario.target.hpa.as_deref())?;
                hpa.spec
                    .as_ref()
                    .map(|s| s.scale_target_ref.name.clone())
                    .unwrap_or_default()
            }
            "HTTPRoute" => base.scenario.target.route.clone(),
            _ => {
                let all: Vec<String> = m
                    .items
                    .iter()
                    .filter(|i| i.kind() == *kind)
                    .map(|i| i.name())
                    .collect();
                match all.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(bad(format!(
                            "the manifests hold {} {kind} objects ({}); name one as {kind}/NAME:",
                            all.len(),
                            all.join(", ")
                        )))
                    }
                }
            }
        },
    };
    m.items
        .iter()
        .position(|i| i.kind() == *kind && i.name() == name)
        .map(Some)
        .ok_or_else(|| {
            let have: Vec<String> = m
                .items
                .iter()
                .map(|i| format!("{}/{}", i.kind(), i.name()))
                .collect();
            bad(format!(
                "no {kind} named `{name}` in the manifests (found: {})",
                have.join(", ")
            ))
        })
}

/// The scenario and manifests with one grid point's values written in,
/// decoded and validated as files are.
fn variant(
    base: &Loaded,
    manifests: &Manifests,
    settings: &[Setting],
    targets: &[Option<usize>],
    values: Vec<String>,
) -> Result<Variant, InputError> {
    let fail = |s: &Setting, v: &str, e: String| {
        InputError::new(&base.path, format!("value `{v}`: {e}")).field(format!("--set {}", s.key))
    };
    let decode_err = |e: InputError| match e.field {
        Some(f) => format!("{f}: {}", e.message),
        None => e.message,
    };
    let parse_yaml = |text: &str| -> serde_norway::Value {
        serde_norway::from_str(text).expect("the text was decoded before")
    };

    let mut scen = parse_yaml(&base.text);
    let mut docs: Vec<Option<serde_norway::Value>> = vec![None; manifests.items.len()];
    for ((s, t), v) in settings.iter().zip(targets).zip(&values) {
        let tree = match t {
            None => &mut scen,
            Some(i) => docs[*i].get_or_insert_with(|| parse_yaml(&manifests.items[*i].text)),
        };
        let old = set::get(tree, &s.path).cloned();
        set::set(tree, &s.path, set::value(v, old.as_ref())).map_err(|e| fail(s, v, e))?;
    }
    let dump =
        |v: &serde_norway::Value| serde_norway::to_string(v).expect("a YAML tree serializes");

    let first_scen = settings.iter().zip(targets).find(|(_, t)| t.is_none());
    let loaded = match first_scen {
        None => base.clone(),
        Some((s, _)) => scenario::parse(base.path.clone(), dump(&scen))
            .map_err(|e| fail(s, &values.join(","), decode_err(e)))?,
    };
    let mut m = manifests.clone();
    for (i, doc) in docs.iter().enumerate() {
        let Some(doc) = doc else { continue };
        let (s, v) = settings
            .iter()
            .zip(targets)
            .zip(&values)
            .find(|((_, t), _)| **t == Some(i))
            .map(|((s, _), v)| (s, v))
            .expect("edited documents come from settings");
        m.replace(i, &dump(doc))
            .map_err(|e| fail(s, v, decode_err(e)))?;
        // Kubernetes types ignore fields they do not know; a sweep over a
        // misspelt field would silently run the same scenario N times.
        let json = m.items[i].object.to_json();
        for ((s, t), v) in settings.iter().zip(targets).zip(&values) {
            if *t == Some(i) && set::get_json(&json, &s.path).is_none() {
                return Err(fail(
                    s,
                    v,
                    format!(
                        "{} {} has no field `{}` (check the spelling against the API reference)",
                        m.items[i].kind(),
                        m.items[i].name(),
                        set::display(&s.path)
                    ),
                ));
            }
        }
    }
    let prepared = Prepared::new(loaded, m).map_err(|e| {
        let s = &settings[0];
        fail(s, &values.join(","), decode_err(e))
    })?;
    Ok(Variant { values, prepared })
}

/// `03-maxReplicas=5`: the index keeps the order, the rest says what it is.
fn run_dir_name(i: usize, settings: &[Setting], values: &[String]) -> String {
    let label: Vec<String> = settings
        .iter()
        .zip(values)
        .map(|(s, v)| {
            let field = match s.path.last() {
                Some(set::Seg::Key(k)) => k.clone(),
                _ => set::display(&s.path),
            };
            format!("{field}={v}")
        })
        .collect();
    let clean: String = label
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{:02}-{}",
        i + 1,
        clean.chars().take(80).collect::<String>()
    )
}

type RunResult = Result<(crate::recorder::RunData, crate::checks::Verdict)>;

/// Runs the variants on `jobs` threads; results come back in grid order.
fn run_all(
    variants: &[Variant],
    names: &[String],
    dir: &Path,
    seed: u64,
    jobs: usize,
) -> Vec<RunResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<RunResult>>> =
        variants.iter().map(|_| Default::default()).collect();
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(v) = variants.get(i) else { break };
                let r = run::record_sim(
                    &v.prepared,
                    seed,
                    &dir.join(&names[i]),
                    crate::progress::Progress::silent(),
                );
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(anyhow::anyhow!("the run did not finish")))
        })
        .collect()
}
