//! autoscale-harness: proves a service autoscales correctly.
//!
//! Data flows one way (see DESIGN.md): scenario → prepared → backend
//! (the cluster core with local sockets or a virtual clock, or a real
//! cluster) → load engine and recorder → checks → report. The binary calls
//! `cli::run`; tests reach the few modules they exercise directly.

pub mod autoscaler;
pub mod backend;
mod bench;
mod checks;
pub mod cli;
mod clock;
mod cluster;
mod cronhpa;
mod deadline;
pub mod error;
mod fine_timer;
mod http1_conn;
mod http1_framing;
pub mod load;
#[doc(hidden)]
pub mod lua;
pub mod manifests;
mod prepared;
mod progress;
pub mod recorder;
mod report;
mod run;
mod scenario;
mod serve;
mod signal;
mod sweep;
mod yaml;
