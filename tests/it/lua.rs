//! Lua policies and checks (issue 15) on the sim backend: seed 003's
//! script scales the paper's ramp, its events and log lines are recorded,
//! the Lua checks appear in the verdict like the built-in ones, a failing
//! script holds the size with a warning naming its file and line, and the
//! kube backend takes a Lua policy (it runs it itself: tests/it/kube_fake.rs).

use crate::common::{self, show, sizes};

use autoscale_harness::recorder::load_run;

#[test]
fn seed_003_policy_scales_the_paper_ramp_on_sim() {
    let _g = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let o = common::sim_run("lua-cpu", 1, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let run = load_run(dir.path()).unwrap();
    assert_eq!(run.meta.hpa_name, "lua:../policies/cpu.lua");
    assert_eq!((run.meta.min_replicas, run.meta.max_replicas), (2, 10));
    let s = sizes(&run);
    assert_eq!(
        s.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![3, 2],
        "{s:?}"
    );
    let up = run.events.iter().find(|e| e.is_rescale()).unwrap();
    assert_eq!(up.object, "Deployment/httpbin-deploy");
    assert_eq!(up.source, "lua-policy");
    assert!(
        up.message
            .starts_with("New size: 3; reason: Scaled up instances due to high CPU usage: 8"),
        "{}",
        up.message
    );
    let summary = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(summary.contains("lua ../checks/no_flap.lua"), "{summary}");
    assert!(summary.contains("lua ../checks/slo.lua"), "{summary}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("lua ../checks/no_flap.lua"), "{junit}");
}

/// A scenario next to the shipped ones (manifests and scripts by absolute path).
fn scenario(dir: &std::path::Path, policy: &str, expect: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(dir.join("p.lua"), policy).unwrap();
    let p = dir.join("s.yaml");
    std::fs::write(
        &p,
        format!(
            "name: lua-test\nduration: 3m\nmanifests:\n  - {root}/manifests/httpbin.yaml\n  - {root}/manifests/httproute.yaml\n\
             target:\n  route: httpbin\n  replicas: 2\n  autoscaler: {{ lua: p.lua, min: 1, max: 5 }}\n\
             load:\n  request: {{ path: /get }}\n  stages:\n    - {{ rate: 60, for: 3m }}\n{expect}"
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn a_failing_policy_holds_with_a_warning_and_the_run_goes_on() {
    let _g = common::shared();
    let dir = tempfile::tempdir().unwrap();
    // Fails from its third call on (in the run, after warm-up): a number compared with nil on line 4.
    let src = "state.calls = (state.calls or 0) + 1\nlocal x = nil\nif now() > 40 then\n  if x > 1 then scale_up_instances() end\nend\n";
    let s = scenario(
        dir.path(),
        src,
        "expect:\n  - max_replicas: 2\n  - min_replicas: 2\n",
    );
    let out = dir.path().join("run");
    let o = common::harness([
        "experiment",
        &s,
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let run = load_run(&out).unwrap();
    let warn: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.reason == "FailedPolicy")
        .collect();
    assert!(!warn.is_empty());
    assert_eq!(warn[0].type_, "Warning");
    assert_eq!(
        warn[0].message,
        "p.lua:4: attempt to compare number with nil; holding at 2"
    );
    assert_eq!(run.samples.len(), 180, "the run went on to its end");
}

#[test]
fn sandbox_escapes_are_refused_at_each_call_and_the_run_goes_on() {
    let _g = common::shared();
    for (src, want) in [
        (
            "io.open('/etc/passwd')",
            "p.lua:1: attempt to index a nil value (global 'io')",
        ),
        (
            "os.execute('touch /tmp/pwned')",
            "p.lua:1: attempt to index a nil value (global 'os')",
        ),
        (
            "require('io')",
            "p.lua:1: attempt to call a nil value (global 'require')",
        ),
        (
            "load('return 1')()",
            "p.lua:1: attempt to call a nil value (global 'load')",
        ),
        (
            "local s = string.rep('x', 1 << 30)",
            "p.lua: memory limit of 16 MiB exceeded",
        ),
        (
            "while true do end",
            "p.lua:1: instruction budget of 1000000 exceeded (an endless loop?)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path(), src, "");
        let out = dir.path().join("run");
        let o = common::harness([
            "experiment",
            &s,
            "--backend",
            "sim",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{src}: {}", show(&o));
        let run = load_run(&out).unwrap();
        assert_eq!(run.samples.len(), 180, "{src}: the run went on to its end");
        let warn: Vec<_> = run
            .events
            .iter()
            .filter(|e| e.reason == "FailedPolicy" && e.t >= 0.0)
            .collect();
        // One a call: every 15 s of the 3 minutes.
        assert!(warn.len() >= 11, "{src}: {warn:?}");
        assert_eq!(warn[0].message, format!("{want}; holding at 2"), "{src}");
        assert!(run.samples.iter().all(|s| s.replicas.spec == 2), "{src}");
    }
}

#[test]
fn lua_checks_fail_with_their_message_and_errors_are_not_evaluated() {
    let _g = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(dir.path().join("bad.lua"), "local n = nil\nreturn n + 1\n").unwrap();
    std::fs::write(
        dir.path().join("low.lua"),
        "local peak = 0\nfor _, s in ipairs(samples) do peak = math.max(peak, s.replicas.spec) end\nreturn { pass = peak >= params.want, bound = 'peak >= ' .. params.want, value = peak, message = 'peak replicas' }\n",
    )
    .unwrap();
    let s = scenario(
        dir.path(),
        "scale_up_instances(0)",
        &format!(
            "expect:\n  - lua: {{ script: low.lua, params: {{ want: 3 }} }}\n  - lua: bad.lua\n  - lua: {root}/checks/no_flap.lua\n"
        ),
    );
    let out = dir.path().join("run");
    let o = common::harness([
        "experiment",
        &s,
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let text = summary.to_string();
    assert!(text.contains("peak >= 3"), "{text}");
    assert!(text.contains("2: peak replicas"), "{text}");
    assert!(
        text.contains("bad.lua:2: attempt to perform arithmetic on a nil value (local 'n')"),
        "{text}"
    );
    assert!(text.contains("no scale-in after a scale-out"), "{text}");
}

/// The kube backend no longer refuses a Lua policy: the dry run shows
/// the plan, and a run gets as far as asking for the gateway's address.
#[test]
fn kube_backend_takes_a_lua_policy() {
    let o = common::harness(["experiment", "lua-cpu", "--backend", "kube", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("# not applied: the Lua policy ../policies/cpu.lua (target.autoscaler)"),
        "{out}"
    );
    assert!(!out.contains("HorizontalPodAutoscaler"), "{out}");
    let o = common::harness([
        "experiment",
        "lua-cpu",
        "--backend",
        "kube",
        "--no-progress",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`target.url`") && !err.contains("Lua"),
        "{err}"
    );
}
