//! Opening a raw benchmark connection: TCP, then herald's client handshake (RFC 6455 §4.1),
//! leaving the stream to the caller's own framing.

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use herald::proto::handshake::{ClientHandshake, ClientRequest};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where to connect: the request, and the address resolved once for every connection.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    request: ClientRequest,
    addr: SocketAddr,
}

impl Target {
    /// Parses a `ws://` URL and resolves its host.
    ///
    /// # Errors
    /// For an invalid URL, a `wss://` one, or a host that does not resolve.
    pub(crate) async fn resolve(url: &str) -> anyhow::Result<Self> {
        let request = ClientRequest::new(url)?;
        if request.is_tls() {
            bail!("this mode writes raw frames and supports only ws:// URLs");
        }
        let host = (request.host(), request.port());
        let addr = tokio::net::lookup_host(host)
            .await
            .with_context(|| format!("resolving {}", request.host()))?
            .next()
            .with_context(|| format!("{} has no address", request.host()))?;
        Ok(Self { request, addr })
    }
}

/// Fills `dst` from the operating system's generator (through rustls' ring provider).
pub(crate) fn random(dst: &mut [u8]) {
    let random = rustls::crypto::ring::default_provider().secure_random;
    if random.fill(dst).is_err() {
        // Without OS randomness, fall back to the clock: keys here need only differ.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for (i, byte) in dst.iter_mut().enumerate() {
            *byte = (nanos >> ((i % 4) * 8)) as u8;
        }
    }
}

/// Connects and does the handshake within `timeout`; returns the stream and the bytes the
/// server sent after its 101 response.
///
/// # Errors
/// When the connection fails, times out, or the server refuses or answers wrongly.
pub(crate) async fn open(
    target: &Target,
    timeout: Duration,
) -> anyhow::Result<(TcpStream, BytesMut)> {
    tokio::time::timeout(timeout, exchange(target))
        .await
        .map_err(|_| anyhow::anyhow!("no handshake within {timeout:?}"))?
}

async fn exchange(target: &Target) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut tcp = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    tcp.set_nodelay(true)?;
    let (mut handshake, request) = ClientHandshake::new(&target.request, &mut random);
    tcp.write_all(&request).await?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if handshake.poll_response()?.is_some() {
            return Ok((tcp, handshake.into_remaining()));
        }
        buf.clear();
        if tcp.read_buf(&mut buf).await? == 0 {
            handshake.receive_eof();
        } else {
            handshake.receive(&buf);
        }
    }
}
