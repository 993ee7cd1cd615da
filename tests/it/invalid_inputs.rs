//! The malformed-input corpus (tests/fixtures/invalid/, one mistake per
//! file, by category): `validate` refuses each with exit 2, naming the
//! field (or, for file-level mistakes, what is wrong), with a message
//! snapshot per fixture; and `experiment --backend sim` refuses each with
//! exit 2 too, before anything starts, within a time bound (no hang, no
//! abort). Three fixtures too big to keep in the repository are written
//! to a temporary folder by `generated`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fixture (under tests/fixtures/invalid/) → what stderr must name.
const CORPUS: &[(&str, &str)] = &[
    (
        "request/header-name.yaml",
        "`load.request.headers.bad header`",
    ),
    ("request/header-value.yaml", "`load.request.headers.x-run`"),
    ("request/path-space.yaml", "`load.request.path`"),
    ("request/path-relative.yaml", "`load.request.path`"),
    ("request/path-control.yaml", "`load.request.path`"),
    ("request/method.yaml", "`load.request.method`"),
    ("request/journey-path.yaml", "`load.journey[0].path`"),
    ("request/journey-header.yaml", "`load.journey[0].headers`"),
    (
        "request/pod-concurrency-zero.yaml",
        "`local.pods.model.concurrency`",
    ),
    (
        "request/pod-concurrency-huge.yaml",
        "`local.pods.model.concurrency`",
    ),
    (
        "request/pod-service-time-zero.yaml",
        "`local.pods.model.service_time`",
    ),
    (
        "request/pod-memory-huge.yaml",
        "`local.pods.model.memory_base_mib`",
    ),
    (
        "request/pod-startup-after-ready-timeout.yaml",
        "`local.pods.startup_delay`",
    ),
    (
        "request/pod-readiness-path.yaml",
        "`local.pods.readiness_path`",
    ),
    ("request/pod-command-no-port.yaml", "`local.pods.command`"),
    ("request/target-url-scheme.yaml", "`target.url`"),
    ("request/target-url-no-host.yaml", "`target.url`"),
    ("request/target-url-not-absolute.yaml", "`target.url`"),
    ("request/target-url-credentials.yaml", "`target.url`"),
    ("request/target-host.yaml", "`target.host`"),
    ("request/target-replicas-huge.yaml", "`target.replicas`"),
    ("limits/rate-huge.yaml", "`load.stages[0].ramp_to`"),
    ("limits/step-rate-huge.yaml", "`load.stages[0].rate`"),
    ("limits/rate-infinite.yaml", "`load.stages[0].rate`"),
    ("limits/requests-total.yaml", "`load.stages`"),
    ("limits/duration-huge.yaml", "`duration`"),
    ("limits/samples-huge.yaml", "`sample_interval`"),
    ("limits/sample-interval-zero.yaml", "`sample_interval`"),
    ("limits/max-in-flight-huge.yaml", "`load.max_in_flight`"),
    ("limits/connections-huge.yaml", "`load.connections`"),
    ("limits/request-timeout-huge.yaml", "`load.request.timeout`"),
    ("limits/ready-timeout-huge.yaml", "`local.ready_timeout`"),
    (
        "limits/sync-period-huge.yaml",
        "`local.controller.sync_period`",
    ),
    ("limits/users-huge.yaml", "`load.stages[0].ramp_to`"),
    ("limits/deep-block.yaml", "nesting deeper than 64"),
    ("limits/deep-flow-short.yaml", "nesting deeper than 64"),
    (
        "expect/scale-out-window-after-duration.yaml",
        "`expect[0].scale_out.between`",
    ),
    (
        "expect/latency-window-after-duration.yaml",
        "`expect[0].latency.during`",
    ),
    (
        "expect/pod-qps-window-after-duration.yaml",
        "`expect[0].pod_qps.during`",
    ),
    (
        "expect/scale-in-after-beyond.yaml",
        "`expect[0].scale_in.after`",
    ),
    (
        "expect/scale-in-within-beyond.yaml",
        "`expect[0].scale_in.within`",
    ),
    ("expect/min-above-max.yaml", "`expect[1].min_replicas`"),
    (
        "expect/scale-in-below-hpa-min.yaml",
        "`expect[0].scale_in.to`",
    ),
    (
        "expect/scale-out-above-hpa-max.yaml",
        "`expect[0].scale_out.to`",
    ),
    (
        "expect/scale-out-above-max-expectation.yaml",
        "`expect[1].scale_out.to`",
    ),
    (
        "expect/min-replicas-above-hpa-max.yaml",
        "`expect[0].min_replicas`",
    ),
    (
        "expect/max-replicas-below-hpa-min.yaml",
        "`expect[0].max_replicas`",
    ),
    ("expect/latency-negative.yaml", "`expect[0].latency.below`"),
    ("expect/latency-zero.yaml", "`expect[0].latency.below`"),
    (
        "expect/latency-percentile.yaml",
        "`expect[0].latency.percentile`",
    ),
    (
        "expect/error-ratio-zero.yaml",
        "`expect[0].error_ratio.below`",
    ),
    (
        "expect/offered-qps-above-peak.yaml",
        "`expect[0].scale_out.offered_qps`",
    ),
    (
        "expect/scale-out-from-above-to.yaml",
        "`expect[0].scale_out`",
    ),
    (
        "expect/window-reversed.yaml",
        "`expect[0].scale_out.between`",
    ),
    (
        "expect/scale-in-to-negative.yaml",
        "`expect[0].scale_in.to`",
    ),
    ("manifests/hpa-unknown-field.yaml", "`spec.maxReplica`"),
    (
        "manifests/deployment-unknown-field.yaml",
        "spec.template.spec.containers[0].readinesProbe`",
    ),
    ("manifests/service-unknown-field.yaml", "spec.clusterIp`"),
    ("manifests/route-unknown-field.yaml", "spec.hostname`"),
    ("manifests/metadata-unknown-field.yaml", "metadata.label`"),
    ("manifests/duplicate-key.yaml", "duplicate key"),
    ("manifests/duplicate-label-key.yaml", "duplicate key"),
    ("manifests/duplicate-object.yaml", "a second Service"),
    (
        "manifests/quantity-unparseable.yaml",
        "resources.requests.cpu`",
    ),
    (
        "manifests/quantity-negative.yaml",
        "resources.limits.memory`",
    ),
    (
        "manifests/request-above-limit.yaml",
        "resources.requests.cpu`",
    ),
    ("manifests/name-not-dns.yaml", "metadata.name`"),
    ("manifests/service-name-digit.yaml", "metadata.name`"),
    ("manifests/namespace-not-dns.yaml", "metadata.namespace`"),
    (
        "manifests/container-name-not-dns.yaml",
        "containers[0].name`",
    ),
    (
        "manifests/hpa-target-negative.yaml",
        "spec.metrics[0].pods.target.averageValue`",
    ),
    (
        "manifests/hpa-target-unparseable.yaml",
        "spec.metrics[0].pods.target.averageValue`",
    ),
    ("manifests/hpa-max-huge.yaml", "spec.maxReplicas`"),
    ("manifests/deployment-replicas-huge.yaml", "spec.replicas`"),
    ("manifests/hpa-min-zero.yaml", "spec.minReplicas`"),
    ("manifests/unsupported-kind.yaml", "`kind`"),
    ("manifests/empty-file.yaml", "holds no object"),
    ("manifests/tab-indentation.yaml", "a tab in the indentation"),
    ("manifests/missing-file.yaml", "cannot read the manifest"),
    (
        "routing/service-selects-no-pod.yaml",
        "`Service httpbin-svc: spec.selector`",
    ),
    (
        "routing/service-without-selector.yaml",
        "`Service httpbin-svc: spec.selector`",
    ),
    (
        "routing/service-without-ports.yaml",
        "`Service httpbin-svc: spec.ports`",
    ),
    (
        "routing/route-no-rules.yaml",
        "`HTTPRoute httpbin: spec.rules`",
    ),
    (
        "routing/route-rules-missing.yaml",
        "`HTTPRoute httpbin: spec.rules`",
    ),
    (
        "routing/rule-without-backends.yaml",
        "`HTTPRoute httpbin: spec.rules[0]`",
    ),
    (
        "routing/backend-port-not-on-service.yaml",
        "spec.rules[0].backendRefs[0].port`",
    ),
    (
        "routing/backend-port-missing.yaml",
        "spec.rules[0].backendRefs[0].port`",
    ),
    (
        "routing/backend-unknown-service.yaml",
        "spec.rules[0].backendRefs[0].name`",
    ),
    (
        "routing/backend-kind-pod.yaml",
        "spec.rules[0].backendRefs[0].kind`",
    ),
    (
        "routing/path-regex.yaml",
        "spec.rules[0].matches[0].path.type`",
    ),
    ("routing/rule-filters.yaml", "spec.rules[0].filters`"),
    ("routing/hostname-invalid.yaml", "spec.hostnames[0]`"),
    (
        "routing/gateway-two-deployments.yaml",
        "`Deployment api-gateway-b: spec.template.metadata.labels`",
    ),
    ("routing/gateway-wrong-owner.yaml", "owning-gateway-name`"),
    (
        "routing/gateway-without-service.yaml",
        "no Service selects the gateway's pods",
    ),
    (
        "routing/cronhpa-cron-five-fields.yaml",
        "spec.jobs[0].schedule`: `0 9 * * *` has 5 fields",
    ),
    (
        "routing/cronhpa-cron-hour-25.yaml",
        "spec.jobs[0].schedule`",
    ),
    (
        "routing/cronhpa-cron-quartz-l.yaml",
        "spec.jobs[0].schedule`",
    ),
    ("routing/cronhpa-duplicate-job.yaml", "spec.jobs[1].name`"),
    (
        "routing/cronhpa-exclude-date-bad.yaml",
        "spec.excludeDates[0]`",
    ),
    ("routing/cronhpa-no-jobs.yaml", "spec.jobs`"),
    (
        "routing/cronhpa-target-missing.yaml",
        "spec.scaleTargetRef.name`: no HorizontalPodAutoscaler named `nginx-hpa`",
    ),
    (
        "routing/cronhpa-target-size-zero.yaml",
        "spec.jobs[0].targetSize`",
    ),
    (
        "routing/cronhpa-target-statefulset.yaml",
        "spec.scaleTargetRef.kind`: `StatefulSet`",
    ),
    (
        "routing/cronhpa-unknown-field.yaml",
        "`spec.jobs[0].runonce`",
    ),
    ("routing/clock-start-no-zone.yaml", "`clock.start`"),
    ("routing/clock-start-without-schedule.yaml", "`clock.start`"),
    ("expect/replicas-at-and-during.yaml", "`expect[0].replicas`"),
    (
        "expect/hpa-range-after-duration.yaml",
        "`expect[0].hpa_range.at`",
    ),
    (
        "limits/gateway-cpu-zero.yaml",
        "`local.gateway.model.cpu_per_request`",
    ),
    (
        "lua/policy-syntax.yaml",
        "syntax-error.lua:2: the Lua script does not compile: unexpected symbol near 'then'",
    ),
    (
        "lua/policy-missing.yaml",
        "`target.autoscaler.lua`: cannot read `missing.lua`",
    ),
    (
        "lua/policy-and-hpa.yaml",
        "`target.hpa`: a target is scaled by an HPA",
    ),
    (
        "lua/policy-and-manifest-hpa.yaml",
        "also scaled by HorizontalPodAutoscaler smoke",
    ),
    (
        "lua/policy-interval.yaml",
        "`target.autoscaler.interval`: 20s",
    ),
    ("lua/policy-min-above-max.yaml", "`target.autoscaler.max`"),
    ("lua/policy-unknown-field.yaml", "`scale`"),
    (
        "lua/check-syntax.yaml",
        "syntax-error.lua:2: the Lua script does not compile",
    ),
    ("messages/bom-then-unknown-field.yaml", "`retries`"),
    ("messages/tab-indentation.yaml", "a tab in the indentation"),
    ("messages/duplicate-key.yaml", "duplicate key"),
    ("messages/two-documents.yaml", "a second YAML document"),
    ("messages/duplicate-header.yaml", "duplicate key"),
    ("messages/empty.yaml", "is empty"),
    ("messages/only-comments.yaml", "is empty"),
    ("messages/not-utf8.yaml", "not UTF-8"),
    ("messages/not-a-mapping.yaml", "invalid type"),
    ("messages/a-directory.yaml", "is a directory"),
    ("messages/symlink-loop.yaml", "symbolic link loop"),
];

/// A sim run on bad input must end long before this.
const NO_HANG: Duration = Duration::from_secs(20);

/// Fixtures made at test time: a file over the size limit, flow nesting
/// 200,000 deep (quadratic in the parser before the depth check) and more
/// stages than allowed.
fn generated(dir: &Path) -> Vec<(PathBuf, &'static str, &'static str)> {
    let head =
        "duration: 2m\nmanifests: [../../manifests/httpbin.yaml]\ntarget: { route: httpbin }\n";
    let big = format!("{head}{}", "# padding\n".repeat(110_000));
    let deep = format!(
        "{head}report: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let stages = format!(
        "duration: 7d\nmanifests: [../../manifests/httpbin.yaml]\ntarget: {{ route: httpbin }}\nload:\n  stages:\n{}",
        "    - rate: 1\n      for: 1s\n".repeat(10_001)
    );
    [
        ("generated__too-large", big, "the limit is 1048576"),
        ("generated__deep-flow", deep, "nesting deeper than 64"),
        ("generated__too-many-stages", stages, "`load.stages`"),
    ]
    .into_iter()
    .map(|(name, text, want)| {
        let p = dir.join(format!("{name}.yaml"));
        std::fs::write(&p, text).unwrap();
        (p, name, want)
    })
    .collect()
}

/// Runs the harness with `args`, killing it after `limit`; (exit code, stdout, stderr).
fn run(args: &[&str], limit: Duration, scratch: &Path) -> (Option<i32>, String, String) {
    let out = scratch.join("stdout");
    let err = scratch.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoscale-harness"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("the harness binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (status.code(), read(&out), read(&err))
}

fn check(fixture: &str, name: &str, want: &str, scratch: &Path) {
    let (code, _, stderr) = run(&["validate", fixture], NO_HANG, scratch);
    assert_eq!(
        code,
        Some(2),
        "{fixture}: validate must exit 2; stderr: {stderr}"
    );
    assert!(
        stderr.contains(want),
        "{fixture}: stderr must name {want}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let shown = stderr.replace(&scratch.display().to_string(), "[TMP]");
    insta::assert_snapshot!(name, shown);

    let out = scratch.join("run");
    let args = [
        "experiment",
        fixture,
        "--backend",
        "sim",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, _, stderr) = run(&args, NO_HANG, scratch);
    assert_eq!(
        code,
        Some(2),
        "{fixture}: the sim must refuse it with exit 2; stderr: {stderr}"
    );
    assert!(stderr.contains(want), "{fixture}: {stderr}");
    assert!(
        !out.exists(),
        "{fixture}: bad input must not create a run directory"
    );
}

#[test]
fn every_malformed_input_is_exit_2_naming_the_field_on_validate_and_sim() {
    let _g = crate::common::shared();
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, want) in CORPUS {
        let name = fixture.trim_end_matches(".yaml").replace('/', "__");
        check(
            &format!("tests/fixtures/invalid/{fixture}"),
            &name,
            want,
            tmp.path(),
        );
    }
    // Generated fixtures live in the temp folder; their manifest paths are
    // relative to it and never read (the file fails first).
    let gen = tmp.path().join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    for (path, name, want) in generated(&gen) {
        check(path.to_str().unwrap(), name, want, tmp.path());
    }
    assert!(CORPUS.len() + 3 >= 60);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let _g = crate::common::shared();
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(
        &["validate", "tests/fixtures/bom-valid.yaml"],
        NO_HANG,
        tmp.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
}

#[test]
fn validate_and_dry_run_say_where_the_load_goes_and_warn_off_this_machine() {
    let _g = crate::common::shared();
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(
        &["validate", "tests/fixtures/remote-url.yaml"],
        NO_HANG,
        tmp.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("load: --backend kube sends it to http://gateway.example.com:8080"),
        "{stdout}"
    );
    assert!(
        stderr
            .contains("warning: target.url http://gateway.example.com:8080 is not on this machine"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(
        &[
            "experiment",
            "tests/fixtures/remote-url.yaml",
            "--backend",
            "kube",
            "--dry-run",
        ],
        NO_HANG,
        tmp.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("# load: --backend kube sends it to http://gateway.example.com:8080"),
        "{stdout}"
    );
    assert!(stderr.contains("warning: target.url"), "{stderr}");
    // Loopback: no warning.
    let (code, stdout, stderr) = run(
        &["validate", "scenarios/ramp-kind.yaml"],
        NO_HANG,
        tmp.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("sends it to http://127.0.0.1:8080"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}
