//! `junit.xml`: one test case per check, so CI systems show the verdict natively.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::checks::{Outcome, Verdict};
use crate::recorder::RunData;

pub(super) fn render(run: &RunData, verdict: &Verdict) -> anyhow::Result<String> {
    let scenario = if run.meta.scenario_name.is_empty() {
        "scenario"
    } else {
        &run.meta.scenario_name
    };
    let classname = format!("autoscale-harness.{scenario}");
    let mut suite = TestSuite::new(scenario);
    for c in &verdict.checks {
        let status = match c.outcome() {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("expected {}, measured {}", c.bound, c.measured));
                s
            }
            Outcome::NotEvaluated => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "not evaluated: {}; expected {}, measured {}",
                    c.not_evaluated.as_deref().unwrap_or_default(),
                    c.bound,
                    c.measured
                ));
                s
            }
        };
        let mut case = TestCase::new(c.name.as_str(), status);
        case.set_classname(classname.as_str());
        suite.add_test_case(case);
    }
    suite.add_property(("backend", run.meta.backend.as_str()));
    suite.add_property(("speed", super::num(run.meta.speed, 3).as_str()));
    suite.add_property((
        "interrupted",
        if run.meta.interrupted {
            "true"
        } else {
            "false"
        },
    ));
    suite.set_system_out(super::events::block(run));
    let mut report = Report::new("autoscale-harness");
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
