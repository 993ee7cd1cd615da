//! HTTP plumbing shared by the pods and the gateway: an accept loop serving
//! HTTP/1.1 and h2c with graceful drain ([`spawn_server`], [`ServerHandle`]),
//! and one-shot loopback requests ([`http_get`], [`http_request`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// A spawned accept loop; dropping it aborts the loop and all connections.
pub(in crate::backend::local) struct ServerHandle {
    stop: Option<oneshot::Sender<Duration>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Close the listener, gracefully finish open connections for up to
    /// `grace`, then abort what is left.
    pub(in crate::backend::local) async fn shutdown(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Serve HTTP/1.1 (keep-alive) and h2c on `listener`. `handler` is called per
/// request with the peer address; it must not fail (errors are responses).
pub(in crate::backend::local) fn spawn_server<H, Fut, B>(
    listener: TcpListener,
    handler: H,
) -> ServerHandle
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handler = Arc::new(handler);
    spawn_conn_server(listener, move |stream, peer, drain| {
        serve_http(stream, peer, handler.clone(), drain)
    })
}

/// Accepts connections on `listener` and runs `serve` on each, with the
/// drain signal: true once the server is shutting down, when a connection
/// is to close as soon as it is idle.
pub(in crate::backend::local) fn spawn_conn_server<C, Fut>(
    listener: TcpListener,
    serve: C,
) -> ServerHandle
where
    C: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, serve, stop_rx));
    ServerHandle {
        stop: Some(stop_tx),
        task: Some(task),
    }
}

async fn accept_loop<C, Fut>(
    listener: TcpListener,
    serve: C,
    mut stop_rx: oneshot::Receiver<Duration>,
) where
    C: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Graceful drain by hand (hyper-util's `server-graceful` feature is not
    // enabled in the main crate): every connection watches this channel and
    // closes when idle once it fires.
    let (drain_tx, drain_rx) = watch::channel(false);
    // Connection tasks live in a JoinSet so that dropping/aborting this loop
    // also aborts every connection (no server outlives its handle).
    let mut conns = JoinSet::new();
    let grace = loop {
        tokio::select! {
            biased;
            g = &mut stop_rx => break g.unwrap_or(Duration::ZERO),
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve(stream, peer, drain_rx.clone()));
                }
                // Typically EMFILE: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    };
    // Refuse new connections from now on.
    drop(listener);
    let _ = drain_tx.send(true);
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Serves HTTP/1.1 and h2c on one connection with hyper until it ends, or
/// until `drain` fires, when hyper's `graceful_shutdown` closes it idle now
/// and busy after its response.
pub(in crate::backend::local) async fn serve_http<IO, H, Fut, B>(
    io: IO,
    peer: SocketAddr,
    handler: Arc<H>,
    mut drain: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let svc = service_fn(move |req| {
        let fut = (*handler)(req, peer);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = drain.wait_for(|d| *d) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// One HTTP/1.1 GET over a fresh connection (probes, tests). Returns status,
/// headers and the body (bounded to 1 MiB).
pub(in crate::backend::local) async fn http_get(
    addr: SocketAddr,
    path: &str,
    host: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    http_request(addr, Method::GET, path, host, Bytes::new(), timeout).await
}

/// Like [`http_get`] with any method and body.
pub(in crate::backend::local) async fn http_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    host: Option<&str>,
    body: Bytes,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    if !addr.ip().is_loopback() {
        bail!("refusing to send traffic to non-loopback address {addr}");
    }
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = match host {
            Some(h) => h.to_owned(),
            None => addr.to_string(),
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .body(Full::new(body))?;
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading body: {e}"))?
            .to_bytes();
        drop(sender);
        driver.abort();
        anyhow::Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path} on {addr}: timed out after {timeout:?}"))?
}
