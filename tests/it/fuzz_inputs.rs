//! A fuzz target over the scenario and manifest parsers, on the stable
//! toolchain: proptest mutates the shipped scenarios and manifests (bytes
//! deleted, YAML tokens and extreme values inserted, lines repeated, swapped
//! or re-indented) and runs `validate` in-process on the result. Whatever
//! the input, `validate` returns exit 0 or a clear exit 2, never panics and
//! never takes long.
//!
//! The corpus is kept in the repository: proptest writes the seed of any
//! failing case to `tests/fuzz_inputs.proptest-regressions` and replays it
//! first on every run, and `tests/fixtures/fuzz/` holds inputs worth
//! keeping as files (each replayed by `the_kept_corpus_is_handled`).
//! `PROPTEST_CASES` sets the number of cases (CI: the default below).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autoscale_harness::cli::{self, Cli};
use clap::Parser;
use proptest::prelude::*;

/// What one `validate` may take on a mutated file of a few KiB.
const SLOW: Duration = Duration::from_secs(2);

/// Tokens that YAML, serde and the harness's own checks treat specially.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    "\t",
    "\n",
    "  ",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!binary ",
    "? ",
    "|",
    ">-",
    "---\n",
    "...\n",
    "~",
    "null",
    "\u{feff}",
    "\u{0}",
    "é",
    "-1",
    "0",
    "1e308",
    "-1e308",
    "NaN",
    ".nan",
    ".inf",
    "-.inf",
    "99999999999999999999",
    "0x10",
    "1_000",
    "0.0000001",
    "1ms",
    "0s",
    "-5s",
    "100years",
    "1e12",
    "true",
    "load_stop",
    "%",
    "\\",
    "/",
    "{port}",
    "duration: ",
    "rate: ",
    "ramp_to: ",
    "for: ",
    "over: ",
    "hold: ",
    "expect:\n  - ",
    "maxReplicas: ",
    "minReplicas: ",
    "replicas: ",
    "averageValue: ",
    "cpu: ",
    "memory: ",
    "name: ",
    "kind: ",
    "apiVersion: ",
    "path: ",
    "port: ",
    "selector: ",
    "matchLabels: ",
    "backendRefs: ",
    "hostnames: ",
    "between: [",
    "within: ",
    "to: ",
    "from: ",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    RepeatLine { line: usize },
    SwapLines { a: usize, b: usize },
    Indent { line: usize, by: usize },
    Dedent { line: usize },
    Number { nth: usize, token: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        any::<usize>().prop_map(|line| Mutation::RepeatLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 1usize..9).prop_map(|(line, by)| Mutation::Indent { line, by }),
        any::<usize>().prop_map(|line| Mutation::Dedent { line }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(nth, token)| Mutation::Number { nth, token }),
    ]
}

/// Applies `m` to `text`, at positions taken modulo its length (on char
/// boundaries, so the result stays UTF-8 unless a token makes it odd).
fn apply(text: &str, m: &Mutation) -> String {
    let boundary = |at: usize| {
        let mut i = at % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    match *m {
        Mutation::Delete { at, len } => {
            let a = boundary(at);
            let b = boundary((a + len).min(text.len()));
            format!("{}{}", &text[..a], &text[b.max(a)..])
        }
        Mutation::Insert { at, token } => {
            let a = boundary(at);
            format!("{}{}{}", &text[..a], TOKENS[token], &text[a..])
        }
        Mutation::RepeatLine { line } => {
            let l = lines[line % n];
            lines.insert(line % n, l);
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::Indent { line, by } => {
            let l = line % n;
            let moved = format!("{}{}", " ".repeat(by), lines[l]);
            lines[l] = &moved;
            lines.join("\n")
        }
        Mutation::Dedent { line } => {
            let l = line % n;
            lines[l] = lines[l].trim_start();
            lines.join("\n")
        }
        Mutation::Number { nth, token } => {
            // Replace the nth run of digits with the token.
            let runs: Vec<(usize, usize)> = digit_runs(text);
            if runs.is_empty() {
                return text.to_string();
            }
            let (a, b) = runs[nth % runs.len()];
            format!("{}{}{}", &text[..a], TOKENS[token], &text[b..])
        }
    }
}

fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, text.len()));
    }
    runs
}

/// The shipped scenarios (the kind one needs no cluster to validate).
fn seeds() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Runs `validate FILE` in-process: its exit code, and how long it took.
fn validate(file: &Path) -> (i32, Duration) {
    let cli = Cli::try_parse_from(["autoscale-harness", "validate", file.to_str().unwrap()])
        .expect("the command line parses");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let code = match rt.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => autoscale_harness::error::exit_code(&e),
    };
    (code, start.elapsed())
}

/// Copies scenario `seed` and its manifests into `dir` (manifests renamed
/// m0.yaml, m1.yaml, ... and the scenario pointing at them); returns the
/// scenario's path and the manifests' paths.
fn copy_case(seed: &Path, dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let text = std::fs::read_to_string(seed).unwrap();
    let base = seed.parent().unwrap();
    let mut out = String::new();
    let mut manifests = Vec::new();
    for line in text.lines() {
        let item = line.trim_start().strip_prefix("- ").map(str::trim);
        match item.filter(|i| i.ends_with(".yaml") && base.join(i).is_file()) {
            Some(rel) => {
                let to = dir.join(format!("m{}.yaml", manifests.len()));
                std::fs::copy(base.join(rel), &to).unwrap();
                out.push_str(&line.replace(rel, to.file_name().unwrap().to_str().unwrap()));
                manifests.push(to);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, out).unwrap();
    (scenario, manifests)
}

/// A case that does not return at all: the process is stopped (a spinning
/// thread would slow every later case), after keeping the input in the
/// corpus so that it is replayed from then on.
const HANG: Duration = Duration::from_secs(20);

fn check(file: &Path, victim: &Path, what: &str) -> Result<(), TestCaseError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let f = file.to_path_buf();
    std::thread::spawn(move || tx.send(validate(&f)));
    let Ok((code, took)) = rx.recv_timeout(HANG) else {
        let keep = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/found")
            .join(format!("hang-{}.txt", std::process::id()));
        std::fs::create_dir_all(keep.parent().unwrap()).ok();
        std::fs::write(&keep, std::fs::read(victim).unwrap_or_default()).ok();
        eprintln!(
            "{what}: validate did not return in {HANG:?}; input kept in {}",
            keep.display()
        );
        std::process::abort();
    };
    prop_assert!(
        code == 0 || code == 2,
        "{what}: validate exited {code}, not 0 or 2"
    );
    prop_assert!(took < SLOW, "{what}: validate took {took:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // The default's environment override does not apply to a set value.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4000),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    /// A panic fails the case too: proptest catches it and shrinks.
    #[test]
    fn validate_never_panics_hangs_or_misreports(
        seed in 0usize..64,
        target in 0usize..8,
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
    let _g = crate::common::shared();
        let seeds = seeds();
        let seed = &seeds[seed % seeds.len()];
        let dir = tempfile::tempdir().unwrap();
        let (scenario, manifests) = copy_case(seed, dir.path());
        // The scenario or one of its manifests.
        let victim = match target % (manifests.len() + 1) {
            0 => scenario.clone(),
            i => manifests[i - 1].clone(),
        };
        let mut text = std::fs::read_to_string(&victim).unwrap();
        for m in &muts {
            text = apply(&text, m);
        }
        std::fs::write(&victim, &text).unwrap();
        check(&scenario, &victim, &format!("{} mutated by {muts:?}", seed.display()))?;
    }
}

/// Every file kept in tests/fixtures/fuzz/ (found by this target, or
/// written by hand) is handled: exit 0 or 2, quickly.
#[test]
fn the_kept_corpus_is_handled() {
    let _g = crate::common::shared();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let (code, took) = validate(&p);
            assert!(code == 0 || code == 2, "{}: exit {code}", p.display());
            assert!(took < SLOW, "{}: {took:?}", p.display());
            n += 1;
        }
    }
    assert!(n > 0, "the corpus is empty");
}
