//! One HTTP/1.1 client connection driven by whoever awaits it: the request,
//! the response and the connection's I/O are polled in the caller's task,
//! so an exchange costs no hand-off between tasks (hyper's usual split puts
//! the connection in a task of its own and wakes it for every request, and
//! its pooled client adds a channel and a pool lock on top). Nothing runs
//! while nobody polls it, e.g. while it waits idle in a pool; a close by
//! the peer meanwhile shows on the next use, which hands the request back.
//!
//! Used by the gateway's upstream connections on its hyper path.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub(crate) struct H1Conn<B: Body + 'static> {
    sender: http1::SendRequest<B>,
    conn: Pin<Box<http1::Connection<TokioIo<TcpStream>, B>>>,
    /// The connection future ended (closed by the peer, or failed).
    closed: bool,
}

impl<B> H1Conn<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Takes a connected stream (Nagle off: small requests, and it would
    /// delay every write).
    pub async fn handshake(stream: TcpStream) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Self {
            sender,
            conn: Box::pin(conn),
            closed: false,
        })
    }

    /// Waits until the connection can take a request; false when it ended
    /// instead (the peer closed it while it was idle).
    pub async fn ready(&mut self) -> bool {
        let Self {
            sender,
            conn,
            closed,
        } = self;
        poll_fn(|cx| {
            // The I/O first: a close that arrived while the connection sat
            // idle shows now, before a request is committed to it (the
            // sender alone still says ready).
            if !poll_conn(conn, closed, cx) {
                return Poll::Ready(false);
            }
            sender.poll_ready(cx).map(|r| r.is_ok())
        })
        .await
    }

    /// Sends `req` (after [`H1Conn::ready`]) and waits for the response head;
    /// its body is read through [`H1Conn::poll_io`].
    /// `Err(Some)` gives the request back when it never left, so it can be
    /// retried on another connection. After any error the connection is
    /// unusable.
    pub async fn send(
        &mut self,
        req: Request<B>,
    ) -> Result<Response<Incoming>, Option<Request<B>>> {
        let Self {
            sender,
            conn,
            closed,
        } = self;
        let send = sender.try_send_request(req);
        match drive(conn, closed, send).await {
            Some(Ok(resp)) => Ok(resp),
            Some(Err(mut e)) => Err(e.take_message()),
            None => Err(None),
        }
    }

    /// Polls the connection's I/O once, for a caller with a poll method of
    /// its own (a body streamed on); false once the connection has ended.
    pub fn poll_io(&mut self, cx: &mut Context<'_>) -> bool {
        poll_conn(&mut self.conn, &mut self.closed, cx)
    }

    pub fn is_open(&self) -> bool {
        !self.closed
    }
}

/// One poll of the connection's I/O; false once it has ended.
fn poll_conn<B>(
    conn: &mut Pin<Box<http1::Connection<TokioIo<TcpStream>, B>>>,
    closed: &mut bool,
    cx: &mut Context<'_>,
) -> bool
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    if !*closed && conn.as_mut().poll(cx).is_ready() {
        *closed = true;
    }
    !*closed
}

async fn drive<B, F>(
    conn: &mut Pin<Box<http1::Connection<TokioIo<TcpStream>, B>>>,
    closed: &mut bool,
    fut: F,
) -> Option<F::Output>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    F: Future,
{
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let open = poll_conn(conn, closed, cx);
        // What the connection just read (a response head, a body frame)
        // may have completed `fut`: taking it now, in this poll, spares it
        // a trip to the back of the scheduler's queue (the wake-up the
        // connection sent this task finds nothing left to do).
        match fut.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending if open => Poll::Pending,
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await
}
