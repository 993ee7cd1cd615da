//! `serve gateway`: the embedded gateway alone, with the local backend's
//! own code path: an HTTPRoute compiled as the local backend compiles the
//! scenario's, and the Service's endpoints set as its endpoint controller
//! sets them.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use gateway_api::apis::standard::httproutes::HttpRoute;
use tokio::sync::oneshot;

use crate::backend::local::gateway::{Endpoint, Gateway, GatewayOptions};
use crate::error::InfraError;

const SERVICE: &str = "upstream";
const SERVICE_PORT: u16 = 80;

/// Every request, whatever its host and path, to Service `upstream:80`.
const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: serve, namespace: default }
spec:
  parentRefs: [{ name: gateway }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: upstream, port: 80 }]
"#;

/// Starts the gateway on 127.0.0.1:`port` with `upstreams` as the ready
/// endpoints (`upstream-0`, `upstream-1`, … in its counters), prints
/// `gateway listening on ADDR (admin ADDR)`, and serves until `stop`
/// completes, then drains as the local backend's gateway does.
pub(super) async fn serve(
    port: u16,
    upstreams: Vec<SocketAddr>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let route: HttpRoute = serde_norway::from_str(ROUTE).context("the built-in route")?;
    let gw = Gateway::start_on(&[route], GatewayOptions::default(), port)
        .await
        .map_err(|e| InfraError(format!("{e:#}")))?;
    let endpoints = upstreams
        .iter()
        .enumerate()
        .map(|(i, &addr)| Endpoint {
            pod: format!("upstream-{i}"),
            addr,
        })
        .collect();
    gw.set_endpoints(SERVICE, SERVICE_PORT, endpoints)?;
    println!(
        "gateway listening on {} (admin {})",
        gw.addr(),
        gw.admin_addr()
    );
    stop.await;
    gw.shutdown().await;
    Ok(())
}

/// [`serve`] on a runtime of its own with `threads` workers, on a thread
/// of its own; `stop` (a signal) is awaited on the caller's runtime.
pub(super) async fn serve_on_own_runtime(
    threads: usize,
    port: u16,
    upstreams: Vec<SocketAddr>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    // One thread: the single-threaded scheduler, as nginx's one worker
    // process (no work-stealing queues, no wake-ups of other workers).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .thread_name("gateway")
        .enable_all()
        .build()
        .map_err(|e| InfraError(format!("cannot start the gateway's runtime: {e}")))?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, mut done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("gateway-main".into())
        .spawn(move || {
            let r = rt.block_on(serve(port, upstreams, async {
                let _ = stop_rx.await;
            }));
            let _ = done_tx.send(r);
        })
        .map_err(|e| InfraError(format!("cannot start the gateway's thread: {e}")))?;
    let gone = || InfraError("the gateway's thread ended without a word".into());
    tokio::select! {
        r = &mut done_rx => return r.map_err(|_| gone())?,
        () = stop => {}
    }
    let _ = stop_tx.send(());
    done_rx.await.map_err(|_| gone())?
}
