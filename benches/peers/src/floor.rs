//! The least a server can do to speak WebSocket framing: answer the opening handshake (the
//! `Sec-WebSocket-Accept` of RFC 6455 §4.2.2, nothing checked), find frame boundaries, unmask.

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The longest frame relayed; longer ones end the connection.
pub const MAX_FRAME: usize = 1 << 20;

/// Answers the opening handshake; returns what the client sent after it.
///
/// # Errors
/// The transport failed or closed, or the request has no key or is longer than 8 KiB.
pub async fn handshake(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
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
///
/// # Errors
/// An unmasked client frame, or one longer than [`MAX_FRAME`].
pub fn frames(buf: &mut Vec<u8>, batch: &mut Vec<u8>) -> anyhow::Result<(usize, bool)> {
    let mut at = 0;
    let mut count = 0;
    let mut closed = false;
    while let Some((head, len)) = header(&buf[at..])? {
        if buf.len() - at < head + len {
            break;
        }
        let b0 = buf[at];
        let key: [u8; 4] = buf[at + head - 4..at + head].try_into()?;
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
                let start = batch.len();
                batch.extend_from_slice(payload);
                unmask(&mut batch[start..], key);
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

/// XORs `data` with the masking key (RFC 6455 §5.3), eight bytes at a time.
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_client_frame_becomes_the_same_server_frame_unmasked() {
        let key = [1, 2, 3, 4];
        let plain = b"hello, floor";
        let mut buf = vec![0x81, 0x80 | plain.len() as u8];
        buf.extend_from_slice(&key);
        buf.extend(plain.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        buf.extend_from_slice(&[0x81, 0x85]);
        let mut batch = Vec::new();
        assert_eq!(frames(&mut buf, &mut batch).unwrap(), (1, false));
        assert_eq!(&batch[..2], &[0x81, plain.len() as u8]);
        assert_eq!(&batch[2..], plain);
        assert_eq!(
            buf,
            [0x81, 0x85],
            "the partial frame stays for the next read"
        );
    }
}
