//! `serve gateway`: the embedded gateway alone, with the local backend's
//! own code path: an HTTPRoute compiled as the local backend compiles the
//! scenario's, and the Service's endpoints set as its endpoint controller
//! sets them.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use gateway_api::apis::standard::httproutes::HttpRoute;

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
    upstreams: &[SocketAddr],
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
