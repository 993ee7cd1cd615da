//! The engine's HTTP connections.
//!
//! - HTTP/1.1: a [`RawConn`], one connection owned by one connection worker
//!   (`workers`), which drives it in its own task: the request's bytes are
//!   written as prepared once for the run, and the response is parsed with
//!   httparse and framed here. hyper's client cost about twice wrk's user
//!   time per request (its dispatch channel, a `HeaderMap` per response).
//! - HTTP/2 (prior knowledge): one connection, multiplexed; re-dialled by the
//!   next request after it closes.

use bytes::{Buf, Bytes};
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(super) use crate::http1_framing::RawConn;
use crate::http1_framing::{body_end, read_response_head, Chunk, ChunkScan, Framing};

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
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| SendError::Connect)?;
    // Small requests; Nagle would delay every write.
    stream.set_nodelay(true).map_err(|_| SendError::Connect)?;
    Ok(stream)
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

/// How an exchange failed. After either the connection is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// The request never left: the server had closed the keep-alive
    /// connection while it was idle. It can go again on another.
    NotSent,
    /// Anything else: the server may have seen the request.
    Broken,
}

pub(super) async fn dial_h1(target: &Target) -> Result<RawConn, SendError> {
    Ok(RawConn::new(connect(target).await?, 4096))
}

/// Whether `c` can take a request: nothing unread on it and no close seen
/// (tokio's readiness answers without a system call unless the socket has
/// news).
fn idle_and_open(c: &mut RawConn) -> bool {
    if !c.buf.is_empty() {
        return false;
    }
    let mut probe = [0u8; 1];
    matches!(c.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// One exchange on a worker's connection: writes `request` (a whole
/// HTTP/1.1 request; `head`: its method is HEAD) and reads the whole
/// response, discarding its body; the status code, and whether the
/// connection can carry another request.
pub(super) async fn exchange(
    c: &mut RawConn,
    request: &[u8],
    head: bool,
    t: &mut Times,
) -> Result<(u16, bool), Failed> {
    if !idle_and_open(c) {
        return Err(Failed::NotSent);
    }
    t.sent = Some(Instant::now());
    if c.stream.write_all(request).await.is_err() {
        return Err(Failed::Broken);
    }
    let (code, end) = read_response_head(c, |resp| Some((resp.code?, body_end(resp, head)?)))
        .await
        .map_err(|_| Failed::Broken)?;
    let headers = Instant::now();
    t.headers = Some(headers);
    let head_reads = c.reads;
    let whole = match end.framing {
        Framing::Length(n) => skip_length(c, n).await,
        Framing::Chunked => skip_chunked(c).await,
        Framing::Close => {
            c.buf.clear();
            while c.read_more().await {
                c.buf.clear();
            }
            true
        }
    };
    if !whole {
        return Err(Failed::Broken);
    }
    // A body that came in the read that completed the head ended then too
    // (most do): the clock is not read again.
    t.done = Some(if c.reads == head_reads {
        headers
    } else {
        Instant::now()
    });
    // Bytes past the response: not something a client can make sense of.
    Ok((code, end.reusable && c.buf.is_empty()))
}

/// Reads and drops `n` bytes of body; false if the connection ended first.
async fn skip_length(c: &mut RawConn, mut n: u64) -> bool {
    loop {
        let take = c.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        c.buf.advance(take);
        n -= take as u64;
        if n == 0 {
            return true;
        }
        if !c.read_more().await {
            return false;
        }
    }
}

/// Reads and drops a chunked body; false if it is malformed or the
/// connection ended first.
async fn skip_chunked(c: &mut RawConn) -> bool {
    let mut scan = ChunkScan::default();
    loop {
        let used = scan.feed(&c.buf);
        c.buf.advance(used);
        match scan.state {
            Chunk::Done => return true,
            Chunk::Bad => return false,
            _ => {}
        }
        if !c.read_more().await {
            return false;
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
        let io = TokioIo::new(connect(&self.target).await?);
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A server on 127.0.0.1 that answers every request it reads with
    /// `answer` (closing the connection after it if `close`); counts
    /// connections.
    async fn server(answer: &'static [u8], close: bool) -> (Target, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // One answer per request head read.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if stream.write_all(answer).await.is_err() || close {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let target = Target {
            host: "127.0.0.1".into(),
            port,
        };
        (target, accepted)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

    #[tokio::test]
    async fn one_connection_serves_request_after_request_whatever_the_framing() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ] {
            let (target, accepted) = server(answer, false).await;
            let mut c = dial_h1(&target).await.expect("dial");
            for _ in 0..3 {
                let mut t = Times::default();
                let got = exchange(&mut c, GET, false, &mut t).await;
                assert!(matches!(got, Ok((200 | 201, true))), "{got:?}");
                assert!(t.sent <= t.headers && t.headers <= t.done && t.done.is_some());
            }
            assert_eq!(accepted.load(Ordering::Relaxed), 1, "kept alive");
        }
    }

    #[tokio::test]
    async fn a_body_to_the_close_or_a_close_ends_the_connection() {
        let (target, _) = server(b"HTTP/1.1 200 OK\r\n\r\nto the end", true).await;
        let mut c = dial_h1(&target).await.expect("dial");
        assert_eq!(
            exchange(&mut c, GET, false, &mut Times::default()).await,
            Ok((200, false))
        );

        let answer = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        let (target, _) = server(answer, true).await;
        let mut c = dial_h1(&target).await.expect("dial");
        assert_eq!(
            exchange(&mut c, GET, false, &mut Times::default()).await,
            Ok((204, false))
        );
        // Used again anyway once the close has arrived: never sent.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = exchange(&mut c, GET, false, &mut Times::default()).await;
        assert_eq!(again, Err(Failed::NotSent));
    }

    #[tokio::test]
    async fn a_response_that_cannot_be_framed_breaks_the_exchange() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"not http\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        ] {
            let (target, _) = server(answer, true).await;
            let mut c = dial_h1(&target).await.expect("dial");
            let got = exchange(&mut c, GET, false, &mut Times::default()).await;
            assert_eq!(
                got,
                Err(Failed::Broken),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
        // A HEAD's answer has no body, whatever its length says.
        let (target, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", false).await;
        let mut c = dial_h1(&target).await.expect("dial");
        let head = b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n";
        for _ in 0..2 {
            assert_eq!(
                exchange(&mut c, head, true, &mut Times::default()).await,
                Ok((200, true))
            );
        }
    }
}
