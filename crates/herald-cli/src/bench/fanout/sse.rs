//! A fan-out subscriber over server-sent events (`GET /sse`): a raw HTTP/1.1 request and a
//! byte scan of the response for `data:` lines, as cheap per delivery as the WebSocket side.
//! The hub writes whole events per chunk, so a chunk-size line never splits an event.

use super::number_after;
use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One subscriber's event stream.
pub(super) struct Feed {
    tcp: TcpStream,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already scanned into lines.
    start: usize,
}

impl Feed {
    /// Opens `GET /sse?channel=…` on the hub at `url` (`ws://host:port/…`); returns the feed
    /// and the channel's offset from its `ready` event.
    pub(super) async fn open(url: &str, channel: &str) -> anyhow::Result<(Self, u64)> {
        let host = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        let mut tcp = TcpStream::connect(host).await.context("connect")?;
        tcp.set_nodelay(true)?;
        let request = format!("GET /sse?channel={channel} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut feed = Self {
            tcp,
            buffer: Vec::with_capacity(8192),
            start: 0,
        };
        let mut ready = false;
        loop {
            let line = feed.line().await?.context("closed before ready")?;
            if line.starts_with("HTTP/1.1 ") && !line.starts_with("HTTP/1.1 200") {
                anyhow::bail!("event stream refused: {line}");
            }
            ready |= line == "event: ready";
            if ready && line.starts_with("data: ") {
                return Ok((feed, number_after(&line, "\"offset\":").unwrap_or(0)));
            }
        }
    }

    /// The next `data:` line holding a publication; `None` at the end of the stream.
    pub(super) async fn next(&mut self) -> anyhow::Result<Option<String>> {
        while let Some(line) = self.line().await? {
            if line.starts_with("data: {\"push\":\"pub\"") {
                return Ok(Some(line));
            }
        }
        Ok(None)
    }

    async fn line(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(end) = self.buffer[self.start..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.buffer[self.start..self.start + end]);
                let line = line.trim_end_matches('\r').to_owned();
                self.start += end + 1;
                return Ok(Some(line));
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            let mut chunk = [0u8; 16 * 1024];
            let n = self.tcp.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}
