//! The engine's HTTP connections.
//!
//! - HTTP/1.1: an [`H1Conn`], one connection owned by one connection worker
//!   (`workers`), which drives it in its own task.
//! - HTTP/2 (prior knowledge): one connection, multiplexed; re-dialled by the
//!   next request after it closes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(super) use crate::http1_conn::H1Conn;

type Body = Full<Bytes>;

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendError {
    /// Dialling or the HTTP handshake failed.
    Connect,
}

/// Where to connect.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub host: String,
    pub port: u16,
}

async fn connect(target: &Target) -> Result<TcpStream, SendError> {
    TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| SendError::Connect)
}

// ------------------------------------------------------------------ HTTP/1.1

/// Instants of one exchange, kept outside its future so that a timeout still
/// knows how far it got.
#[derive(Default)]
pub(super) struct Times {
    /// The request is written next.
    pub sent: Option<Instant>,
    /// Response head received.
    pub headers: Option<Instant>,
    /// Body read to the end.
    pub done: Option<Instant>,
}

pub(super) async fn dial_h1(target: &Target) -> Result<H1Conn<Body>, SendError> {
    H1Conn::handshake(connect(target).await?)
        .await
        .map_err(|_| SendError::Connect)
}

/// One exchange on a worker's connection: sends `req` once the connection
/// can take it and reads the whole response body (discarding it); the
/// status code. `Err(Some)` gives the request back when it never left (the
/// server had closed the keep-alive connection), so it can be retried on
/// another one. After any error the connection is unusable.
pub(super) async fn exchange(
    c: &mut H1Conn<Body>,
    req: Request<Body>,
    t: &mut Times,
) -> Result<u16, Option<Request<Body>>> {
    if !c.ready().await {
        return Err(Some(req));
    }
    t.sent = Some(Instant::now());
    let resp = c.send(req).await?;
    t.headers = Some(Instant::now());
    let code = resp.status().as_u16();
    let mut body = resp.into_body();
    loop {
        match c.drive(body.frame()).await {
            Some(Some(Ok(_))) => {}
            Some(None) => break,
            Some(Some(Err(_))) | None => return Err(None),
        }
    }
    t.done = Some(Instant::now());
    Ok(code)
}

// -------------------------------------------------------------------- HTTP/2

pub(super) struct H2Conn {
    target: Target,
    /// An async mutex so that concurrent requests finding no connection dial
    /// once, not once each.
    conn: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
}

impl H2Conn {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn checkout(&self) -> Result<http2::SendRequest<Body>, SendError> {
        let mut slot = self.conn.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        *slot = None;
        let stream = connect(&self.target).await?;
        // Small requests; Nagle would delay every write.
        stream.set_nodelay(true).map_err(|_| SendError::Connect)?;
        let io = TokioIo::new(stream);
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|_| SendError::Connect)?;
        tokio::spawn(conn);
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use hyper::service::service_fn;
    use hyper::Response;
    use tokio::net::TcpListener;

    /// An HTTP/1.1 server on 127.0.0.1 answering "ok" (and closing the
    /// connection after each answer if `close`); counts connections.
    async fn server_closing(close: bool) -> (Target, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let svc = service_fn(move |_req| async move {
                    let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if close {
                        r.headers_mut()
                            .insert("connection", "close".parse().expect("value"));
                    }
                    Ok::<_, Infallible>(r)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        let target = Target {
            host: "127.0.0.1".into(),
            port,
        };
        (target, accepted)
    }

    fn get() -> Request<Body> {
        Request::get("/").body(Full::default()).expect("request")
    }

    #[tokio::test]
    async fn one_connection_serves_request_after_request() {
        let (target, accepted) = server_closing(false).await;
        let mut c = dial_h1(&target).await.expect("dial");
        for _ in 0..3 {
            let mut t = Times::default();
            assert_eq!(exchange(&mut c, get(), &mut t).await.ok(), Some(200));
            assert!(t.sent <= t.headers && t.headers <= t.done && t.done.is_some());
        }
        assert_eq!(accepted.load(Ordering::Relaxed), 1, "kept alive");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_gives_the_request_back() {
        let (target, _) = server_closing(true).await;
        let mut c = dial_h1(&target).await.expect("dial");
        let mut t = Times::default();
        assert_eq!(exchange(&mut c, get(), &mut t).await.ok(), Some(200));
        let back = exchange(&mut c, get(), &mut Times::default()).await;
        assert!(matches!(back, Err(Some(_))), "never sent: handed back");
    }
}
