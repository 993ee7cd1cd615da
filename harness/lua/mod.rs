//! Lua in the harness (seed 003): scaling policies (`policy`) that run as
//! a scaler on the embedded cluster, or with the harness as the autoscaler
//! of a real one (`backend::kube`), and checks over a recorded run
//! (`check`), both in a sandbox (`sandbox`). `ledger` keeps what the load
//! engine saw for a policy's latency and error-rate questions.

pub(crate) mod check;
pub(crate) mod ledger;
pub(crate) mod policy;
pub(crate) mod sandbox;

use std::path::Path;
use std::time::Duration;

/// `target.autoscaler` resolved: the script and its bounds.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The path as the scenario gives it: errors and events name it.
    pub name: String,
    pub source: String,
    pub interval: Duration,
    pub min: i32,
    pub max: i32,
}

impl Policy {
    /// How run.json and the report name it, in place of an HPA's name.
    pub fn display(&self) -> String {
        format!("lua:{}", self.name)
    }
}

/// Compiles a script without running it: `Err((line, message))` with the
/// message as `file:line: ...` (the `validate` command's check).
pub(crate) fn compile_check(name: &str, source: &str) -> Result<(), (Option<usize>, String)> {
    let sb = sandbox::Sandbox::new(0).map_err(|e| (None, e.to_string()))?;
    sb.compile(name, source).map(|_| ()).map_err(|e| {
        let m = sandbox::describe(&e, name);
        (sandbox::line_of(&m, name), m)
    })
}

/// Reads a script given relative to the scenario file.
pub(crate) fn read(scenario: &Path, rel: &str) -> std::io::Result<String> {
    let base = scenario.parent().unwrap_or(Path::new("."));
    std::fs::read_to_string(base.join(rel))
}

/// Mean wall time of one policy call in microseconds, over `n` calls of
/// `source` with fixed metrics (the `lua` benchmark; not a test).
#[doc(hidden)]
pub fn bench_policy_call(name: &str, source: &str, n: u32) -> f64 {
    let policy = Policy {
        name: name.into(),
        source: source.into(),
        interval: Duration::from_secs(15),
        min: 1,
        max: 10,
    };
    let mut s = policy::LuaScaler::new(policy, "web".into(), Some(100), None, 1);
    let m = |i: u32| policy::Metrics {
        now: f64::from(i) * 15.0,
        // Alternates between scaling up, holding and scaling down.
        cpu: Some([90.0, 50.0, 10.0][(i % 3) as usize]),
        replicas: 3,
        current: 3,
        ready: 3,
        min: 1,
        max: 10,
        interval: 15.0,
        ..Default::default()
    };
    let _ = s.call(m(0));
    let t = std::time::Instant::now();
    for i in 1..=n {
        let _ = std::hint::black_box(s.call(m(i)));
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}
