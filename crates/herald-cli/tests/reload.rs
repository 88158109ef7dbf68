//! `herald serve --config FILE` and SIGHUP: an edited file's origins and limits apply to the
//! next requests, a setting that needs a restart is reported and left alone, and a broken
//! file is refused with its error while the server keeps the configuration it runs.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The status of `GET path` with `origin`, read from the status line alone (an event stream
/// that starts does not end).
async fn status(addr: SocketAddr, path: &str, origin: &str) -> u16 {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

/// The value of the `herald_config_reloads_total{outcome}` sample, 0 when absent.
async fn reloads(addr: SocketAddr, outcome: &str) -> u64 {
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let sample = format!("herald_config_reloads_total{{outcome=\"{outcome}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&sample))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends SIGHUP and waits until the reload counted `outcome` once more.
async fn hup(child: &Child, addr: SocketAddr, outcome: &str) {
    let before = reloads(addr, outcome).await;
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    for _ in 0..200 {
        if reloads(addr, outcome).await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {outcome} reload counted");
}

fn config(origin: &str, max_subscriptions: usize, listen: &str) -> String {
    format!(
        "listen = \"{listen}\"\n\n[origins]\nallowed = [\"{origin}\"]\nallow_same_host = false\n\n\
         [limits]\nmax_subscriptions = {max_subscriptions}\n"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// `herald serve --config file`: the process, its address, and its log lines as they come.
async fn serve(file: &Path) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .arg("--config")
        .arg(file)
        .env_remove("HERALD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("herald: listening on http://") {
                return addr.parse().unwrap();
            }
        }
        panic!("herald serve exited before listening");
    })
    .await
    .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, addr, log)
}

#[tokio::test]
async fn sighup_applies_origins_and_limits_and_refuses_a_broken_file() {
    let dir = std::env::temp_dir().join(format!("herald-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    write(&file, &config("https://old.example", 2, "127.0.0.1:0"));
    let (mut child, addr, log) = serve(&file).await;
    let logged = |needle: &str| log.lock().unwrap().iter().any(|l| l.contains(needle));

    let (old, new) = ("https://old.example", "https://new.example");
    let three = "/sse?channel=a&channel=b&channel=c";
    assert_eq!(status(addr, "/sse?channel=a", old).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", new).await, 403);
    assert_eq!(status(addr, three, old).await, 400, "max_subscriptions 2");

    // The new origin and limit apply; the new listen address needs a restart.
    write(&file, &config(new, 5, "127.0.0.1:1"));
    hup(&child, addr, "applied").await;
    assert_eq!(status(addr, "/sse?channel=a", new).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", old).await, 403);
    assert_eq!(status(addr, three, new).await, 200, "max_subscriptions 5");
    assert!(logged("configuration reloaded"));
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("need a restart") && l.contains("listen")),
        "{:?}",
        log.lock().unwrap()
    );

    // A file that breaks a rule, then one that does not parse: refused, nothing changes.
    write(
        &file,
        &format!("{}queue_size = 0\n", config(old, 1, "127.0.0.1:0")),
    );
    hup(&child, addr, "refused").await;
    write(&file, "listen = \n");
    hup(&child, addr, "refused").await;
    assert_eq!(status(addr, "/sse?channel=a", new).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", old).await, 403);
    assert_eq!(status(addr, three, new).await, 200);
    assert!(logged("limits.queue_size must be at least 1"));
    assert!(logged("configuration reload refused"));

    // The same file again changes nothing.
    write(&file, &config(new, 5, "127.0.0.1:1"));
    hup(&child, addr, "unchanged").await;
    assert_eq!(reloads(addr, "applied").await, 1);
    assert_eq!(reloads(addr, "refused").await, 2);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `herald.v1` connection, anonymous.
struct Conn {
    ws: herald::WebSocket<herald::MaybeTlsStream>,
    next_id: u64,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Self {
        let builder = herald::ClientBuilder::new(&format!("ws://{addr}/ws"))
            .unwrap()
            .subprotocol(herald_hub_protocol::SUBPROTOCOL);
        let (ws, _) = builder.connect().await.unwrap();
        let mut conn = Self { ws, next_id: 1 };
        assert_eq!(conn.next().await["push"], "connected");
        conn
    }

    async fn next(&mut self) -> serde_json::Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.recv()).await;
            match message.unwrap().unwrap().unwrap() {
                herald::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                herald::Message::Close(close) => panic!("closed: {close:?}"),
                _ => {}
            }
        }
    }

    /// Sends a command; its reply, and the pushes that came first.
    async fn call(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> (serde_json::Value, Vec<serde_json::Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let command = serde_json::json!({"id": id, "method": method, "params": params});
        let text = herald::Message::text(command.to_string());
        self.ws.send(text).await.unwrap();
        let mut pushes = Vec::new();
        loop {
            let value = self.next().await;
            if value["id"] == id {
                return (value, pushes);
            }
            pushes.push(value);
        }
    }

    /// The error code of `method`'s reply, `None` for a result.
    async fn code(&mut self, method: &str, channel: &str) -> Option<u64> {
        let params = match method {
            "publish" => serde_json::json!({"channel": channel, "data": {"n": 1}}),
            _ => serde_json::json!({"channel": channel}),
        };
        let (reply, _) = self.call(method, params).await;
        reply["error"]["code"].as_u64()
    }
}

fn namespaces(tables: &str) -> String {
    format!("listen = \"127.0.0.1:0\"\n\n{tables}")
}

/// Waits until a log line holds `needle` (the log follows the reload's count).
async fn wait_logged(log: &Mutex<Vec<String>>, needle: &str) {
    for _ in 0..200 {
        if log.lock().unwrap().iter().any(|l| l.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no log line with {needle}: {:?}", log.lock().unwrap());
}

#[tokio::test]
async fn sighup_reloads_namespaces_for_the_next_command_and_refuses_a_broken_or_stranding_table() {
    let dir = std::env::temp_dir().join(format!("herald-reload-ns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    // `chat` is where the default plain-mode route `/chat?groupId=` puts its rooms.
    write(&file, &namespaces("[namespaces.chat]\npublish = false\n"));
    let (mut child, addr, log) = serve(&file).await;

    let mut conn = Conn::connect(addr).await;
    assert_eq!(conn.code("subscribe", "chat:1").await, None);
    assert_eq!(
        conn.code("publish", "chat:1").await,
        Some(103),
        "publish = false"
    );
    assert_eq!(conn.code("subscribe", "news:1").await, Some(112), "no news");

    // Publishing allowed and a namespace added: the same connection's next commands follow,
    // and the subscription made before the reload keeps receiving.
    let tables = "[namespaces.chat]\npublish = true\n\n[namespaces.news]\nlatest = 5\n";
    write(&file, &namespaces(tables));
    hup(&child, addr, "applied").await;
    wait_logged(&log, "applied=\"namespaces\"").await;
    let (reply, mut pushed) = conn
        .call(
            "publish",
            serde_json::json!({"channel": "chat:1", "data": {"n": 2}}),
        )
        .await;
    assert_eq!(reply["result"]["offset"], 1, "{reply}");
    if pushed.is_empty() {
        pushed.push(conn.next().await);
    }
    assert_eq!(pushed[0]["push"], "pub", "{pushed:?}");
    assert_eq!(pushed[0]["data"]["n"], 2);
    assert_eq!(conn.code("subscribe", "news:1").await, None);

    // An invalid table, then one dropping `chat` that the `/chat` route needs: both refused
    // with their first error, the rules in force stay.
    write(
        &file,
        &namespaces("[namespaces.chat]\nlatest = 500\n\n[namespaces.news]\n"),
    );
    hup(&child, addr, "refused").await;
    wait_logged(&log, "namespaces.chat.latest").await;
    write(&file, &namespaces("[namespaces.news]\npublish = false\n"));
    hup(&child, addr, "refused").await;
    wait_logged(&log, "plain.routes").await;
    assert_eq!(
        conn.code("publish", "news:1").await,
        None,
        "news still publishes"
    );
    assert_eq!(
        conn.code("publish", "chat:1").await,
        None,
        "chat still publishes"
    );
    assert_eq!(reloads(addr, "applied").await, 1);
    assert_eq!(reloads(addr, "refused").await, 2);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}
