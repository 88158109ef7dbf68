//! `herald connect` as a process against servers on 127.0.0.1:0: what goes in on standard
//! input reaches the server, what comes back reaches standard output, and the exit status says
//! how the connection ended (the table in `herald connect --help`).
#![allow(clippy::unwrap_used, unreachable_pub)]

use herald::handshake::{Accept, Response};
use herald::http::StatusCode;
use herald::{CloseCode, CloseFrame, Config, Message, WebSocket};
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Runs `handler` on every WebSocket accepted with `accept`'s answer; returns the address.
async fn serve<F, Fut>(accept: Accept, handler: F) -> SocketAddr
where
    F: Fn(WebSocket<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = std::sync::Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (handler, accept) = (handler.clone(), accept.clone());
            tokio::spawn(async move {
                let decide = |_: &herald::handshake::Request| Ok(accept);
                if let Ok(ws) = herald::accept_with(tcp, &Config::default(), decide).await {
                    handler(ws).await;
                }
            });
        }
    });
    addr
}

/// Echoes data messages; reports the Close frame it receives on `closes`.
async fn echo_server(closes: mpsc::UnboundedSender<Option<CloseFrame>>) -> SocketAddr {
    serve(Accept::default(), move |mut ws| {
        let closes = closes.clone();
        async move {
            while let Some(Ok(message)) = ws.recv().await {
                match message {
                    Message::Close(frame) => drop(closes.send(frame)),
                    m if m.is_data() => ws.send(m).await.unwrap(),
                    _ => {}
                }
            }
        }
    })
    .await
}

async fn plain_echo_server() -> SocketAddr {
    echo_server(mpsc::unbounded_channel().0).await
}

fn herald(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `herald connect ARGS` with `input` then the end of standard input.
async fn connect(args: &[&str], input: &str) -> Output {
    let mut child = herald(args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    finish(child).await
}

/// Waits for the process to end by itself.
async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("herald connect ends by itself")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

mod messages {
    //! Standard input to messages and messages to standard output.
    use super::*;

    #[tokio::test]
    async fn lines_come_back_from_an_echo_server_and_end_with_a_clean_close() {
        let addr = plain_echo_server().await;
        let output = connect(&[&url(addr)], "hello\nwörld\n\n").await;
        assert_eq!(stdout(&output), "hello\nwörld\n\n", "{}", stderr(&output));
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn json_reports_open_each_message_and_the_close() {
        let addr = plain_echo_server().await;
        let output = connect(&["--json", &url(addr)], "a\nb\n").await;
        let events = json_lines(&output);
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[0]["event"], "open");
        assert_eq!(events[0]["protocol"], Value::Null);
        assert_eq!(events[0]["extensions"], serde_json::json!([]));
        for (event, data) in events[1..3].iter().zip(["a", "b"]) {
            assert_eq!(event["event"], "message");
            assert_eq!(event["type"], "text");
            assert_eq!(event["data"], data);
        }
        assert_eq!(events[3]["event"], "close");
        assert_eq!(events[3]["code"], 1000);
        assert_eq!(events[3]["clean"], true);
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn binary_lines_are_decoded_sent_as_binary_and_printed_encoded() {
        let addr = plain_echo_server().await;
        let output = connect(&["--binary", "--json", &url(addr)], "00ff10\n").await;
        let events = json_lines(&output);
        assert_eq!(events[1]["type"], "binary", "{events:?}");
        assert_eq!(events[1]["data"], "00ff10");
        let args = ["--binary", "--binary-format", "base64", &url(addr)];
        let output = connect(&args, "AP8Q\n").await;
        assert_eq!(stdout(&output), "AP8Q\n");
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn a_line_that_does_not_decode_is_reported_and_skipped() {
        let addr = plain_echo_server().await;
        let output = connect(&["--binary", &url(addr)], "zz\n01\n").await;
        assert_eq!(stdout(&output), "01\n");
        assert!(
            stderr(&output).contains("invalid hex"),
            "{}",
            stderr(&output)
        );
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn headers_origin_and_subprotocol_reach_the_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let config = Config::default();
            let accepted = herald::accept_with(tcp, &config, |request| {
                let auth = request.headers().get("authorization");
                let good = auth.is_some_and(|v| v == "Bearer t0ken")
                    && request.origin() == Some("https://example.test")
                    && request.subprotocols() == ["chat.v2", "chat.v1"];
                let accept = Accept {
                    subprotocol: Some("chat.v1".into()),
                    ..Accept::default()
                };
                good.then_some(accept)
                    .ok_or_else(|| Response::text(StatusCode::FORBIDDEN, "missing"))
            });
            let mut ws = accepted.await.unwrap();
            while ws.recv().await.is_some() {}
        });
        let args = [
            "-H",
            "Authorization: Bearer t0ken",
            "--origin",
            "https://example.test",
            "--subprotocol",
            "chat.v2",
            "--subprotocol",
            "chat.v1",
            "--json",
            &url(addr),
        ];
        let output = connect(&args, "").await;
        assert_eq!(json_lines(&output)[0]["protocol"], "chat.v1");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
}

mod closing {
    //! RFC 6455 §7: how the connection ended, as the exit status.
    use super::*;

    #[tokio::test]
    async fn close_option_reaches_the_server_with_its_code_and_reason() {
        let (tx, mut closes) = mpsc::unbounded_channel();
        let addr = echo_server(tx).await;
        let output = connect(&["--close", "4000:bye", &url(addr)], "x\n").await;
        let frame = closes.recv().await.unwrap().unwrap();
        assert_eq!(frame.code, CloseCode::from(4000));
        assert_eq!(frame.reason.as_str(), "bye");
        assert_eq!(output.status.code(), Some(0));
    }

    /// A server that closes with `code` after the first message, while input is still open.
    async fn closing_server(code: u16) -> Output {
        let addr = serve(Accept::default(), move |mut ws| async move {
            let _ = ws.recv().await;
            let _ = ws.close(CloseCode::from(code), "done").await;
        })
        .await;
        let mut child = herald(&[&url(addr)]).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hi\n").await.unwrap();
        let output = finish(child).await;
        drop(stdin);
        output
    }

    #[tokio::test]
    async fn server_close_with_1000_exits_0_while_input_is_still_open() {
        assert_eq!(closing_server(1000).await.status.code(), Some(0));
    }

    #[tokio::test]
    async fn server_close_with_another_code_exits_7_and_shows_it() {
        let output = closing_server(4001).await;
        assert_eq!(output.status.code(), Some(7));
        assert!(stderr(&output).contains("4001"), "{}", stderr(&output));
    }

    #[tokio::test]
    async fn server_dropping_tcp_without_a_close_exits_6() {
        let addr = serve(Accept::default(), |mut ws| async move {
            let _ = ws.recv().await;
            drop(ws);
        })
        .await;
        let mut child = herald(&["--json", &url(addr)]).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hi\n").await.unwrap();
        let output = finish(child).await;
        drop(stdin);
        assert_eq!(output.status.code(), Some(6), "{}", stdout(&output));
        let close = json_lines(&output).pop().unwrap();
        assert_eq!(close["code"], 1006);
        assert_eq!(close["clean"], false);
    }
}

mod failures {
    //! The opening handshake and the connection failing.
    use super::*;

    #[tokio::test]
    async fn refused_handshake_exits_3_with_status_line_and_body_on_stderr() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let incoming = herald::read_request(tcp, &Config::default()).await.unwrap();
            let refusal = Response::text(StatusCode::UNAUTHORIZED, "token required");
            let _ = incoming.reject(refusal).await;
        });
        let output = connect(&[&url(addr)], "").await;
        assert_eq!(output.status.code(), Some(3));
        let stderr = stderr(&output);
        assert!(stderr.contains("HTTP/1.1 401 Unauthorized"), "{stderr}");
        assert!(stderr.contains("token required"), "{stderr}");
    }

    #[tokio::test]
    async fn closed_port_exits_4() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let output = connect(&[&url(addr)], "").await;
        assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    }

    #[tokio::test]
    async fn invalid_url_or_close_code_exits_2() {
        assert_eq!(connect(&["http://x/"], "").await.status.code(), Some(2));
        let args = ["--close", "1006", "ws://127.0.0.1:9/"];
        assert_eq!(connect(&args, "").await.status.code(), Some(2));
    }
}

mod hub {
    //! `--hub`: one command in protocol mode (`herald.v1`), against a scripted hub.
    use super::*;

    /// Accepts `herald.v1`, sends `connected`, reports the first command on `commands`,
    /// answers it with `reply`, then sends `after` (if any) and closes with 1001.
    async fn scripted_hub(
        reply: &'static str,
        after: Option<&'static str>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let (tx, commands) = mpsc::unbounded_channel();
        let accept = Accept {
            subprotocol: Some("herald.v1".into()),
            ..Accept::default()
        };
        let addr = serve(accept, move |mut ws| {
            let tx = tx.clone();
            async move {
                let connected =
                    r#"{"push":"connected","client":"c1","user":"","ping_interval":25}"#;
                ws.send(Message::text(connected)).await.unwrap();
                let Some(Ok(Message::Text(command))) = ws.recv().await else {
                    return;
                };
                tx.send(command.as_str().to_owned()).unwrap();
                ws.send(Message::text(reply)).await.unwrap();
                if let Some(push) = after {
                    ws.send(Message::text(push)).await.unwrap();
                    let _ = ws
                        .close(CloseCode::GOING_AWAY, "server shutting down")
                        .await;
                }
                while ws.recv().await.is_some() {}
            }
        })
        .await;
        (addr, commands)
    }

    #[tokio::test]
    async fn publish_sends_the_command_and_prints_where_it_landed() {
        let reply = r#"{"id":1,"result":{"offset":7,"epoch":"e1"}}"#;
        let (addr, mut commands) = scripted_hub(reply, None).await;
        let args = ["--hub", &url(addr), "publish", "news", r#"{"text":"hi"}"#];
        let output = connect(&args, "").await;
        let command: Value = serde_json::from_str(&commands.recv().await.unwrap()).unwrap();
        let expected =
            r#"{"id":1,"method":"publish","params":{"channel":"news","data":{"text":"hi"}}}"#;
        assert_eq!(command, serde_json::from_str::<Value>(expected).unwrap());
        assert_eq!(stdout(&output), "{\"offset\":7,\"epoch\":\"e1\"}\n");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }

    #[tokio::test]
    async fn an_error_reply_exits_8_with_its_message() {
        let reply =
            r#"{"id":1,"error":{"code":103,"message":"permission denied","temporary":false}}"#;
        let (addr, _commands) = scripted_hub(reply, None).await;
        let output = connect(&["--hub", &url(addr), "publish", "news", "x"], "").await;
        assert_eq!(output.status.code(), Some(8));
        assert!(stderr(&output).contains("permission denied (code 103)"));
    }

    #[tokio::test]
    async fn subscribe_prints_each_publication_until_the_hub_closes() {
        let reply = r#"{"id":1,"result":{"offset":0,"epoch":"e1"}}"#;
        let publication =
            r#"{"push":"pub","channel":"news","offset":1,"epoch":"e1","data":{"text":"hi"}}"#;
        let (addr, mut commands) = scripted_hub(reply, Some(publication)).await;
        let output = connect(&["--hub", &url(addr), "subscribe", "news"], "").await;
        let command: Value = serde_json::from_str(&commands.recv().await.unwrap()).unwrap();
        assert_eq!(command["method"], "subscribe");
        assert_eq!(command["params"]["channel"], "news");
        assert_eq!(stdout(&output), "{\"text\":\"hi\"}\n");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }

    #[tokio::test]
    async fn a_server_without_herald_v1_exits_3() {
        let addr = plain_echo_server().await;
        let output = connect(&["--hub", &url(addr), "subscribe", "news"], "").await;
        assert_eq!(output.status.code(), Some(3));
        assert!(stderr(&output).contains("herald.v1"));
    }
}

mod tls {
    //! `wss://` against a self-signed certificate: trusted with `--ca`, or not checked with
    //! `--insecure`, and refused otherwise.
    use super::*;

    /// A `wss://` echo server on 127.0.0.1 for `localhost`; returns its URL and the
    /// certificate's PEM.
    async fn wss_echo_server() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let server_tls =
            herald::tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let acceptor = herald::tls::TlsAcceptor::from(server_tls);
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut ws) = herald::accept(tls).await else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.recv().await {
                        if message.is_data() && ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (format!("wss://localhost:{port}/"), cert_pem)
    }

    #[tokio::test]
    async fn insecure_accepts_a_self_signed_certificate() {
        let (url, _) = wss_echo_server().await;
        let output = connect(&["--insecure", &url], "over TLS\n").await;
        assert_eq!(stdout(&output), "over TLS\n", "{}", stderr(&output));
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn ca_file_trusts_the_server_certificate() {
        let (url, cert_pem) = wss_echo_server().await;
        let name = format!("herald-connect-ca-{}.pem", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, cert_pem).unwrap();
        let output = connect(&["--ca", path.to_str().unwrap(), &url], "trusted\n").await;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(stdout(&output), "trusted\n", "{}", stderr(&output));
        assert_eq!(output.status.code(), Some(0));
    }

    #[tokio::test]
    async fn an_untrusted_certificate_exits_4_and_an_unreadable_ca_exits_1() {
        let (url, _) = wss_echo_server().await;
        let output = connect(&[&url], "").await;
        assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
        let output = connect(&["--ca", "/nonexistent/ca.pem", &url], "").await;
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    }
}
