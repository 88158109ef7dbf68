//! Configurations written back out as TOML: `herald config default` (every key, its default and
//! what it does) and `herald serve --print-config` (the effective values and their sources).

use super::kind::Kind;
use super::table::{SETTINGS, Setting, boolean, count, duration, list};
use super::{Effective, Source};
use herald_hub::HubConfig;
use std::fmt::Write as _;
use toml::Value;

const WIDTH: usize = 96;

/// A configuration file with every key at its default, each under a comment saying what it
/// does and which flag and variable override it. Keys unset by default are commented out,
/// with an example value.
pub(crate) fn default_file() -> String {
    let defaults = HubConfig::default();
    let mut out = String::from(
        "# Herald hub configuration: herald serve --config FILE.\n\
         # Every key is shown with its default; delete the ones you do not change.\n\
         # Precedence: flags > HERALD_* environment variables > this file > defaults.\n\
         # Durations: 500ms, 10s, 5m, 1h 30m. Check a file with: herald config check FILE\n",
    );
    for_each(&mut out, |out, setting| {
        out.push('\n');
        comment(out, setting.help);
        let _ = writeln!(out, "# --{}, {}", setting.flag, setting.env());
        match (setting.get)(&defaults) {
            Some(value) => line(out, setting, &value),
            None => {
                out.push_str("# ");
                if let Ok(Some(example)) = setting.kind.parse(&[setting.example.to_owned()]) {
                    line(out, setting, &example);
                }
            }
        }
    });
    out.push_str(NAMESPACES_EXAMPLE);
    out.push_str(PUSHER_APPS_EXAMPLE);
    out
}

/// `[[pusher.apps]]` tables are TOML only, like namespaces: shown as a commented example.
const PUSHER_APPS_EXAMPLE: &str = r#"
# Pusher apps (TOML only, docs/pusher.md): with one or more, /app/{key} speaks the Pusher
# Channels protocol and /apps/{id}/... is Pusher's HTTP API. An app's channels are the hub
# channels NAMESPACE:NAME; with [namespaces.*] tables configured, its namespace needs one.
#
# [[pusher.apps]]
# id = "1001"
# key = "app-key"
# secret = "app-secret"
# client_events = false            # true: client-* events on private and presence channels
# namespace = "pusher-1001"        # the hub namespace of the app's channels
# webhook_url = "http://127.0.0.1:3000/pusher/webhooks"  # Pusher's webhooks for the app
#
# [pusher.apps.limits]             # the app's own limits, each at Pusher's value when unset
# max_connections = 0              # open connections over every node (0: none); 4004 past it
# client_events_per_second = 10    # per connection (0: none); pusher:error 4301 past it
# max_event_size = 10240           # bytes of an event's data: 4301 from a client, 413 in the API
# max_event_name_length = 200
# max_event_channels = 100         # channels of one API event
# max_batch_size = 10              # events of one batch_events
# max_channel_name_length = 164
# max_channels_per_connection = 0  # 0: limits.max_subscriptions only
# max_presence_members = 100       # users per presence channel; subscription_error 4100 past it
# max_user_info_size = 1024        # bytes of a member's or signed-in user's user_info
# max_watchlist = 100              # user ids in a signed-in user's watchlist
"#;

/// `[namespaces.NAME]` tables are TOML only (no flag or variable): shown as a commented
/// example, each key at the value it takes when left unset.
const NAMESPACES_EXAMPLE: &str = r#"
# Namespaces (TOML only): the rules for channels named NAME:..., one table each. With none
# configured, namespacing is off and every channel follows the settings above. With one or
# more, a channel whose prefix is not configured is refused (error 112, HTTP 400), a channel
# without ':' follows the settings above, and every plain route's rooms must fall in a
# configured namespace. A key left unset takes the value above (history.size, history.ttl,
# presence.enabled, presence.join_leave, auth.anonymous_subscribe, auth.anonymous_publish).
#
# [namespaces.chat]
# history_size = 100               # publications kept per channel (at most 1000000)
# history_ttl = "5m"               # how long a channel's history lives after its last publish
# presence = true                  # false: no presence, no joins or leaves
# join_leave = true                # false: no join/leave pushes
# publish = true                   # false: only the HTTP API publishes (clients get 103)
# recover = true                   # false: subscribe with recover answers recovered: false
# latest = 0                       # newest publications a subscribe returns (<= history_size)
# anonymous_subscribe = ["chat:*"] # patterns for connections without a token
# anonymous_publish = ["chat:*"]
# subscribe_hook = false           # true: hooks.subscribe.url allows or denies each subscribe
# publish_hook = false             # true: hooks.publish.url allows, rewrites or denies each publish
# webhook_publications = false     # true: each publication is a webhooks.url publication event
"#;

/// The effective configuration, each key followed by where its value came from. Secrets are
/// redacted, so the output documents a running setup without leaking it.
pub(crate) fn effective_file(effective: &Effective) -> String {
    let mut out =
        String::from("# Effective herald configuration (flags > environment > file > defaults).\n");
    let mut sources = effective.sources.iter();
    for_each(&mut out, |out, setting| {
        let source = match sources.next() {
            Some(Source::Flag) => format!("--{}", setting.flag),
            Some(Source::Env) => setting.env(),
            Some(Source::File) => "file".to_owned(),
            _ => "default".to_owned(),
        };
        match (setting.get)(&effective.config) {
            Some(_) if setting.kind == Kind::Secret => {
                let _ = write!(out, "{} = \"<redacted>\"", setting.leaf());
            }
            Some(value) => {
                let _ = write!(out, "{} = {value}", setting.leaf());
            }
            None => {
                let _ = write!(out, "# {} is unset", setting.leaf());
            }
        }
        let _ = writeln!(out, "  # {source}");
    });
    namespace_tables(&mut out, &effective.config);
    out
}

/// The `[namespaces.NAME]` tables in effect (only a file sets them), with the keys they set.
fn namespace_tables(out: &mut String, config: &HubConfig) {
    if config.namespaces.is_empty() {
        return;
    }
    let mut tables = toml::Table::new();
    for (name, t) in &config.namespaces {
        let keys = [
            ("history_size", t.history_size.and_then(count)),
            ("history_ttl", t.history_ttl.and_then(duration)),
            ("presence", t.presence.and_then(boolean)),
            ("join_leave", t.join_leave.and_then(boolean)),
            ("publish", t.publish.and_then(boolean)),
            ("recover", t.recover.and_then(boolean)),
            ("latest", t.latest.and_then(count)),
            (
                "anonymous_subscribe",
                t.anonymous_subscribe.as_deref().and_then(list),
            ),
            (
                "anonymous_publish",
                t.anonymous_publish.as_deref().and_then(list),
            ),
            ("subscribe_hook", t.subscribe_hook.and_then(boolean)),
            ("publish_hook", t.publish_hook.and_then(boolean)),
        ];
        let table: toml::Table = keys
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), value?)))
            .collect();
        tables.insert(name.clone(), Value::Table(table));
    }
    let mut root = toml::Table::new();
    root.insert("namespaces".into(), Value::Table(tables));
    out.push_str(
        "
# Namespaces (from the file; keys not shown take the values above)
",
    );
    // A table of strings, integers, booleans and arrays of strings always serialises.
    out.push_str(&toml::to_string(&root).unwrap_or_default());
}

/// Calls `each` for every setting, writing a `[section]` header before the first of each.
fn for_each(out: &mut String, mut each: impl FnMut(&mut String, &Setting)) {
    let mut section = "";
    for setting in SETTINGS {
        if setting.section() != section {
            section = setting.section();
            let _ = writeln!(out, "\n[{section}]");
        }
        each(out, setting);
    }
}

fn line(out: &mut String, setting: &Setting, value: &Value) {
    let _ = writeln!(out, "{} = {value}", setting.leaf());
}

/// `text` as `# ` comment lines of at most [`WIDTH`] characters.
fn comment(out: &mut String, text: &str) {
    let mut current = String::from("#");
    for word in text.split_whitespace() {
        if current.len() + 1 + word.len() > WIDTH && current.len() > 1 {
            let _ = writeln!(out, "{current}");
            current = String::from("#");
        }
        current.push(' ');
        current.push_str(word);
    }
    let _ = writeln!(out, "{current}");
}
