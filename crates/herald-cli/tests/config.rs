//! `herald config check`, `herald config default`, the precedence of flags over `HERALD_*`
//! variables over the file over defaults, and `herald serve` as a process: it announces its
//! port, answers `/healthz`, and exits 0 after SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn herald() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    // The tests say which variables they want; none leak in from the environment.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("herald runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes `text` to a file named after the test, in Cargo's scratch directory for tests.
fn write(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("config-{name}.toml"));
    std::fs::write(&path, text).expect("write the file");
    path
}

fn check(name: &str, text: &str) -> (Output, String) {
    let path = write(name, text);
    let output = run(herald().args(["config", "check"]).arg(&path));
    (output, path.display().to_string())
}

mod check {
    //! `herald config check FILE`: `FILE: ok` and 0, or `FILE:LINE:COL: message` and 1.
    use super::*;

    #[test]
    fn a_valid_file_is_ok_and_exits_0() {
        let text = r#"
listen = "0.0.0.0:8080"
broker = "redis://cache:6379/0"

[tls]
cert = "/etc/herald/cert.pem"
key = "/etc/herald/key.pem"

[history]
size = 500
ttl = "10m"

[[plain.routes]]
path = "/chat"
params = ["groupId"]
"#;
        let (output, path) = check("valid", text);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("{path}: ok\n"));
    }

    #[test]
    fn a_misspelled_key_exits_1_naming_its_line_and_the_key() {
        let text = "listen = \"127.0.0.1:8080\"\n\n[history]\nsize = 10\nttll = \"5m\"\n";
        let (output, path) = check("typo", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.starts_with(&format!("{path}:5:1: ")), "{err}");
        assert!(err.contains("unknown field `ttll`"), "{err}");
    }

    #[test]
    fn a_misspelled_section_exits_1_naming_its_line() {
        let (output, path) = check("section", "deflate = false\n[limit]\nqueue_size = 8\n");
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.starts_with(&format!("{path}:2:2: ")), "{err}");
        assert!(err.contains("`limit`"), "{err}");
    }

    #[test]
    fn a_bad_duration_exits_1_pointing_at_the_value() {
        let text = "[heartbeat]\ninterval = \"25s\"\ntimeout = \"5 parsecs\"\n";
        let (output, path) = check("duration", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.starts_with(&format!("{path}:3:11: ")), "{err}");
    }

    #[test]
    fn a_tls_cert_without_a_key_exits_1_pointing_at_the_cert() {
        let text = "listen = \"0.0.0.0:443\"\n\n[tls]\ncert = \"/etc/herald/cert.pem\"\n";
        let (output, path) = check("tls", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:4:1: tls.cert is set without tls.key")),
            "{err}"
        );
    }

    #[test]
    fn a_connect_hook_url_that_is_not_http_exits_1_pointing_at_it() {
        let text = "[hooks.connect]\ntimeout = \"1s\"\nurl = \"localhost:3000/hook\"\n";
        let (output, path) = check("hook", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:3:1: hooks.connect.url ")),
            "{err}"
        );
        let (output, path) = check("hook_timeout", "[hooks.connect]\ntimeout = \"0s\"\n");
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:2:1: hooks.connect.timeout")),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_broker_exits_1_pointing_at_it() {
        let (output, path) = check("broker", "deflate = true\nbroker = \"mongodb://db\"\n");
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:2:1: broker `mongodb://db`")),
            "{err}"
        );
    }

    #[test]
    fn a_syntax_error_exits_1_with_its_line() {
        let (output, path) = check("syntax", "listen = \"127.0.0.1:8080\"\nbroker = memory\n");
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).starts_with(&format!("{path}:2:")),
            "{}",
            stderr(&output)
        );
    }

    #[test]
    fn namespaces_in_a_valid_file_are_ok() {
        let text = r#"
[history]
size = 50

[namespaces.chat]
history_size = 20
history_ttl = "1m"
latest = 5
anonymous_subscribe = ["chat:*"]

[namespaces.feed]
publish = false
recover = false
"#;
        let (output, path) = check("namespaces-ok", text);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("{path}: ok\n"));
    }

    #[test]
    fn a_namespace_hook_without_its_url_exits_1_pointing_at_its_key() {
        let text = "[namespaces.chat]\npublish_hook = true\n";
        let (output, path) = check("namespace-hook", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!(
                "{path}:2:1: namespaces.chat.publish_hook: is on but hooks.publish.url is not set"
            )),
            "{err}"
        );
        let text = "[hooks.publish]\nurl = \"http://127.0.0.1:3000/publish\"\n\n\
                    [namespaces.chat]\npublish_hook = true\n";
        let (output, _) = check("namespace-hook-ok", text);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }

    #[test]
    fn a_namespace_rule_exits_1_pointing_at_its_key() {
        let text = "[namespaces.chat]\nhistory_size = 4\nlatest = 9\n";
        let (output, path) = check("namespace-latest", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!(
                "{path}:3:1: namespaces.chat.latest: must be at most the history size (4)"
            )),
            "{err}"
        );
        let text = "[namespaces.chat]\n\n[namespaces.\"a b\"]\npresence = false\n";
        let (output, path) = check("namespace-name", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:3:13: namespaces.a b: ")),
            "{err}"
        );
        let text = "[namespaces.chat]\nanonymous_publish = [\"chat:*\", \"chat:a b\"]\n";
        let (output, path) = check("namespace-pattern", text);
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!("{path}:2:1: namespaces.chat.anonymous_publish: ")),
            "{err}"
        );
        assert!(err.contains("`chat:a b`"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_a_namespace_exits_1_naming_its_line() {
        let text = "[namespaces.chat]\nhistory_size = 4\nlastest = 2\n";
        let (output, path) = check("namespace-typo", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.starts_with(&format!("{path}:3:1: ")), "{err}");
        assert!(err.contains("unknown field `lastest`"), "{err}");
    }

    #[test]
    fn a_route_into_an_unconfigured_namespace_exits_1() {
        let text =
            "[namespaces.news]\n\n[[plain.routes]]\npath = \"/chat\"\nparams = [\"groupId\"]\n";
        let (output, path) = check("namespace-route", text);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!(
                "{path}:3:9: plain.routes: path `/chat` names rooms"
            )),
            "{err}"
        );
    }

    #[test]
    fn the_demo_chats_configuration_is_ok() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/chat.toml");
        let output = run(herald().args(["config", "check"]).arg(&path));
        assert!(output.status.success(), "{}", stderr(&output));
    }

    #[test]
    fn a_missing_file_exits_1() {
        let output = run(herald().args(["config", "check", "/nonexistent/herald.toml"]));
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).starts_with("/nonexistent/herald.toml: "));
    }
}

mod default {
    //! `herald config default`: every key at its default, as a file `config check` accepts.
    use super::*;

    fn effective(args: &[&str]) -> toml::Table {
        let output = run(herald().args(["serve", "--print-config"]).args(args));
        assert!(output.status.success(), "{}", stderr(&output));
        toml::from_str(&stdout(&output)).expect("--print-config prints TOML")
    }

    #[test]
    fn the_default_file_passes_check_and_loads_as_the_defaults() {
        let output = run(herald().args(["config", "default"]));
        assert!(output.status.success());
        let text = stdout(&output);
        assert!(text.contains("listen = \"127.0.0.1:8080\""));
        assert!(text.contains("# --history-ttl, HERALD_HISTORY_TTL"));
        let path = write("default", &text);
        let checked = run(herald().args(["config", "check"]).arg(&path));
        assert!(checked.status.success(), "{}", stderr(&checked));
        let path = path.display().to_string();
        assert_eq!(effective(&["--config", &path]), effective(&[]));
    }

    #[test]
    fn the_commented_namespace_example_passes_check_once_uncommented() {
        let output = run(herald().args(["config", "default"]));
        let text = stdout(&output);
        let example: String = text
            .lines()
            .skip_while(|l| *l != "# [namespaces.chat]")
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(
            example.starts_with("[namespaces.chat]\nhistory_size = 100"),
            "{text}"
        );
        let (checked, _) = check("namespace-example", &example);
        assert!(checked.status.success(), "{}", stderr(&checked));
    }
}

mod precedence {
    //! Flags over `HERALD_*` variables over the file over defaults.
    use super::*;

    const FILE: &str = "listen = \"127.0.0.1:1\"\n[history]\nsize = 5\nttl = \"2m\"\n";

    fn effective(command: &mut Command, args: &[&str]) -> toml::Table {
        let output = run(command.args(["serve", "--print-config"]).args(args));
        assert!(output.status.success(), "{}", stderr(&output));
        toml::from_str(&stdout(&output)).expect("--print-config prints TOML")
    }

    fn get<'a>(table: &'a toml::Table, key: &str) -> &'a toml::Value {
        let (section, leaf) = key.split_once('.').unwrap_or(("", key));
        let table = if section.is_empty() {
            table
        } else {
            table[section].as_table().expect("a section")
        };
        &table[leaf]
    }

    #[test]
    fn print_config_shows_the_namespace_tables_in_effect() {
        let text = "[namespaces.chat]\nlatest = 5\nhistory_ttl = \"1m\"\n\n[namespaces.\"a.b\"]\npublish = false\n";
        let path = write("print-namespaces", text);
        let path = path.display().to_string();
        let e = effective(&mut herald(), &["--config", &path]);
        let namespaces = e["namespaces"].as_table().expect("a namespaces table");
        assert_eq!(namespaces["chat"]["latest"].as_integer(), Some(5));
        assert_eq!(namespaces["chat"]["history_ttl"].as_str(), Some("1m"));
        assert_eq!(namespaces["a.b"]["publish"].as_bool(), Some(false));
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let path = write("precedence", FILE);
        let e = effective(
            herald()
                .env("HERALD_CONFIG", &path)
                .env("HERALD_LISTEN", "127.0.0.1:2")
                .env("HERALD_HISTORY_SIZE", "7"),
            &["--listen", "127.0.0.1:3"],
        );
        assert_eq!(
            get(&e, "listen").as_str(),
            Some("127.0.0.1:3"),
            "flag over env and file"
        );
        assert_eq!(
            get(&e, "history.size").as_integer(),
            Some(7),
            "env over file"
        );
        assert_eq!(
            get(&e, "history.ttl").as_str(),
            Some("2m"),
            "file over default"
        );
        assert_eq!(
            get(&e, "limits.max_connections").as_integer(),
            Some(20_000),
            "default"
        );
    }

    #[test]
    fn env_beats_file_and_file_beats_default() {
        let path = write("precedence-env", FILE);
        let path = path.display().to_string();
        let e = effective(herald().env("HERALD_LISTEN", "127.0.0.1:2"), &["-c", &path]);
        assert_eq!(get(&e, "listen").as_str(), Some("127.0.0.1:2"));
        assert_eq!(get(&e, "history.size").as_integer(), Some(5));
    }

    #[test]
    fn a_bad_file_stops_serve_with_its_line() {
        let path = write(
            "serve-typo",
            "listen = \"127.0.0.1:0\"\nlisten_addr = \"x\"\n",
        );
        let output = run(herald().arg("serve").arg("--config").arg(&path));
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.contains(&format!(
                "{}:2:1: unknown field `listen_addr`",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn help_shows_every_default() {
        let output = run(herald().args(["serve", "--help"]));
        let help = stdout(&output);
        assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
        assert!(help.contains("--history-ttl <DURATION>"), "{help}");
        assert!(help.contains("[env: HERALD_JWT_SECRET]"), "{help}");
        assert!(help.contains("--deflate[=<BOOL>]"), "{help}");
    }
}

mod serve {
    //! `herald serve` as an operator runs it.
    use super::*;

    /// Waits for the child's "listening on" line; keeps draining stderr afterwards so the
    /// child never blocks on a full pipe.
    fn announced(child: &mut std::process::Child) -> String {
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("herald: listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("herald announces its address")
    }

    fn get(addr: &str, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    }

    #[test]
    fn serve_announces_its_port_answers_healthz_and_exits_0_on_sigterm() {
        let mut child = herald()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald serve");
        let url = announced(&mut child);
        let addr = url.strip_prefix("http://").expect("http without TLS");
        assert!(!addr.ends_with(":0"), "the real port is announced: {addr}");
        let response = get(addr, "/healthz");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");

        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let pid = pid.expect("a child pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "herald did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0));
    }

    #[test]
    fn a_port_in_use_exits_1_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr").to_string();
        let output = run(herald().args(["serve", "--listen", &addr]));
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains(&format!("binding {addr}")),
            "{}",
            stderr(&output)
        );
    }
}
