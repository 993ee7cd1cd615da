//! Bad input: every error names the file, line and field, and exits with 2.

use std::process::Command;

fn validate(fixture: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", &format!("tests/fixtures/{fixture}")])
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

macro_rules! bad_input {
    ($name:ident, $fixture:expr) => {
        #[test]
        fn $name() {
            let _g = crate::common::shared();
            let (code, stderr) = validate($fixture);
            assert_eq!(code, 2, "bad input must exit 2; stderr: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            insta::assert_snapshot!(stringify!($name), stderr);
        }
    };
}

bad_input!(unknown_field, "unknown-field.yaml");
bad_input!(negative_rate, "negative-rate.yaml");
bad_input!(hpa_max_below_min, "max-below-min.yaml");
bad_input!(unknown_expectation, "bad-expectation.yaml");
bad_input!(stage_missing_over, "stage-missing-over.yaml");
bad_input!(unknown_route, "unknown-route.yaml");
bad_input!(users_with_open_model_request, "users-with-request.yaml");
bad_input!(zero_connections, "zero-connections.yaml");
bad_input!(hpa_empty_policies, "empty-policies.yaml");
bad_input!(hpa_negative_tolerance, "negative-tolerance.yaml");

#[test]
fn missing_scenario_file() {
    let _g = crate::common::shared();
    let (code, stderr) = validate("does-not-exist.yaml");
    assert_eq!(code, 2);
    assert!(stderr.contains("scenario file not found"), "{stderr}");
}

#[test]
fn shipped_scenarios_validate() {
    let _g = crate::common::shared();
    for s in ["ramp", "ack-qps.yaml", "scenarios/smoke.yaml", "journey"] {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["validate", s])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn kube_backend_input_mistakes_exit_2_before_any_cluster() {
    let _g = crate::common::shared();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "experiment",
                "smoke",
                "--backend",
                "kube",
                "--out",
                "/tmp/ah-never-used",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // smoke.yaml has no gateway address for a real cluster.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("smoke.yaml")
            && err.contains("`target.url`")
            && err.contains("required for --backend kube"),
        "{err}"
    );
    let out = run(&["--speed", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a real cluster runs in real time"));
}
