//! What the tests that run `herald serve` processes share.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use herald_hub::auth::{Claims, issue_hs256};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One `herald serve` process on 127.0.0.1, port 0, without a config file.
pub struct Node {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Node {
    /// Starts `herald serve --listen 127.0.0.1:0 ARGS…` and waits until it listens; its
    /// stderr keeps being drained so it never blocks on a full pipe.
    pub async fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("HERALD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("herald: listening on http://") {
                    return addr.parse().unwrap();
                }
            }
            panic!("herald serve exited before listening");
        })
        .await
        .expect("herald serve listens");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    /// SIGKILL: no close frames, no goodbye.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

/// An HS256 token under `secret` for `user` on every channel, valid for ten minutes.
pub fn token(secret: &str, user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = Claims {
        sub: user.into(),
        exp,
        channels: vec!["*".into()],
        subscribe: vec![],
        publish: vec![],
        subs: vec![],
    };
    issue_hs256(secret, &claims).unwrap()
}
