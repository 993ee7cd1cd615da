//! autoscale-harness: proves a service autoscales correctly.
//!
//! Data flows one way (see DESIGN.md): scenario → backend deploy → load engine
//! and recorder → checks → report.

pub mod checks;
pub mod error;
pub mod manifests;
pub mod recorder;
pub mod scenario;
pub mod yaml;
