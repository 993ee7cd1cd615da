//! The integration tests, in one binary so that they share one build and
//! one process: tests of different files run side by side (two at a time
//! on two cores), and `common::alone` / `common::shared` keep the ones
//! whose outcome hangs on timing from sharing the machine.
mod common;

mod command_pods;
mod e2e_goose;
mod e2e_local;
mod e2e_sim;
mod fuzz_inputs;
mod gateway_tier;
mod hpa_conformance;
mod invalid_inputs;
mod kind_files;
mod kube_fake;
mod load_engine;
mod lua;
mod manifests_apply;
mod scenario_errors;
mod serve;
mod sim_baseline;
