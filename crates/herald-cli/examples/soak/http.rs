//! Just enough HTTP/1.1 for the API, /metrics and the slow-body clients: a keep-alive client
//! and a response-head reader.

use crate::conn::{STEP, tcp};
use std::net::SocketAddr;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// A response head: status, and how its body is framed.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

/// The head of a request; `key` adds `X-API-Key`.
pub(crate) fn head(
    method: &str,
    path: &str,
    host: SocketAddr,
    key: Option<&str>,
    len: usize,
) -> String {
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{key}Content-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    )
}

/// Reads a response head.
pub(crate) async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Head> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {line:?}")))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse().ok();
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name == "connection" && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    Ok(Head {
        status,
        length,
        chunked,
        close,
    })
}

async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    head: &Head,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    match head.length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).await?;
        }
        None => {
            reader.read_to_end(&mut body).await?;
        }
    }
    Ok(body)
}

/// One keep-alive connection, reopened when it fails.
pub(crate) struct Http {
    addr: SocketAddr,
    key: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    pub(crate) fn new(addr: SocketAddr, key: &str) -> Self {
        Self {
            addr,
            key: key.to_owned(),
            conn: None,
        }
    }

    /// Sends a request with the API key; a failure drops the connection (the next request
    /// opens another). A kept-alive connection the server closed while it was idle (it may,
    /// after `limits.handshake_timeout`) is retried once on a new one, as HTTP clients do.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<Response, String> {
        if self.conn.is_some() {
            let reused = tokio::time::timeout(STEP, self.exchange(method, path, body)).await;
            match reused {
                Ok(Ok(response)) => return Ok(response),
                _ => self.conn = None,
            }
        }
        let result = tokio::time::timeout(STEP, self.exchange(method, path, body)).await;
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e.to_string())
            }
            Err(_) => {
                self.conn = None;
                Err("no answer in time".into())
            }
        }
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<Response> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(BufReader::new(tcp(self.addr, None).await?)),
        };
        let mut request = head(method, path, self.addr, Some(&self.key), body.len());
        request.push_str(body);
        conn.get_mut().write_all(request.as_bytes()).await?;
        let head = read_head(conn).await?;
        let body = read_body(conn, &head).await?;
        if head.close || (head.length.is_none() && !head.chunked) {
            self.conn = None;
        }
        Ok(Response {
            status: head.status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
