//! The gateway's own HTTP/1.1 path for plain requests, without hyper.
//!
//! Why: hyper's server connection to the client and its client connection
//! to the pod cost the gateway 45-47 µs of CPU per proxied request at 5,000
//! req/s, where nginx spent 38 and a hand-written loop on the same tokio
//! runtime 29 (measured side by side on 2026-12-05). Most requests a load
//! test sends are plain: HTTP/1.1, a safe method, no body, no hop-by-hop
//! headers. For those this loop parses the head itself (httparse), routes
//! it as the hyper path does, writes it on to a pod connection of its own,
//! and relays the response as it came, framing included, without its
//! hop-by-hop headers.
//!
//! Anything else (h2c, HTTP/1.0, a body, Upgrade, Expect, Connection and
//! the other hop-by-hop headers, HEAD and unsafe methods, a head over 64
//! KiB, the gateway tier's capacity model) goes to hyper with the bytes
//! already read, and hyper serves the rest of that connection.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::header::HeaderName;
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::proxy::{choose_endpoint, proxy, Gauge};
use super::routes::{RequestHead, RuleTarget};
use super::upstream::{Upstream, UpstreamError};
use super::Inner;
use crate::backend::local::pod::http::serve_http;
use crate::deadline::Deadline;
use crate::http1_framing::{
    body_end, put_header, read_response_head, BodyEnd, Chunk, ChunkScan, Framing, HeadRead,
    RawConn, MAX_HEAD, MAX_HEADERS,
};

/// Request headers that make a request not plain besides the hop-by-hop
/// ones: they concern a body or a protocol switch, which hyper's path
/// handles.
const NOT_PLAIN: [&str; 3] = ["transfer-encoding", "expect", "http2-settings"];

/// Headers not passed on (RFC 9110 §7.6.1, and the legacy ones).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Serves one client connection: plain requests here, and the connection
/// from its first other request on by hyper (`proxy`).
pub(super) async fn serve(
    inner: Arc<Inner>,
    mut client: TcpStream,
    peer: SocketAddr,
    mut drain: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    // The head sent to the pod, then the one sent back to the client.
    let (mut up_head, mut down_head) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
    let mut timer = Deadline::default();
    loop {
        let plan = loop {
            if !buf.is_empty() {
                match prepare(&inner, &buf, peer, &mut up_head) {
                    Prepared::Partial if buf.len() <= MAX_HEAD => {}
                    Prepared::Partial | Prepared::NotPlain => break None,
                    Prepared::Plain(p) => break Some(p),
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            let read = tokio::select! {
                biased;
                r = client.read_buf(&mut buf) => r,
                _ = drain.wait_for(|d| *d), if buf.is_empty() => return,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        };
        let Some(plan) = plan else {
            let handler = Arc::new(move |req: Request<Incoming>, peer: SocketAddr| {
                proxy(inner.clone(), req, peer)
            });
            let io = Prefixed {
                pre: buf.freeze(),
                io: client,
            };
            serve_http(io, peer, handler, drain).await;
            return;
        };
        buf.advance(plan.head_len);
        inner.requests_total.fetch_add(1, Ordering::Relaxed);
        inner.in_flight.fetch_add(1, Ordering::Relaxed);
        let gauge = Gauge(&inner.in_flight);
        let keep = match plan.target {
            None => {
                inner.no_route.fetch_add(1, Ordering::Relaxed);
                reply(&mut client, &mut down_head, StatusCode::NOT_FOUND, "").await
            }
            Some(target) => {
                target.counters.requests.fetch_add(1, Ordering::Relaxed);
                let mut ex = Exchange {
                    client: &mut client,
                    up_head: &up_head,
                    down_head: &mut down_head,
                    timer: &mut timer,
                };
                ex.forward(&inner, &target).await
            }
        };
        drop(gauge);
        if !keep || *drain.borrow() {
            return;
        }
    }
}

enum Prepared {
    Partial,
    NotPlain,
    Plain(Plan),
}

struct Plan {
    head_len: usize,
    /// None: no route matched.
    target: Option<Arc<RuleTarget>>,
}

/// The parsed head, as routing reads it.
struct Head<'a> {
    method: Method,
    path: &'a str,
    query: Option<&'a str>,
    host: &'a str,
    headers: &'a [httparse::Header<'a>],
}

impl RequestHead for Head<'_> {
    fn method(&self) -> &Method {
        &self.method
    }

    fn path(&self) -> &str {
        self.path
    }

    fn query(&self) -> Option<&str> {
        self.query
    }

    fn authority(&self) -> Option<&str> {
        Some(self.host)
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
}

fn visible_ascii(b: &[u8]) -> bool {
    b.iter().all(|c| (0x20..0x7f).contains(c))
}

/// Parses the head at the start of `buf`; for a plain request, routes it
/// and writes the head to send to the pod into `up_head`.
fn prepare(inner: &Inner, buf: &[u8], peer: SocketAddr, up_head: &mut Vec<u8>) -> Prepared {
    if inner.slots.is_some() {
        return Prepared::NotPlain;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Prepared::Partial,
        Err(_) => return Prepared::NotPlain,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Prepared::NotPlain;
    };
    // Safe to send again on another connection if the first was stale.
    let method = match method {
        "GET" => Method::GET,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        _ => return Prepared::NotPlain,
    };
    if !target.starts_with('/') || !target.is_ascii() || target.contains('#') {
        return Prepared::NotPlain;
    }
    let (mut host, mut xff) = (None, None);
    for h in req.headers.iter() {
        let is = |n: &str| h.name.eq_ignore_ascii_case(n);
        if is("host") {
            if host.is_some() || !visible_ascii(h.value) {
                return Prepared::NotPlain;
            }
            host = std::str::from_utf8(h.value).ok();
        } else if is("content-length") {
            if h.value != b"0" {
                return Prepared::NotPlain;
            }
        } else if is("x-forwarded-for") {
            xff = xff.or(Some(h.value));
        } else if HOP_BY_HOP.iter().chain(&NOT_PLAIN).any(|n| is(n)) {
            return Prepared::NotPlain;
        }
    }
    let Some(host) = host else {
        return Prepared::NotPlain;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let head = Head {
        method,
        path,
        query,
        host,
        headers: req.headers,
    };
    let table = inner
        .table
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let target_rule = table.find(&head).map(|e| e.target.clone());

    up_head.clear();
    up_head.extend_from_slice(head.method.as_str().as_bytes());
    up_head.push(b' ');
    up_head.extend_from_slice(target.as_bytes());
    up_head.extend_from_slice(b" HTTP/1.1\r\n");
    for h in head.headers {
        if h.name.eq_ignore_ascii_case("x-forwarded-for")
            || h.name.eq_ignore_ascii_case("x-forwarded-proto")
        {
            continue;
        }
        put_header(up_head, h.name, h.value);
    }
    up_head.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prev) = xff {
        up_head.extend_from_slice(prev);
        up_head.extend_from_slice(b", ");
    }
    let _ = write!(up_head, "{}\r\nx-forwarded-proto: http\r\n\r\n", peer.ip());
    Prepared::Plain(Plan {
        head_len,
        target: target_rule,
    })
}

/// Writes a response of the gateway's own (no route, no backend, an
/// upstream failure); false when the client is gone.
async fn reply(client: &mut TcpStream, out: &mut Vec<u8>, status: StatusCode, body: &str) -> bool {
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    if !body.is_empty() {
        out.extend_from_slice(b"content-type: text/plain\r\n");
    }
    let _ = write!(
        out,
        "content-length: {}\r\ndate: {}\r\n\r\n{body}",
        body.len(),
        httpdate::fmt_http_date(SystemTime::now())
    );
    client.write_all(out).await.is_ok()
}

/// A response head read from the pod; the client's version is in
/// `down_head`.
struct ResponseHead {
    status: StatusCode,
    framing: Framing,
    /// The pod's connection can serve another request after the body.
    reusable: bool,
}

/// One proxied request's I/O.
struct Exchange<'a> {
    client: &'a mut TcpStream,
    up_head: &'a [u8],
    down_head: &'a mut Vec<u8>,
    timer: &'a mut Deadline,
}

impl Exchange<'_> {
    /// Forwards the request to one of the rule's endpoints and relays the
    /// response; false when the client's connection is to close.
    async fn forward(&mut self, inner: &Inner, target: &RuleTarget) -> bool {
        let rc = &target.counters;
        let (guard, upstream) = match choose_endpoint(inner, target) {
            Ok(chosen) => chosen,
            Err((status, body)) => {
                rc.record(status);
                return self.reply(status, body).await;
            }
        };
        let timeout = target.timeout.unwrap_or(inner.opts.upstream_timeout);
        match self.send(&upstream, Instant::now() + timeout).await {
            Ok((conn, head)) => {
                rc.record(head.status);
                self.relay(&upstream, conn, head).await
            }
            Err(e) => {
                guard.0.errors.fetch_add(1, Ordering::Relaxed);
                let (status, body) = match e {
                    UpstreamError::Reset => {
                        inner.upstream_errors.fetch_add(1, Ordering::Relaxed);
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "upstream connect error or disconnect/reset before headers",
                        )
                    }
                    UpstreamError::Timeout => {
                        inner.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
                        (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
                    }
                };
                rc.record(status);
                self.reply(status, body).await
            }
        }
    }

    async fn reply(&mut self, status: StatusCode, body: &str) -> bool {
        reply(self.client, self.down_head, status, body).await
    }

    /// Sends the head on an idle connection, or a new one, and reads the
    /// response head before `deadline`. A request that met a connection
    /// the pod had closed meanwhile goes again on the next (its method is
    /// safe to repeat); a new connection is not retried.
    async fn send(
        &mut self,
        up: &Upstream,
        deadline: Instant,
    ) -> Result<(RawConn, ResponseHead), UpstreamError> {
        loop {
            let (mut c, fresh) = match up.take_raw(Instant::now()) {
                Some(c) => (c, false),
                None => (RawConn::new(up.connect(deadline).await?, 8192), true),
            };
            let (up_head, down_head) = (self.up_head, &mut *self.down_head);
            let exchange = async {
                if c.stream.write_all(up_head).await.is_err() {
                    return Err(HeadRead::Closed);
                }
                read_response_head(&mut c, |resp| response_head(resp, down_head)).await
            };
            match self.timer.within(deadline, exchange).await {
                None => return Err(UpstreamError::Timeout),
                Some(Ok(head)) => return Ok((c, head)),
                Some(Err(HeadRead::Closed)) if !fresh => {}
                Some(Err(_)) => return Err(UpstreamError::Reset),
            }
        }
    }

    /// Writes the response head and relays the body as framed; the pod's
    /// connection goes back to the idle list if it is read to the end.
    async fn relay(&mut self, up: &Upstream, mut c: RawConn, head: ResponseHead) -> bool {
        let ended = match head.framing {
            Framing::Length(n) => self.relay_length(&mut c, n).await,
            Framing::Chunked => self.relay_chunked(&mut c).await,
            Framing::Close => {
                self.relay_to_close(&mut c).await;
                return false;
            }
        };
        if !ended {
            return false;
        }
        // Bytes past the response: a pod out of step; not reused.
        if head.reusable && c.buf.is_empty() {
            up.put_raw(Instant::now(), c);
        }
        true
    }

    /// True when the body was relayed whole.
    async fn relay_length(&mut self, c: &mut RawConn, n: u64) -> bool {
        let have = c.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        // Head and what came with it in one write.
        self.down_head.extend_from_slice(&c.buf[..have]);
        c.buf.advance(have);
        if self.client.write_all(self.down_head).await.is_err() {
            return false;
        }
        let mut left = n - have as u64;
        while left > 0 {
            if !c.read_more().await {
                return false;
            }
            let take = c.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if self.client.write_all(&c.buf[..take]).await.is_err() {
                return false;
            }
            c.buf.advance(take);
            left -= take as u64;
        }
        true
    }

    async fn relay_chunked(&mut self, c: &mut RawConn) -> bool {
        let mut scan = ChunkScan::default();
        let mut first = true;
        loop {
            let used = scan.feed(&c.buf);
            if scan.state == Chunk::Bad {
                return false;
            }
            let wrote = if first {
                self.down_head.extend_from_slice(&c.buf[..used]);
                first = false;
                self.client.write_all(self.down_head).await
            } else {
                self.client.write_all(&c.buf[..used]).await
            };
            c.buf.advance(used);
            if wrote.is_err() {
                return false;
            }
            if scan.state == Chunk::Done {
                return true;
            }
            if !c.read_more().await {
                return false;
            }
        }
    }

    async fn relay_to_close(&mut self, c: &mut RawConn) {
        self.down_head.extend_from_slice(&c.buf);
        c.buf.clear();
        if self.client.write_all(self.down_head).await.is_err() {
            return;
        }
        while c.read_more().await {
            if self.client.write_all(&c.buf).await.is_err() {
                return;
            }
            c.buf.clear();
        }
    }
}

/// The client's head for `resp` (hop-by-hop headers dropped, framing kept)
/// and how its body ends; None for a response this path cannot relay.
fn response_head(
    resp: &httparse::Response<'_, '_>,
    down_head: &mut Vec<u8>,
) -> Option<ResponseHead> {
    let status = StatusCode::from_u16(resp.code?).ok()?;
    let BodyEnd { framing, reusable } = body_end(resp, false)?;
    // Headers the Connection header names are hop-by-hop too.
    let mut named: Vec<&str> = Vec::new();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let tokens = std::str::from_utf8(h.value).ok()?.split(',');
            named.extend(tokens.map(str::trim).filter(|t| !t.is_empty()));
        }
    }
    down_head.clear();
    let _ = write!(
        down_head,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        resp.reason.unwrap_or("")
    );
    for h in resp.headers.iter() {
        let is = |n: &str| h.name.eq_ignore_ascii_case(n);
        if !(HOP_BY_HOP.iter().any(|n| is(n)) || named.iter().any(|n| is(n))) {
            put_header(down_head, h.name, h.value);
        }
    }
    if framing == Framing::Close {
        down_head.extend_from_slice(b"connection: close\r\n");
    }
    down_head.extend_from_slice(b"\r\n");
    Some(ResponseHead {
        status,
        framing,
        reusable,
    })
}

/// The client's connection handed to hyper: the bytes already read first.
struct Prefixed {
    pre: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    use super::super::tests::{ep, pod, route, CATCH_ALL, T};
    use super::super::{Gateway, GatewayOptions};
    use super::*;

    async fn gateway() -> (Gateway, crate::backend::local::pod::PodHandle) {
        let gw = Gateway::start(&[route(CATCH_ALL)], GatewayOptions::default())
            .await
            .unwrap();
        let p = pod("up-0").await;
        gw.set_endpoints("up", 80, vec![ep(&p)]).unwrap();
        (gw, p)
    }

    /// Writes `raw` on a new connection and reads until `responses`
    /// responses (each ending in its JSON's last brace or an empty body)
    /// came back, or the gateway closed it.
    async fn exchange(gw: &Gateway, raw: &[u8], until: &str, count: usize) -> String {
        let mut s = TcpStream::connect(gw.addr()).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut got = Vec::new();
        let read = async {
            while String::from_utf8_lossy(&got).matches(until).count() < count {
                let mut b = [0u8; 4096];
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
        };
        tokio::time::timeout(T, read)
            .await
            .expect("responses in time");
        String::from_utf8(got).unwrap()
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_with_forwarded_headers() {
        let (gw, _p) = gateway().await;
        let raw = b"GET /anything/one HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\nGET /anything/two?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n";
        let out = exchange(&gw, raw, "HTTP/1.1 200", 2).await;
        let (one, two) = (
            out.find("/anything/one").unwrap(),
            out.find("/anything/two").unwrap(),
        );
        assert!(one < two, "{out}");
        // The client's chain, then the peer; the proto is the gateway's.
        assert!(
            out.contains(r#""X-Forwarded-For":"10.0.0.1, 127.0.0.1""#),
            "{out}"
        );
        assert!(!out.contains("https"), "{out}");
        let stats = gw.stats();
        assert_eq!((stats.requests_total, stats.in_flight), (2, 0));
        assert_eq!(stats.pods[0].requests_total, 2);
        assert_eq!(stats.routes[0].responses_2xx, 2);
        gw.shutdown().await;
    }

    #[tokio::test]
    async fn other_requests_go_to_hyper_for_the_rest_of_the_connection() {
        let (gw, _p) = gateway().await;
        // A body, then a plain GET behind it on the same connection.
        let raw = b"POST /anything HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhelloGET /get HTTP/1.1\r\nHost: a.test\r\n\r\n";
        let out = exchange(&gw, raw, "x-pod: up-0", 2).await;
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
        assert!(out.contains("hello"), "{out}");
        // HTTP/1.0 and a request with Connection: close are served and closed.
        for raw in [
            &b"GET /get HTTP/1.0\r\nHost: a.test\r\n\r\n"[..],
            b"GET /get HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        ] {
            let out = exchange(&gw, raw, "never", 1).await;
            assert!(out.starts_with("HTTP/1."), "{out}");
            assert!(out.contains(" 200 OK"), "{out}");
        }
        // h2c with prior knowledge.
        let s = TcpStream::connect(gw.addr()).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(format!("http://{}/get", gw.addr()))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("/get"));
        gw.shutdown().await;
    }

    #[tokio::test]
    async fn the_gateways_own_answers_and_a_closing_drain() {
        let gw = Gateway::start(&[route(CATCH_ALL)], GatewayOptions::default())
            .await
            .unwrap();
        let raw = b"GET /get HTTP/1.1\r\nHost: a.test\r\n\r\n";
        let out = exchange(&gw, raw, "no healthy upstream", 1).await;
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{out}"
        );
        assert!(out.contains("content-length: 19\r\n"), "{out}");
        // A keep-alive connection idle at shutdown is closed at once.
        let p = pod("up-0").await;
        gw.set_endpoints("up", 80, vec![ep(&p)]).unwrap();
        let mut s = TcpStream::connect(gw.addr()).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut b = [0u8; 4096];
        assert!(s.read(&mut b).await.unwrap() > 0);
        tokio::time::timeout(Duration::from_secs(2), gw.shutdown())
            .await
            .expect("drained at once");
        assert_eq!(s.read(&mut b).await.unwrap_or(0), 0, "closed");
    }

    fn head_of(raw: &[u8]) -> (Option<ResponseHead>, String) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(raw).unwrap();
        let mut out = Vec::new();
        let h = response_head(&resp, &mut out);
        (h, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_client_gets_the_head_without_hop_by_hop_headers() {
        let (h, out) = head_of(
            b"HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-Pod: a\r\n\r\n",
        );
        let h = h.unwrap();
        assert_eq!(
            (h.status, h.framing, h.reusable),
            (StatusCode::OK, Framing::Length(2), true)
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod: a\r\n\r\n"
        );

        let (h, _) = head_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.unwrap().framing, Framing::Chunked);
        // No length, or a close: the pod's connection is not reused, and
        // a body that ends at the close closes the client's too.
        let (h, out) = head_of(b"HTTP/1.0 200 OK\r\n\r\n");
        let h = h.unwrap();
        assert_eq!((h.framing, h.reusable), (Framing::Close, false));
        assert!(out.ends_with("connection: close\r\n\r\n"));
        let (h, _) = head_of(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let h = h.unwrap();
        assert_eq!((h.framing, h.reusable), (Framing::Length(0), false));
        // Refused: two framings, lengths that disagree.
        assert!(head_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        )
        .0
        .is_none());
        assert!(
            head_of(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
                .0
                .is_none()
        );
    }
}
