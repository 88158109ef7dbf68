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
use std::rc::Rc;

use anyhow::Context as _;
use herald_bench_peers::floor::{frames, handshake};
use tokio::net::TcpStream;

const DEFAULT_ADDR: &str = "127.0.0.1:9004";

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
    let listener = herald_bench_peers::listen(addr).await?;
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
