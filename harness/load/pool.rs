//! The engine's HTTP connections: a keep-alive pool with a hard cap on open
//! connections, over hyper's connection-level client.
//!
//! Why not hyper_util's legacy `Client`: it has no cap on open connections.
//! When a request is due and no connection is idle it dials a new one, so a
//! brief server hiccup at a high rate opens hundreds of connections at once,
//! which makes the server slower still (every surplus connection costs it a
//! wake-up) until the in-flight cap drops requests. Here:
//!
//! - HTTP/1.1: at most `max_connections` are open or being dialled. A request
//!   takes the most recently used idle connection, else dials one if under
//!   the cap, else waits (FIFO) for one to come back. The wait is part of its
//!   response time (measured from the intended instant) and it counts against
//!   the in-flight cap like any outstanding request, so nothing is hidden: the
//!   open model still drops at the cap, it just stops dialling at the
//!   connection cap. Connections idle for [`IDLE_TIMEOUT`] are closed, so the
//!   pool follows the current concurrency rather than the highest a long
//!   run ever reached (memory is per connection).
//! - HTTP/2 (prior knowledge): one connection, multiplexed; re-dialled by the
//!   next request after it closes.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

type Body = Full<Bytes>;

/// An HTTP/1.1 connection unused this long is closed (hyper's pooled client
/// uses 90 s; shorter here because a surplus connection only costs memory
/// and the server's attention).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendError {
    /// Dialling or the HTTP handshake failed.
    Connect,
    /// The connection failed after the request was handed to it.
    Other,
}

/// Where to connect.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub host: String,
    pub port: u16,
}

pub(super) enum Pool {
    Http1(H1Pool),
    Http2(H2Conn),
}

impl Pool {
    pub fn new(target: Target, http2: bool, max_connections: usize) -> Self {
        if http2 {
            Pool::Http2(H2Conn {
                target,
                conn: tokio::sync::Mutex::new(None),
            })
        } else {
            Pool::Http1(H1Pool {
                target,
                cap: max_connections.max(1),
                idle_timeout: IDLE_TIMEOUT,
                state: Mutex::new(H1State::default()),
            })
        }
    }

    /// A connection ready to take one request (HTTP/1.1) or a handle on the
    /// shared one (HTTP/2).
    pub async fn checkout(&self) -> Result<Lease<'_>, SendError> {
        match self {
            Pool::Http1(p) => p.checkout().await.map(|s| Lease::Http1 {
                pool: p,
                sender: Some(s),
            }),
            Pool::Http2(c) => c.checkout().await.map(Lease::Http2),
        }
    }
}

async fn dial(target: &Target) -> Result<TokioIo<TcpStream>, SendError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| SendError::Connect)?;
    // Small requests; Nagle would delay every write.
    stream.set_nodelay(true).map_err(|_| SendError::Connect)?;
    Ok(TokioIo::new(stream))
}

/// One checked-out connection. HTTP/1.1: dropping it without
/// [`Lease::release`] (an error, a timeout mid-exchange) closes the
/// connection, whose state is then unknown, and frees its slot.
pub(super) enum Lease<'p> {
    Http1 {
        pool: &'p H1Pool,
        sender: Option<http1::SendRequest<Body>>,
    },
    Http2(http2::SendRequest<Body>),
}

impl Lease<'_> {
    /// Sends the request. `Err(Some(req))` gives it back when it never left
    /// (the connection had closed before it was written), so it can be
    /// retried on another connection.
    pub async fn send(
        &mut self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, Option<Request<Body>>> {
        let result = match self {
            Lease::Http1 { sender, .. } => match sender {
                Some(s) => s.try_send_request(req).await,
                None => return Err(Some(req)),
            },
            Lease::Http2(s) => s.try_send_request(req).await,
        };
        result.map_err(|mut e| e.take_message())
    }

    /// Returns an HTTP/1.1 connection to the pool once it can take the next
    /// request (call after the response body was read to the end).
    pub async fn release(mut self) {
        if let Lease::Http1 { pool, sender } = &mut self {
            if let Some(mut s) = sender.take() {
                if s.ready().await.is_ok() {
                    pool.checkin(s);
                } else {
                    pool.closed();
                }
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Lease::Http1 { pool, sender } = self {
            if sender.take().is_some() {
                pool.closed();
            }
        }
    }
}

// ------------------------------------------------------------------ HTTP/1.1

pub(super) struct H1Pool {
    target: Target,
    cap: usize,
    idle_timeout: Duration,
    state: Mutex<H1State>,
}

#[derive(Default)]
struct H1State {
    /// Ready connections and when each was checked in, most recently used
    /// last (taken from the back, expired from the front).
    idle: VecDeque<(http1::SendRequest<Body>, Instant)>,
    /// Connections open or being dialled, idle or not.
    open: usize,
    /// Requests waiting for a connection, oldest first.
    waiters: VecDeque<oneshot::Sender<Grant>>,
}

/// What a waiting request is handed.
enum Grant {
    Conn(http1::SendRequest<Body>),
    /// A slot freed up (a connection closed): dial it.
    Dial,
}

impl H1Pool {
    fn lock(&self) -> MutexGuard<'_, H1State> {
        // Plain bookkeeping: a panic elsewhere leaves it consistent enough.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn checkout(&self) -> Result<http1::SendRequest<Body>, SendError> {
        let wait = {
            let mut st = self.lock();
            let now = Instant::now();
            while st
                .idle
                .front()
                .is_some_and(|(_, at)| now - *at > self.idle_timeout)
            {
                // Dropping the last SendRequest closes the connection.
                st.idle.pop_front();
                st.open -= 1;
            }
            loop {
                match st.idle.pop_back() {
                    Some((s, _)) if s.is_ready() => return Ok(s),
                    // Closed by the server while idle.
                    Some(_) => st.open -= 1,
                    None => break,
                }
            }
            if st.open < self.cap {
                st.open += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                st.waiters.push_back(tx);
                Some(rx)
            }
        };
        if let Some(rx) = wait {
            let mut waiter = Waiter { pool: self, rx };
            match (&mut waiter.rx).await {
                Ok(Grant::Conn(s)) => return Ok(s),
                Ok(Grant::Dial) => {}
                // The pool went away; nothing to send on.
                Err(_) => return Err(SendError::Other),
            }
        }
        // This request owns a slot now; the guard gives it back if dialling
        // fails or the request times out while dialling.
        let slot = Slot(Some(self));
        let s = self.connect().await?;
        slot.keep();
        Ok(s)
    }

    async fn connect(&self) -> Result<http1::SendRequest<Body>, SendError> {
        let io = dial(&self.target).await?;
        let (sender, conn) = http1::handshake(io).await.map_err(|_| SendError::Connect)?;
        // The connection task ends when the server closes it or every
        // SendRequest for it is dropped.
        tokio::spawn(conn);
        Ok(sender)
    }

    fn checkin(&self, mut s: http1::SendRequest<Body>) {
        let mut st = self.lock();
        while let Some(w) = st.waiters.pop_front() {
            match w.send(Grant::Conn(s)) {
                Ok(()) => return,
                // That waiter timed out; try the next.
                Err(Grant::Conn(back)) => s = back,
                // Not possible: what comes back is what was sent.
                Err(Grant::Dial) => return,
            }
        }
        st.idle.push_back((s, Instant::now()));
    }

    /// A connection (or a slot being dialled) is gone: hand the slot to the
    /// oldest waiter, else free it.
    fn closed(&self) {
        let mut st = self.lock();
        while let Some(w) = st.waiters.pop_front() {
            if w.send(Grant::Dial).is_ok() {
                return;
            }
        }
        st.open -= 1;
    }
}

/// A request waiting for a connection. If it is dropped (timed out) just as
/// a grant was sent to it, the grant is passed on rather than lost with it.
struct Waiter<'p> {
    pool: &'p H1Pool,
    rx: oneshot::Receiver<Grant>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.rx.close();
        match self.rx.try_recv() {
            Ok(Grant::Conn(s)) => self.pool.checkin(s),
            Ok(Grant::Dial) => self.pool.closed(),
            Err(_) => {}
        }
    }
}

/// A connection slot being dialled; freed on drop unless kept.
struct Slot<'p>(Option<&'p H1Pool>);

impl Slot<'_> {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.0 {
            pool.closed();
        }
    }
}

// -------------------------------------------------------------------- HTTP/2

pub(super) struct H2Conn {
    target: Target,
    /// An async mutex so that concurrent requests finding no connection dial
    /// once, not once each.
    conn: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
}

impl H2Conn {
    async fn checkout(&self) -> Result<http2::SendRequest<Body>, SendError> {
        let mut slot = self.conn.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        *slot = None;
        let io = dial(&self.target).await?;
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

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    /// An HTTP/1.1 server on 127.0.0.1 answering "ok"; counts connections.
    async fn server() -> (Target, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
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

    fn h1(target: Target, cap: usize, idle_timeout: Duration) -> H1Pool {
        H1Pool {
            target,
            cap,
            idle_timeout,
            state: Mutex::new(H1State::default()),
        }
    }

    /// One request on a checked-out connection, then back to the pool.
    async fn get(pool: &Pool) {
        let mut lease = pool.checkout().await.expect("checkout");
        let req = Request::get("/").body(Full::default()).expect("request");
        let resp = lease.send(req).await.expect("response");
        resp.into_body().collect().await.expect("body");
        lease.release().await;
    }

    #[tokio::test]
    async fn at_the_cap_a_checkout_waits_for_a_release() {
        let (target, accepted) = server().await;
        let pool = Pool::Http1(h1(target, 1, IDLE_TIMEOUT));
        let first = pool.checkout().await.expect("first");
        let second = pool.checkout();
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut second).await;
        assert!(waited.is_err(), "the only connection is leased");
        first.release().await;
        let second = second.await.expect("handed the released connection");
        drop(second); // mid-exchange: closed, its slot freed
        get(&pool).await;
        assert_eq!(accepted.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_reused_then_expire() {
        let (target, accepted) = server().await;
        let pool = Pool::Http1(h1(target, 4, Duration::from_millis(100)));
        get(&pool).await;
        get(&pool).await;
        assert_eq!(accepted.load(Ordering::Relaxed), 1, "kept alive");
        tokio::time::sleep(Duration::from_millis(150)).await;
        get(&pool).await;
        assert_eq!(accepted.load(Ordering::Relaxed), 2, "expired, re-dialled");
        let Pool::Http1(p) = &pool else {
            unreachable!()
        };
        assert_eq!(p.lock().open, 1, "the expired one no longer counts");
    }
}
