//! The gateway's connections to one endpoint, two idle keep-alive lists
//! each taken most-recently-used first: hyper's HTTP/1.1 connections for the
//! hyper path, each driven by the request that holds it (the proxied
//! request's own task), with the response body that gives its connection
//! back when it has been read to the end (Envoy's and nginx's upstream
//! keepalive, without hyper's pooled client, whose channel to a connection
//! task of its own cost about 4 µs of user time per request); and the plain
//! path's raw sockets ([`RawConn`]), which that path frames itself.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::http1_conn::H1Conn;
use crate::http1_framing::RawConn;

/// An idle connection unused this long is closed (as hyper's pooled client
/// did here; nginx's upstream default is 60 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection and its request timeout, which lives as long as it does.
struct Conn {
    io: H1Conn<Incoming>,
    timeout: Deadline,
}

/// Why a request got no response head from the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpstreamError {
    /// Connect failed or the connection was reset before the head.
    Reset,
    /// No response head within the route's timeout.
    Timeout,
}

pub(super) struct Upstream {
    addr: SocketAddr,
    idle: Mutex<IdleList<Conn>>,
    /// The plain path's connections (its own framing, not hyper's).
    raw_idle: Mutex<IdleList<RawConn>>,
}

/// Idle connections with the instant each went idle, oldest first.
struct IdleList<T>(Vec<(Instant, T)>);

impl<T> IdleList<T> {
    /// The most recently idle one (its socket is the warmest), after
    /// dropping those idle for [`IDLE_TIMEOUT`] at `now`.
    fn pop(&mut self, now: Instant) -> Option<T> {
        let stale = self
            .0
            .partition_point(|(t, _)| now.duration_since(*t) >= IDLE_TIMEOUT);
        self.0.drain(..stale);
        self.0.pop().map(|(_, c)| c)
    }

    fn push(&mut self, now: Instant, c: T) {
        self.0.push((now, c));
    }
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(IdleList(Vec::new())),
            raw_idle: Mutex::new(IdleList(Vec::new())),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, IdleList<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects within `deadline` (and [`CONNECT_TIMEOUT`]), Nagle off.
    pub async fn connect(&self, deadline: Instant) -> Result<TcpStream, UpstreamError> {
        let limit = deadline.min(Instant::now() + CONNECT_TIMEOUT);
        match tokio::time::timeout_at(limit, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            Ok(Err(_)) => Err(UpstreamError::Reset),
            Err(_) if limit == deadline => Err(UpstreamError::Timeout),
            Err(_) => Err(UpstreamError::Reset),
        }
    }

    async fn dial(&self, deadline: Instant) -> Result<Conn, UpstreamError> {
        let stream = self.connect(deadline).await?;
        let io = H1Conn::handshake(stream)
            .await
            .map_err(|_| UpstreamError::Reset)?;
        Ok(Conn {
            io,
            timeout: Deadline::default(),
        })
    }

    /// The plain path's most recently idle connection, if any.
    pub fn take_raw(&self, now: Instant) -> Option<RawConn> {
        self.raw_idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop(now)
    }

    /// Gives a connection read to the end of its response back.
    pub fn put_raw(&self, now: Instant, c: RawConn) {
        self.raw_idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now, c);
    }

    /// Sends `req` on an idle connection, or a new one, and waits for the
    /// response head, up to `timeout` in all. A request that never left
    /// because the endpoint had closed an idle connection is sent again on
    /// the next one, as hyper's pooled client and Envoy do; a new
    /// connection is not retried.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        timeout: Duration,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let now = Instant::now();
        let deadline = now + timeout;
        loop {
            let idle = self.idle().pop(now);
            let (mut c, fresh) = match idle {
                Some(c) => (c, false),
                None => (self.dial(deadline).await?, true),
            };
            let Conn { io, timeout } = &mut c;
            let exchange = async {
                if io.ready().await {
                    io.send(req).await
                } else {
                    Err(Some(req))
                }
            };
            let Some(sent) = timeout.within(deadline, exchange).await else {
                return Err(UpstreamError::Timeout);
            };
            match sent {
                Ok(resp) => {
                    return Ok(resp.map(|body| UpstreamBody {
                        body,
                        conn: Some(c),
                        upstream: self.clone(),
                        done: false,
                    }))
                }
                Err(Some(back)) if !fresh => req = back,
                Err(_) => return Err(UpstreamError::Reset),
            }
        }
    }
}

/// A response body streamed from the endpoint. Polling it drives its
/// connection; once read to the end, the connection goes back to the idle
/// list (a body dropped before its end takes its connection with it, since
/// the rest of the response would still be on the wire).
pub(super) struct UpstreamBody {
    body: Incoming,
    conn: Option<Conn>,
    upstream: Arc<Upstream>,
    /// Read to the end (a chunked body's `is_end_stream` never says so).
    done: bool,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let mut frame = Pin::new(&mut this.body).poll_frame(cx);
        if frame.is_pending() {
            if let Some(c) = &mut this.conn {
                // What the connection reads now (or its end) shows in the
                // body at once, not after a round through the scheduler.
                c.io.poll_io(cx);
                frame = Pin::new(&mut this.body).poll_frame(cx);
            }
        }
        match frame {
            Poll::Ready(None) => this.done = true,
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if c.io.is_open() && (self.done || self.body.is_end_stream()) {
                self.upstream.idle().push(Instant::now(), c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::super::tests::{route, CATCH_ALL, T};
    use super::super::{Endpoint, Gateway, GatewayOptions};
    use crate::backend::local::pod::http::http_get;

    use super::*;

    /// How the test endpoint answers each request on a connection.
    #[derive(Clone, Copy)]
    enum Answer {
        /// `Content-Length`, connection kept open.
        Sized,
        /// Chunked, connection kept open.
        Chunked,
        /// Sized, then the endpoint closes the connection a moment later
        /// without having said so (a keep-alive timeout on its side).
        SizedThenDrop,
    }

    /// An HTTP/1.1 endpoint on 127.0.0.1 written by hand, so that its
    /// framing and closes are exactly the test's; counts connections.
    async fn endpoint(answer: Answer) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        // GET requests: a head, no body.
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let resp: &[u8] = match answer {
                            Answer::Sized | Answer::SizedThenDrop => {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                            }
                            Answer::Chunked => {
                                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                            }
                        };
                        if s.write_all(resp).await.is_err() {
                            return;
                        }
                        if let Answer::SizedThenDrop = answer {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn gateway_to(addr: SocketAddr) -> Gateway {
        let gw = Gateway::start(&[route(CATCH_ALL)], GatewayOptions::default())
            .await
            .unwrap();
        let ep = Endpoint {
            pod: "up-0".into(),
            addr,
        };
        gw.set_endpoints("up", 80, vec![ep]).unwrap();
        gw
    }

    async fn get_ok(gw: &Gateway) {
        let (s, _, body) = http_get(gw.addr(), "/", None, T).await.unwrap();
        assert_eq!((s.as_u16(), &body[..]), (200, &b"ok"[..]));
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_serves_the_next_request() {
        for answer in [Answer::Sized, Answer::Chunked] {
            let (addr, accepted) = endpoint(answer).await;
            let gw = gateway_to(addr).await;
            for _ in 0..3 {
                get_ok(&gw).await;
            }
            assert_eq!(accepted.load(Ordering::Relaxed), 1, "kept alive");
            gw.shutdown().await;
        }
    }

    #[tokio::test]
    async fn an_idle_connection_the_endpoint_closed_is_replaced_unseen() {
        let (addr, accepted) = endpoint(Answer::SizedThenDrop).await;
        let gw = gateway_to(addr).await;
        for _ in 0..3 {
            get_ok(&gw).await;
            // The endpoint drops the idle connection meanwhile.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(accepted.load(Ordering::Relaxed), 3);
        assert_eq!(gw.stats().upstream_errors, 0);
        gw.shutdown().await;
    }

    #[test]
    fn idle_connections_past_the_idle_timeout_are_closed() {
        let t0 = Instant::now();
        let mut idle = IdleList(Vec::new());
        for i in 0..3 {
            idle.push(t0 + Duration::from_secs(i), i);
        }
        let later = t0 + IDLE_TIMEOUT + Duration::from_secs(1);
        idle.push(later, 3);
        // The newest is taken; the two idle for the timeout are dropped.
        assert_eq!(idle.pop(later), Some(3));
        assert_eq!(idle.pop(later), Some(2));
        assert_eq!(idle.pop(later), None);
    }
}
