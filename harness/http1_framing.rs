//! The final response head read off a connection, how an HTTP/1.1
//! response's body ends by that head, and a scanner that finds the end of a
//! chunked body: for the raw HTTP/1.1 paths that frame responses themselves
//! (the gateway's plain path, the load engine's connections), the
//! connection both read it from, and the header line both write.

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A head longer than this is refused (a request head this long goes to
/// the gateway's hyper path, which refuses it).
pub(crate) const MAX_HEAD: usize = 64 << 10;
pub(crate) const MAX_HEADERS: usize = 64;

/// A raw HTTP/1.1 client connection, with what has been read from it and
/// not yet used (nothing past a response, from a well-behaved server).
pub(crate) struct RawConn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Reads started so far: whether a body waited for one more than its
    /// head did.
    pub reads: u64,
}

impl RawConn {
    pub fn new(stream: TcpStream, capacity: usize) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(capacity),
            reads: 0,
        }
    }

    /// Reads more of the response into `buf`; false at the connection's
    /// end or on an error.
    pub async fn read_more(&mut self) -> bool {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8192);
        }
        self.reads += 1;
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }
}

/// Why no response head could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadRead {
    /// The connection ended before a byte of response: a keep-alive
    /// connection the server had closed, so the request can go again.
    Closed,
    /// It ended within a head, or sent what is not one, or one too long, or
    /// one the caller refused: the request may have been served.
    Broken,
}

/// Reads `c` up to the final response head (informational ones other than
/// 101 dropped, as hyper's client does), gives the parsed head to `head`
/// and consumes its bytes. `head` returning None refuses it.
pub(crate) async fn read_response_head<T>(
    c: &mut RawConn,
    head: impl FnOnce(&httparse::Response<'_, '_>) -> Option<T>,
) -> Result<T, HeadRead> {
    let mut got_any = !c.buf.is_empty();
    loop {
        if !c.buf.is_empty() {
            got_any = true;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&c.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = resp.code.unwrap_or(0);
                    if (100..200).contains(&code) && code != 101 {
                        c.buf.advance(n);
                        continue;
                    }
                    let taken = head(&resp).ok_or(HeadRead::Broken);
                    c.buf.advance(n);
                    return taken;
                }
                Ok(httparse::Status::Partial) if c.buf.len() <= MAX_HEAD => {}
                _ => return Err(HeadRead::Broken),
            }
        }
        if !c.read_more().await {
            return Err(if got_any {
                HeadRead::Broken
            } else {
                HeadRead::Closed
            });
        }
    }
}

/// Appends the header line `name: value` to a head being written.
pub(crate) fn put_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    /// At the server's close.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyEnd {
    pub framing: Framing,
    /// The connection can carry another request after the body.
    pub reusable: bool,
}

/// How the body of `resp` ends (`head_request`: it answers a HEAD, so has
/// none); None for a response that cannot be framed safely: a switch of
/// protocols, Transfer-Encoding with Content-Length (how requests get
/// smuggled), Content-Lengths that disagree or are not numbers.
pub(crate) fn body_end(resp: &httparse::Response<'_, '_>, head_request: bool) -> Option<BodyEnd> {
    let code = resp.code?;
    if code == 101 {
        return None;
    }
    // HTTP/1.0 closes unless it says keep-alive.
    let mut close = resp.version == Some(0);
    let (mut length, mut chunked, mut coded) = (None, false, false);
    for h in resp.headers.iter() {
        // The name's length picks the one comparison worth making: this
        // runs for every header of every response the engine reads.
        let is = |n: &str| h.name.len() == n.len() && h.name.eq_ignore_ascii_case(n);
        if is("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        } else if is("transfer-encoding") {
            coded = true;
            let last = h.value.rsplit(|&b| b == b',').next()?;
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if is("content-length") {
            // 1*DIGIT: `parse` alone would take a sign ("+5").
            let v = h.value.trim_ascii();
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u64 = std::str::from_utf8(v).ok()?.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    if coded && length.is_some() {
        return None;
    }
    let framing = if head_request || code == 204 || code == 304 {
        Framing::Length(0)
    } else if coded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    Some(BodyEnd {
        framing,
        reusable: !close && framing != Framing::Close,
    })
}

/// Where a chunked body's framing is, fed the body as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Chunk {
    /// The chunk size's hex digits (`digits` so far).
    #[default]
    Size,
    /// A chunk extension, up to the line's CR.
    Ext,
    /// The LF ending the size line.
    SizeLf,
    /// The chunk's data (`left` bytes still).
    Data,
    /// The CR, then the LF, after a chunk's data.
    DataCr,
    DataLf,
    /// The start of a trailer line, or the final empty line.
    Trailer,
    /// Inside a trailer line, up to its CR.
    TrailerLine,
    TrailerLf,
    /// The LF of the final empty line.
    LastLf,
    Done,
    Bad,
}

#[derive(Default)]
pub(crate) struct ChunkScan {
    pub state: Chunk,
    size: u64,
    digits: u8,
    left: u64,
}

impl ChunkScan {
    /// Moves through `data`; returns how many bytes of it belong to the
    /// body (all, unless it ended within).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                Chunk::Done | Chunk::Bad => return i,
                Chunk::Size => match (b as char).to_digit(16) {
                    Some(d) if self.digits < 15 => {
                        self.size = self.size * 16 + u64::from(d);
                        self.digits += 1;
                        Chunk::Size
                    }
                    None if self.digits > 0 && (b == b';' || b == b' ' || b == b'\t') => Chunk::Ext,
                    None if self.digits > 0 && b == b'\r' => Chunk::SizeLf,
                    _ => Chunk::Bad,
                },
                Chunk::Ext if b == b'\r' => Chunk::SizeLf,
                Chunk::Ext => Chunk::Ext,
                Chunk::SizeLf if b == b'\n' => {
                    let size = std::mem::take(&mut self.size);
                    self.digits = 0;
                    if size == 0 {
                        Chunk::Trailer
                    } else {
                        self.left = size;
                        Chunk::Data
                    }
                }
                Chunk::Data => {
                    let take =
                        (data.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    self.left -= take as u64;
                    i += take;
                    if self.left == 0 {
                        self.state = Chunk::DataCr;
                    }
                    continue;
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size,
                Chunk::Trailer if b == b'\r' => Chunk::LastLf,
                Chunk::Trailer | Chunk::TrailerLine if b != b'\r' => Chunk::TrailerLine,
                Chunk::TrailerLine => Chunk::TrailerLf,
                Chunk::TrailerLf if b == b'\n' => Chunk::Trailer,
                Chunk::LastLf if b == b'\n' => Chunk::Done,
                _ => Chunk::Bad,
            };
            i += 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(parts: &[&[u8]]) -> (Chunk, usize) {
        let mut s = ChunkScan::default();
        let mut used = 0;
        for p in parts {
            used += s.feed(p);
            if matches!(s.state, Chunk::Done | Chunk::Bad) {
                break;
            }
        }
        (s.state, used)
    }

    /// What `read_response_head` makes of `sent`, written in two parts
    /// (split at `cut`) and then the connection closed: the status and what
    /// is left unread.
    async fn head_of(sent: &'static [u8], cut: usize) -> (Result<u16, HeadRead>, Vec<u8>) {
        read(sent, cut, |resp| resp.code).await
    }

    async fn head_of_refused(sent: &'static [u8]) -> Result<(), HeadRead> {
        read(sent, 0, |_| None).await.0
    }

    async fn read<T>(
        sent: &'static [u8],
        cut: usize,
        head: impl FnOnce(&httparse::Response<'_, '_>) -> Option<T>,
    ) -> (Result<T, HeadRead>, Vec<u8>) {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let (a, b) = sent.split_at(cut);
            s.write_all(a).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            s.write_all(b).await.unwrap();
        });
        let mut c = RawConn::new(TcpStream::connect(addr).await.unwrap(), 64);
        let r = read_response_head(&mut c, head).await;
        server.await.unwrap();
        (r, c.buf.to_vec())
    }

    #[tokio::test]
    async fn the_final_head_is_read_past_informational_ones() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        for cut in [0, 10, 27, 40, r.len()] {
            assert_eq!(
                head_of(r, cut).await,
                (Ok(200), b"ok".to_vec()),
                "cut at {cut}"
            );
        }
        // 101 is final: what follows is another protocol's.
        let up = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\nxy";
        assert_eq!(head_of(up, 0).await, (Ok(101), b"xy".to_vec()));
        // Nothing before the close: a connection the server had closed.
        assert_eq!(head_of(b"", 0).await.0, Err(HeadRead::Closed));
        // A head cut short, not a head, one the caller refuses.
        assert_eq!(
            head_of(b"HTTP/1.1 200 OK\r\n", 5).await.0,
            Err(HeadRead::Broken)
        );
        assert_eq!(
            head_of(b"SSH-2.0-x\r\n\r\n", 0).await.0,
            Err(HeadRead::Broken)
        );
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(head_of(no_content, 0).await.0, Ok(204));
        assert_eq!(head_of_refused(no_content).await, Err(HeadRead::Broken));
    }

    #[test]
    fn a_chunked_body_ends_where_its_last_chunk_and_trailers_do() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        assert_eq!(scan_all(&[body]), (Chunk::Done, body.len()));
        // Split anywhere, the same.
        for cut in 1..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(scan_all(&[a, b]), (Chunk::Done, body.len()), "cut at {cut}");
        }
        // Trailers, and bytes past the end not taken.
        let t = b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\nHTTP/1.1";
        assert_eq!(scan_all(&[t]), (Chunk::Done, t.len() - 8));
        // Not a size, a missing CRLF after data.
        assert_eq!(scan_all(&[b"zz\r\n"]).0, Chunk::Bad);
        assert_eq!(scan_all(&[b"2\r\nabX"]).0, Chunk::Bad);
        // Unfinished: waits for more.
        assert_eq!(scan_all(&[b"5\r\nhel"]), (Chunk::Data, 6));
    }

    fn end_of(raw: &[u8], head_request: bool) -> Option<BodyEnd> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(raw).unwrap();
        body_end(&resp, head_request)
    }

    #[test]
    fn the_body_ends_as_the_head_says() {
        let end = |raw: &[u8]| end_of(raw, false).map(|e| (e.framing, e.reusable));
        let keep = b"HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(end(keep), Some((Framing::Length(2), true)));
        assert_eq!(
            end(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Some((Framing::Chunked, true))
        );
        // No length, or a close: not reused.
        assert_eq!(
            end(b"HTTP/1.0 200 OK\r\n\r\n"),
            Some((Framing::Close, false))
        );
        assert_eq!(
            end(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"),
            Some((Framing::Length(0), true))
        );
        assert_eq!(
            end(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"),
            Some((Framing::Length(0), false))
        );
        // A HEAD's answer has no body whatever its length says.
        assert_eq!(
            end_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).map(|e| e.framing),
            Some(Framing::Length(0))
        );
        // Refused: two framings, lengths that disagree, a protocol switch.
        assert_eq!(
            end(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            None
        );
        assert_eq!(
            end(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            None
        );
        assert_eq!(
            end(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
            None
        );
        // A length is digits only, none signed.
        for bad in ["+5", "-0", "5 5", "0x10", ""] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(end(raw.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(
            end(b"HTTP/1.1 200 OK\r\ncontent-length:  7 \r\n\r\n"),
            Some((Framing::Length(7), true))
        );
    }
}
