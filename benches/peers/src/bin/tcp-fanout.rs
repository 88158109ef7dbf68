//! The raw TCP fan-out floor: what the kernel charges to write the same bytes to N sockets.
//!
//! Usage: `tcp-fanout [ADDR]` (default `127.0.0.1:9004`), one thread. A connection's opening
//! handshake is answered (the `Sec-WebSocket-Accept` of RFC 6455 §4.2.2, nothing checked) so
//! WebSocket clients can connect; after that there is no WebSocket logic beyond finding frame
//! boundaries. Whatever complete frames one read from a client brings are unmasked into one
//! batch of server frames, and that batch goes to every other connection with one `write` per
//! socket (a socket that cannot take all of it is waited for: the floor never drops). A Close
//! frame is answered and ends the connection.

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::rc::Rc;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const DEFAULT_ADDR: &str = "127.0.0.1:9004";
/// The longest frame relayed; longer ones end the connection.
const MAX_FRAME: usize = 1 << 20;

/// Every open connection after its handshake, by id.
type Room = Rc<RefCell<HashMap<u64, Rc<TcpStream>>>>;

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the Tokio runtime")?;
    tokio::task::LocalSet::new().block_on(&runtime, serve(&addr))
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {local}")?;
        out.flush()?;
    }
    let room: Room = Rc::default();
    let mut ids = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        ids += 1;
        let (id, room) = (ids, room.clone());
        tokio::task::spawn_local(async move {
            if let Err(e) = connection(stream, id, &room).await {
                eprintln!("connection error: {e}");
            }
            room.borrow_mut().remove(&id);
        });
    }
}

async fn connection(mut stream: TcpStream, id: u64, room: &Room) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = handshake(&mut stream).await?;
    let stream = Rc::new(stream);
    room.borrow_mut().insert(id, stream.clone());
    let mut batch = Vec::new();
    loop {
        let (frames, closed) = frames(&mut buf, &mut batch)?;
        if frames > 0 {
            relay(room, id, &batch).await?;
            batch.clear();
        }
        if closed {
            room.borrow_mut().remove(&id);
            // RFC 6455 §5.5.1: answer the Close; an empty one will do for the floor.
            let _ = write_all(&stream, &[0x88, 0x00]).await;
            return Ok(());
        }
        buf.reserve(16 * 1024);
        stream.readable().await?;
        match stream.try_read_buf(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes `batch` to every connection but `from`: one write each, more only when the socket
/// took part of it.
async fn relay(room: &Room, from: u64, batch: &[u8]) -> anyhow::Result<()> {
    let targets: Vec<Rc<TcpStream>> = room
        .borrow()
        .iter()
        .filter(|(id, _)| **id != from)
        .map(|(_, s)| s.clone())
        .collect();
    for target in targets {
        // A subscriber that went away is its own task's business.
        let _ = write_all(&target, batch).await;
    }
    Ok(())
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Answers the opening handshake; returns what the client sent after it.
async fn handshake(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("closed during the handshake");
        }
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 8192 {
            bail!("handshake request too long");
        }
    };
    let head = std::str::from_utf8(&buf[..end])?;
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .context("no Sec-WebSocket-Key")?;
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(reply.as_bytes()).await?;
    Ok(buf.split_off(end))
}

/// Moves every complete client frame at the front of `buf` into `batch` as a server frame
/// (same first byte, unmasked payload); returns how many data frames, and whether a Close came.
fn frames(buf: &mut Vec<u8>, batch: &mut Vec<u8>) -> anyhow::Result<(usize, bool)> {
    let mut at = 0;
    let mut count = 0;
    let mut closed = false;
    while let Some((head, len)) = header(&buf[at..])? {
        if buf.len() - at < head + len {
            break;
        }
        let (b0, key) = (buf[at], &buf[at + head - 4..at + head]);
        let key: [u8; 4] = key.try_into()?;
        let payload = &buf[at + head..at + head + len];
        match b0 & 0x0f {
            0x8 => closed = true,
            0x0..=0x2 => {
                count += 1;
                batch.push(b0);
                match len {
                    0..=125 => batch.push(len as u8),
                    126..=0xffff => {
                        batch.push(126);
                        batch.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    _ => {
                        batch.push(127);
                        batch.extend_from_slice(&(len as u64).to_be_bytes());
                    }
                }
                batch.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            _ => {}
        }
        at += head + len;
        if closed {
            break;
        }
    }
    buf.drain(..at);
    Ok((count, closed))
}

/// The header size and payload length of the masked frame at the front of `data`, once the
/// whole header is there.
fn header(data: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let Some(&b1) = data.get(1) else {
        return Ok(None);
    };
    anyhow::ensure!(b1 & 0x80 != 0, "a client frame must be masked");
    let (ext, len) = match b1 & 0x7f {
        126 => (
            2,
            data.get(2..4)
                .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
        ),
        127 => (
            8,
            data.get(2..10)
                .map(|b| b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))),
        ),
        n => (0, Some(u64::from(n))),
    };
    let Some(len) = len else {
        return Ok(None);
    };
    let len = usize::try_from(len).ok().filter(|&l| l <= MAX_FRAME);
    let len = len.context("frame longer than the floor relays")?;
    Ok(Some((2 + ext + 4, len)))
}
