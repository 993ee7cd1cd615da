//! Where the scenario runs. `local` is an embedded cluster in this process;
//! `kube` (a real cluster through kube-rs) implements the same contract:
//! deploy the manifests, expose a target for the load, and report what the
//! cluster did, sample by sample. `sim` needs no live contract: it computes
//! the whole run on a virtual clock and hands back samples and events.

pub mod kube;
pub mod local;
pub mod sim;

use std::future::Future;
use std::pin::Pin;

use crate::recorder::{Event, HpaSample, PodSample, Replicas};

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
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Backend: Send {
    fn target(&self) -> LoadTarget;
    /// Deploys what is left to deploy and waits until the scale target is
    /// ready and the HPA is active; experiment time starts when it returns.
    fn ready(&mut self) -> BoxFuture<'_, anyhow::Result<()>>;
    /// What happened since the last call; `t` is the sample's end in experiment seconds.
    fn observe(&mut self, t: f64) -> Observation;
    /// Removes everything the backend created. Called on success, failure and interrupt.
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, anyhow::Result<()>>;
}
