//! `herald serve` on an address other machines can reach warns, once per setting, about what
//! leaves it open: anonymous publishing, no API key, no public host for its pages. On
//! loopback it says nothing.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `herald serve ARGS` until it announces its address; returns the messages it logged
/// at warn level before that.
fn warnings(args: &[&str]) -> Vec<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(["serve", "--log-format", "json", "--log-level", "info"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut warned = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("herald: listening on ") {
                let _ = tx.send(std::mem::take(&mut warned));
                continue;
            }
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["level"] == "WARN" {
                warned.push(json["fields"]["message"].as_str().unwrap_or("").to_owned());
            }
        }
    });
    let warned = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    warned.expect("herald announces its address")
}

#[test]
fn serving_every_interface_with_the_defaults_warns_once_per_open_setting() {
    let warned = warnings(&["--listen", "0.0.0.0:0"]);
    assert_eq!(warned.len(), 3, "{warned:#?}");
    let count = |needle: &str| warned.iter().filter(|w| w.contains(needle)).count();
    assert_eq!(count("publish without a token"), 1, "{warned:#?}");
    assert_eq!(count("no api.key"), 1, "{warned:#?}");
    assert_eq!(count("no origins.public_hosts"), 1, "{warned:#?}");
}

#[test]
fn serving_loopback_warns_about_nothing() {
    assert_eq!(warnings(&["--listen", "127.0.0.1:0"]), Vec::<String>::new());
}

#[test]
fn a_key_an_api_key_and_a_public_host_silence_the_warnings() {
    let args = [
        "--listen",
        "0.0.0.0:0",
        "--jwt-secret=s3",
        "--allow-anonymous",
        "--api-key=k",
        "--public-host=chat.example.com",
    ];
    assert_eq!(warnings(&args), Vec::<String>::new());
    let open = [
        "--listen",
        "0.0.0.0:0",
        "--jwt-secret=s3",
        "--allow-anonymous",
    ];
    let open: Vec<&str> = open.into_iter().chain(["--anonymous-publish=*"]).collect();
    let warned = warnings(&open);
    assert!(
        warned.iter().any(|w| w.contains("publish without a token")),
        "patterns set by hand still warn: {warned:#?}"
    );
}
