//! A connection's first request head, read before hyper takes the connection.
//!
//! hyper allocates about 30 KiB for each connection it serves, whatever arrived: an 8 KiB
//! write buffer, a read buffer that grows to 16 KiB on its second read, the connection state.
//! Until a connection's first head is complete the hub holds only the bytes the client sent
//! (at most `HandshakeLimits::max_head_size`), so clients that connect and send nothing, or
//! half a head, cost little more than their socket. hyper then gets those bytes ahead of the
//! stream ([`Prefixed`]) and parses the head itself: every rule about heads stays hyper's.

use bytes::{Buf, Bytes};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read per `poll_read`, into a buffer on the stack: between polls nothing is held but
/// what arrived.
const CHUNK: usize = 4096;

/// Reads until the bytes hold an empty line (the end of a head; RFC 9112 §2.1), or `max`
/// bytes arrived (hyper answers 431 to those), and returns them. `None`: the client closed
/// first.
///
/// # Errors
/// When reading fails.
pub(crate) async fn read_first_head<S>(io: &mut S, max: usize) -> io::Result<Option<Bytes>>
where
    S: AsyncRead + Unpin,
{
    let max = max.max(1);
    let mut head = Vec::new();
    std::future::poll_fn(|cx| poll_head(io, cx, &mut head, max)).await
}

fn poll_head<S>(
    io: &mut S,
    cx: &mut Context<'_>,
    head: &mut Vec<u8>,
    max: usize,
) -> Poll<io::Result<Option<Bytes>>>
where
    S: AsyncRead + Unpin,
{
    loop {
        let mut chunk = [const { MaybeUninit::uninit() }; CHUNK];
        let room = CHUNK.min(max - head.len());
        let mut buf = ReadBuf::uninit(&mut chunk[..room]);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut buf))?;
        let read = buf.filled();
        if read.is_empty() {
            return Poll::Ready(Ok(None));
        }
        // The end may straddle the previous read.
        let scan_from = head.len().saturating_sub(3);
        reserve_capped(head, read.len(), max);
        head.extend_from_slice(read);
        if ends_head(&head[scan_from..]) || head.len() >= max {
            return Poll::Ready(Ok(Some(Bytes::from(std::mem::take(head)))));
        }
    }
}

/// Room for `more` bytes, growing by doubling but never past `max` (`len + more <= max`).
fn reserve_capped(head: &mut Vec<u8>, more: usize, max: usize) {
    let needed = head.len() + more;
    if needed > head.capacity() {
        let target = (head.capacity() * 2).clamp(needed, max.max(needed));
        head.reserve_exact(target - head.len());
    }
}

/// An empty line: CRLF CRLF, or the bare LFs a lenient parser (httparse) also accepts. One
/// pass, as a slow client may make this run on every few bytes it sends. A false positive
/// only hands hyper the connection early.
fn ends_head(bytes: &[u8]) -> bool {
    // A line just ended, and nothing but CR came since.
    let mut line_ended = false;
    for &byte in bytes {
        match byte {
            b'\n' if line_ended => return true,
            b'\n' => line_ended = true,
            b'\r' => {}
            _ => line_ended = false,
        }
    }
    false
}

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The bytes not read yet from the prefix, and the stream.
    pub(crate) fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        if self.prefix.is_empty() {
            // Frees the head's buffer, which an emptied `Bytes` would keep.
            self.prefix = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn first_head(pieces: &[&[u8]], max: usize) -> (Option<Bytes>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        for piece in pieces {
            client.write_all(piece).await.unwrap();
        }
        drop(client);
        let head = read_first_head(&mut server, max).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        (head, rest)
    }

    #[tokio::test]
    async fn stops_at_the_empty_line_even_split_across_reads() {
        let (head, _) = first_head(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r", b"\n"], 1024).await;
        assert_eq!(&head.unwrap()[..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, _) = first_head(&[b"GET / HTTP/1.1\nHost: x\n\n"], 1024).await;
        assert!(head.is_some());
        let (head, _) = first_head(&[b"GET / HTTP/1.1\r\nHost: x\r", b"\n", b"\r\n"], 1024).await;
        assert!(head.is_some());
    }

    #[test]
    fn an_empty_line_ends_a_head_and_nothing_else_does() {
        for end in [&b"a\r\n\r\n"[..], b"a\n\n", b"a\n\r\n", b"\r\n\r\n"] {
            assert!(ends_head(end), "{end:?}");
        }
        for not in [&b"a\r\nb\r\n"[..], b"a\r\r", b"\n", b"a\nb\n", b""] {
            assert!(!ends_head(not), "{not:?}");
        }
    }

    #[tokio::test]
    async fn stops_at_the_limit_without_the_end_of_the_head() {
        let long = vec![b'a'; 10_000];
        let (head, rest) = first_head(&[b"GET / HTTP/1.1\r\nX: ", &long], 4096).await;
        let head = head.unwrap();
        assert_eq!(head.len(), 4096);
        assert_eq!(
            rest.len(),
            10_000 + 19 - 4096,
            "nothing past the limit was read"
        );
    }

    #[tokio::test]
    async fn a_client_that_closes_first_has_no_head() {
        assert!(first_head(&[], 1024).await.0.is_none());
        assert!(first_head(&[b"GET / HT"], 1024).await.0.is_none());
    }

    #[tokio::test]
    async fn prefixed_reads_the_prefix_then_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.unwrap();
        drop(client);
        let mut stream = Prefixed::new(Bytes::from_static(b"hello"), server);
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn growth_never_passes_the_limit() {
        let mut head = Vec::new();
        for more in [3000, 3000, 3000, 3000, 4384] {
            reserve_capped(&mut head, more, 16_384);
            head.extend(std::iter::repeat_n(0, more));
            assert!(head.capacity() <= 16_384, "{}", head.capacity());
        }
    }
}
