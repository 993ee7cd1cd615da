//! `serve pods`: built-in httpbin pods with zero service time and no CPU
//! model, on fixed ports, until the signal.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use crate::backend::local::pod::{PodHandle, PodModel};
use crate::error::InfraError;

/// Time the pods give requests in flight when the signal comes.
const GRACE: Duration = Duration::from_secs(1);

/// A pod that answers at once: one slot (a request never waits for it
/// when service takes no time), no modelled CPU or memory.
fn instant() -> PodModel {
    PodModel {
        concurrency: 1,
        service_time: Duration::ZERO,
        cpu_per_request: Duration::ZERO,
        memory_base_bytes: 0,
        memory_per_inflight_bytes: 0,
    }
}

/// Starts one pod per port (`httpbin-0`, `httpbin-1`, … in their `x-pod`
/// header), prints `pod NAME listening on ADDR` for each, and serves until
/// `stop` completes.
pub(super) async fn serve(ports: &[u16], stop: impl Future<Output = ()>) -> Result<()> {
    let mut pods = Vec::with_capacity(ports.len());
    for (i, &port) in ports.iter().enumerate() {
        let name = format!("httpbin-{i}");
        let pod = PodHandle::start_builtin_on(&name, &instant(), port)
            .await
            .map_err(|e| InfraError(format!("{e:#}")))?;
        println!("pod {name} listening on {}", pod.addr());
        pods.push(pod);
    }
    stop.await;
    for pod in pods {
        pod.drain_and_stop(GRACE).await;
    }
    Ok(())
}
