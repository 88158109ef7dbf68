//! An event stream (`text/event-stream`) read over a raw socket, as a browser parses it.

use super::{Server, WAIT};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One event as an `EventSource` dispatches it (a comment has kind `:`).
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub kind: String,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// An event stream read over a raw socket, chunked encoding and all.
pub struct Stream {
    tcp: TcpStream,
    /// Body bytes not yet parsed into events.
    body: Vec<u8>,
    /// Raw bytes not yet de-chunked.
    raw: Vec<u8>,
    /// The last chunk arrived.
    done: bool,
    pub status: u16,
    pub head: String,
}

impl Stream {
    pub async fn open(server: &Server, target: &str, headers: &str) -> Self {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{headers}\r\n",
            server.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut stream = Self {
            tcp,
            body: Vec::new(),
            raw: Vec::new(),
            done: false,
            status: 0,
            head: String::new(),
        };
        while !stream.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(stream.fill().await, "the response head arrives");
        }
        let end = stream
            .raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        stream.head = String::from_utf8_lossy(&stream.raw[..end]).into_owned();
        stream.raw.drain(..end);
        stream.status = stream.head.split(' ').nth(1).unwrap().parse().unwrap();
        stream
    }

    /// Reads more raw bytes; false at EOF.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("bytes in time")
            .unwrap_or(0);
        self.raw.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Moves complete chunks from `raw` to `body`; true after the last (empty) chunk.
    fn dechunk(&mut self) -> bool {
        loop {
            let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let size = std::str::from_utf8(&self.raw[..line]).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if self.raw.len() < line + 2 + size + 2 {
                return false;
            }
            self.body
                .extend_from_slice(&self.raw[line + 2..line + 2 + size]);
            self.raw.drain(..line + 2 + size + 2);
            if size == 0 {
                return true;
            }
        }
    }

    /// The next event or comment; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            self.done |= self.dechunk();
            let ended = self.done;
            if let Some(end) = self.body.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..end + 2).collect();
                return Some(parse(&String::from_utf8(block).unwrap()));
            }
            if ended || !self.fill().await {
                return None;
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn event(&mut self) -> Event {
        loop {
            let event = self.next().await.expect("an event");
            if event.kind != ":" {
                return event;
            }
        }
    }
}

fn parse(block: &str) -> Event {
    let mut event = Event {
        kind: "message".into(),
        ..Event::default()
    };
    let mut data = Vec::new();
    for line in block.lines().filter(|l| !l.is_empty()) {
        if line.starts_with(':') {
            event.kind = ":".into();
            continue;
        }
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "event" => event.kind = value.into(),
            "id" => event.id = Some(value.into()),
            "data" => data.push(value),
            other => panic!("unknown field {other}"),
        }
    }
    event.data = data.join("\n");
    event
}
