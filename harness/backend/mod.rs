//! Where the scenario runs, behind one contract: deploy the manifests, wait
//! until the scale target is ready, expose a target for the load, and report
//! what the cluster did, sample by sample. `local` (the cluster core with
//! real sockets) and `sim` (the core on a virtual clock, load included) are
//! the embedded cluster; `kube` is a real one through kube-rs.

pub mod kube;
pub mod local;
pub mod sim;

use std::future::Future;
use std::pin::Pin;

use crate::load::IntervalStats;
use crate::recorder::{Event, HpaSample, PodSample, Replicas, TierSample};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Embedded cluster in the harness process (default).
    Local,
    /// A real cluster through a kubeconfig context.
    Kube,
    /// Virtual clock and queue models, no sockets.
    Sim,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Kube => "kube",
            Kind::Sim => "sim",
        }
    }
}

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct LoadTarget {
    /// Base URL, e.g. `http://127.0.0.1:38211`.
    pub base_url: String,
    /// Host header for the route, if it needs one.
    pub host: Option<String>,
}

/// What the cluster looked like during one sample.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub replicas: Replicas,
    pub pods: Vec<PodSample>,
    pub hpa: Option<HpaSample>,
    /// Events since the previous observation, in order.
    pub events: Vec<Event>,
    /// The cluster's other workloads than the scale target.
    pub tiers: Vec<TierSample>,
    /// The sample's load statistics, from a backend that models the load
    /// itself (sim); the others leave it to the load engine.
    pub load: Option<IntervalStats>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Backend: Send {
    /// Where the load engine sends; `None` for a backend that models the
    /// load on its own virtual clock (the loop then does not wait for time).
    fn target(&self) -> Option<LoadTarget>;
    /// Deploys what is left to deploy and waits until the scale target is
    /// ready and the HPA is active. Experiment time starts then: at the real
    /// instant returned, where the backend has fixed one, else on return.
    fn ready(&mut self) -> BoxFuture<'_, anyhow::Result<Option<tokio::time::Instant>>>;
    /// What happened since the last call, up to the end of the sample that
    /// ends at experiment time `t`.
    fn observe(&mut self, t: f64) -> Observation;
    /// Events still held back at the end of the run (a real cluster's
    /// rescales waiting for their previous size), with what is known now.
    fn drain(&mut self) -> Vec<Event> {
        Vec::new()
    }
    /// The HPA the run watches as `namespace/name`, with its minReplicas
    /// and maxReplicas, where the backend knows better than the manifests:
    /// a real cluster's run namespace, or an HPA that lives in the cluster
    /// (`target.hpa: NAMESPACE/NAME`).
    fn watched_hpa(&self) -> Option<(String, i32, i32)> {
        None
    }
    /// The run's schedule as it runs, where the backend fixes experiment
    /// t = 0 on the schedule's clock itself (a real cluster: the real
    /// instant the run became ready); asked once, after `ready`.
    fn schedule_started(&self) -> Option<crate::recorder::ScheduleMeta> {
        None
    }
    /// Why per-pod request rates could not be observed, if they could not.
    fn pod_qps_unobservable(&self) -> Option<String> {
        None
    }
    /// The load statistics of the sample that ends at experiment time `t`,
    /// whoever measured them, for a scaler that reads them (a Lua policy).
    fn client_stats(&mut self, _t: f64, _s: &IntervalStats) {}
    /// Removes everything the backend created. Called on success, failure and interrupt.
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, anyhow::Result<()>>;
}
