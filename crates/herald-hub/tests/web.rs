//! The embedded pages and herald.js: each path serves its file with the right content type.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn head(response: &str) -> String {
    response
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase()
}

#[tokio::test]
async fn pages_scripts_and_types_are_served_with_their_content_types() {
    let mut server = Server::start(config()).await;
    let cases = [
        (
            "/",
            "text/html; charset=utf-8",
            "<title>Herald chat</title>",
        ),
        ("/plain.html", "text/html; charset=utf-8", "/plain.js"),
        (
            "/herald.js",
            "text/javascript; charset=utf-8",
            "export class Herald",
        ),
        (
            "/herald.d.ts",
            "text/javascript; charset=utf-8",
            "export declare class Herald",
        ),
        (
            "/chat.js",
            "text/javascript; charset=utf-8",
            "from \"/herald.js\"",
        ),
        (
            "/plain.js",
            "text/javascript; charset=utf-8",
            "new WebSocket(",
        ),
        ("/events.html", "text/html; charset=utf-8", "/events.js"),
        (
            "/events.js",
            "text/javascript; charset=utf-8",
            "new EventSource(",
        ),
        ("/chat.css", "text/css; charset=utf-8", ".badge"),
    ];
    for (path, content_type, excerpt) in cases {
        let (status, text) = server.get(path, "").await;
        assert_eq!(status, 200, "{path}");
        let head = head(&text);
        assert!(
            head.contains(&format!("content-type: {content_type}\r\n")),
            "{path}: {head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
        assert!(text.contains(excerpt), "{path} holds {excerpt}");
    }
    server.stop().await;
}

#[tokio::test]
async fn pages_forbid_scripts_from_anywhere_but_the_server() {
    let mut server = Server::start(config()).await;
    for path in ["/", "/plain.html"] {
        let (_, text) = server.get(path, "").await;
        assert!(
            head(&text).contains("content-security-policy: default-src 'self'"),
            "{path}"
        );
    }
    let (_, text) = server.get("/herald.js", "").await;
    assert!(!head(&text).contains("content-security-policy"));
    server.stop().await;
}
