//! autoscale-harness: proves a service autoscales correctly.
//!
//! Data flows one way (see DESIGN.md): scenario → backend deploy → load engine
//! and recorder → checks → report.

pub mod autoscaler;
pub mod backend;
pub mod bench;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod error;
pub mod load;
pub mod manifests;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;
pub mod yaml;
