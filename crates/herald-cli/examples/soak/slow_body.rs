//! Hostile pattern 4, slow bodies: `POST /api/publish` sending its body one byte per second,
//! with the right API key and, beside it, without one.
//!
//! Expected once `limits.request_timeout` and the early key check land: with the key, 408
//! at `request_timeout`; without it, 401 at once, before a byte of the body was sent.

use crate::Target;
use crate::check::Section;
use crate::conn::tcp;
use crate::http::{head, read_head};
use crate::run::Run;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::time::Instant;

/// A valid publish of exactly this many bytes, so a server that waits for it all answers
/// 200 after this many seconds.
const BODY_LEN: usize = 48;
/// Without the key, the body's first byte waits this long for the 401.
const UNKEYED_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Attempt {
    status: Option<u16>,
    /// Seconds from the request head to the answer (or to the end of the attempt).
    after: f64,
    body_sent: usize,
    end: &'static str,
}

fn body() -> Vec<u8> {
    let start = r#"{"channel":"soak:slow","data":""#;
    let mut body = start.as_bytes().to_vec();
    body.resize(BODY_LEN - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

pub(crate) async fn soak(target: Arc<Target>, run: Arc<Run>) -> (Vec<Attempt>, Vec<Attempt>) {
    tokio::join!(repeat(&target, &run, true), repeat(&target, &run, false))
}

async fn repeat(target: &Target, run: &Run, keyed: bool) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    while !run.is_over() {
        let started = Instant::now();
        attempts.push(attempt(target, run, keyed).await);
        // At most one attempt a second, however fast the server answers.
        run.sleep_until(started + Duration::from_secs(1)).await;
    }
    attempts
}

async fn attempt(target: &Target, run: &Run, keyed: bool) -> Attempt {
    let mut a = Attempt {
        status: None,
        after: 0.0,
        body_sent: 0,
        end: "run over",
    };
    let Ok(stream) = tcp(target.addr, None).await else {
        a.end = "connect failed";
        return a;
    };
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let key = keyed.then_some(target.key.as_str());
    let request = head("POST", "/api/publish", target.addr, key, BODY_LEN);
    if write.write_all(request.as_bytes()).await.is_err() {
        a.end = "write failed";
        return a;
    }
    let start = Instant::now();
    let body = body();
    let mut next_byte = start
        + if keyed {
            Duration::from_secs(1)
        } else {
            UNKEYED_GRACE
        };
    let mut writable = true;
    let answer = read_head(&mut read);
    tokio::pin!(answer);
    loop {
        tokio::select! {
            result = &mut answer => {
                (a.status, a.end) = match result {
                    Ok(h) => (Some(h.status), "answered"),
                    Err(_) => (None, "closed without an answer"),
                };
                break;
            }
            () = tokio::time::sleep_until(next_byte), if writable && a.body_sent < BODY_LEN => {
                let byte = &body[a.body_sent..=a.body_sent];
                match write.write_all(byte).await {
                    Ok(()) => a.body_sent += 1,
                    Err(_) => writable = false,
                }
                next_byte += Duration::from_secs(1);
            }
            None = run.until(std::future::pending::<()>()) => break,
        }
    }
    a.after = start.elapsed().as_secs_f64();
    a
}

fn summary(attempts: &[Attempt]) -> String {
    let mut by: BTreeMap<String, (usize, f64, f64, usize)> = BTreeMap::new();
    for a in attempts {
        let key = a.status.map_or(a.end.to_owned(), |s| format!("HTTP {s}"));
        let e = by.entry(key).or_insert((0, f64::MAX, 0.0, 0));
        *e = (
            e.0 + 1,
            e.1.min(a.after),
            e.2.max(a.after),
            e.3.max(a.body_sent),
        );
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(k, (n, lo, hi, sent))| {
            format!("{n}× {k} after {lo:.1}–{hi:.1} s (≤ {sent} body bytes sent)")
        })
        .collect();
    if parts.is_empty() {
        "no attempts".into()
    } else {
        parts.join("; ")
    }
}

/// Expected: 408 at `request_timeout` with the key; 401 before any body byte without it.
/// An attempt the run's end cut short counts only if it already waited past the bound.
pub(crate) fn judge(keyed: &[Attempt], unkeyed: &[Attempt], request_timeout: Duration) -> Section {
    let mut s = Section::new("hostile 4: slow bodies on POST /api/publish (one byte per second)");
    s.line(format!("with the API key: {}", summary(keyed)));
    s.line(format!("without a key: {}", summary(unkeyed)));
    let bound = request_timeout.as_secs_f64() + 1.5;
    let keyed_bad = keyed
        .iter()
        .filter(|a| match a.status {
            Some(status) => status != 408 || a.after > bound,
            None => a.after > bound,
        })
        .count();
    s.check(
        format!("with the key: 408 within request_timeout + 1.5 s ({bound:.1} s)"),
        keyed_bad == 0 && keyed.iter().any(|a| a.status == Some(408)),
        format!("{keyed_bad} of {} attempts otherwise", keyed.len()),
    );
    let grace = UNKEYED_GRACE.as_secs_f64();
    let unkeyed_bad = unkeyed
        .iter()
        .filter(|a| match a.status {
            Some(status) => status != 401 || a.body_sent > 0,
            None => a.after > grace,
        })
        .count();
    s.check(
        format!("without a key: 401 before any body byte (within {grace:.0} s)"),
        unkeyed_bad == 0 && unkeyed.iter().any(|a| a.status == Some(401)),
        format!("{unkeyed_bad} of {} attempts otherwise", unkeyed.len()),
    );
    s
}
