//! The value types a setting can have, and how a flag or environment string becomes the TOML
//! value the configuration file would hold. Flags and variables go through the same serde path
//! as the file, so a value means the same thing wherever it comes from.

use std::net::SocketAddr;
use toml::{Table, Value};

/// How a setting's string form (a flag or a `HERALD_*` variable) is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A non-empty string.
    Text,
    /// An optional string; empty unsets it. Shown redacted by `--print-config`.
    Secret,
    /// An optional file path; empty unsets it.
    Path,
    /// `IP:PORT`.
    Addr,
    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// An optional boolean; empty unsets it.
    OptBool,
    /// A non-negative integer that fits `usize`.
    Count,
    /// A non-negative integer that fits `u32`.
    Count32,
    /// A humantime duration: `500ms`, `10s`, `5m`, `1h 30m`.
    Duration,
    /// Strings; a flag may repeat, and each value (and the variable) is split on commas.
    /// Empty items are dropped, so an empty value sets an empty list.
    List,
    /// Plain-mode routes, `PATH?PARAM&PARAM`; repeated and comma-separated like `List`.
    Routes,
}

impl Kind {
    /// Reads the raw values of one flag (or one variable) into the file's TOML value. `None`
    /// unsets an optional setting.
    pub(crate) fn parse(self, raw: &[String]) -> Result<Option<Value>, String> {
        match self {
            Kind::List => Ok(Some(Value::Array(items(raw).map(text).collect()))),
            Kind::Routes => Ok(Some(Value::Array(items(raw).map(route).collect()))),
            _ => match raw.last() {
                Some(one) => self.parse_one(one),
                None => Ok(None),
            },
        }
    }

    /// Checks one value as clap receives it.
    pub(crate) fn check(self, raw: &str) -> Result<(), String> {
        self.parse(&[raw.to_owned()]).map(drop)
    }

    fn parse_one(self, s: &str) -> Result<Option<Value>, String> {
        let optional = matches!(self, Kind::Secret | Kind::Path | Kind::OptBool);
        if s.is_empty() {
            return if optional {
                Ok(None)
            } else {
                Err("empty value".into())
            };
        }
        let value = match self {
            Kind::Text | Kind::Secret | Kind::Path => text(s),
            Kind::Addr => s
                .parse::<SocketAddr>()
                .map(|_| text(s))
                .map_err(|e| format!("`{s}` is not IP:PORT ({e})"))?,
            Kind::Bool | Kind::OptBool => Value::Boolean(parse_bool(s)?),
            Kind::Count => integer(
                s.parse::<usize>().ok().and_then(|n| i64::try_from(n).ok()),
                s,
            )?,
            Kind::Count32 => integer(s.parse::<u32>().ok().map(i64::from), s)?,
            Kind::Duration => humantime::parse_duration(s)
                .map(|_| text(s))
                .map_err(|e| format!("`{s}` is not a duration like 10s or 5m ({e})"))?,
            Kind::List | Kind::Routes => return self.parse(&[s.to_owned()]),
        };
        Ok(Some(value))
    }
}

fn items(raw: &[String]) -> impl Iterator<Item = &str> {
    raw.iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true or false)")),
    }
}

fn integer(parsed: Option<i64>, s: &str) -> Result<Value, String> {
    parsed
        .map(Value::Integer)
        .ok_or_else(|| format!("`{s}` is not a non-negative integer in range"))
}

/// `/chat?groupId&kind` → `{ path = "/chat", params = ["groupId", "kind"] }`.
fn route(s: &str) -> Value {
    let (path, query) = s.split_once('?').unwrap_or((s, ""));
    route_value(path, query.split('&').filter(|p| !p.is_empty()))
}

/// A plain-mode route as the file writes it.
pub(crate) fn route_value<'a>(path: &str, params: impl IntoIterator<Item = &'a str>) -> Value {
    let mut table = Table::new();
    table.insert("path".into(), text(path));
    table.insert(
        "params".into(),
        Value::Array(params.into_iter().map(text).collect()),
    );
    Value::Table(table)
}

/// A TOML value written the way a flag takes it (for the defaults in `--help`).
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(","),
        Value::Table(route) => {
            let path = route.get("path").map(show).unwrap_or_default();
            match route.get("params").and_then(Value::as_array) {
                Some(params) if !params.is_empty() => {
                    let params: Vec<_> = params.iter().map(show).collect();
                    format!("{path}?{}", params.join("&"))
                }
                _ => path,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Kind, raw: &[&str]) -> Result<Option<Value>, String> {
        let raw: Vec<String> = raw.iter().map(|s| (*s).to_owned()).collect();
        kind.parse(&raw)
    }

    #[test]
    fn lists_split_on_commas_across_repeated_values_and_empty_means_none() {
        let list = parse(Kind::List, &["a, b", "c"]).unwrap().unwrap();
        assert_eq!(list.to_string(), r#"["a", "b", "c"]"#);
        let empty = parse(Kind::List, &[""]).unwrap().unwrap();
        assert_eq!(empty.as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn routes_take_path_then_ampersand_separated_params() {
        let routes = parse(Kind::Routes, &["/chat?groupId&kind,/lobby"])
            .unwrap()
            .unwrap();
        let chat = r#"{ path = "/chat", params = ["groupId", "kind"] }"#;
        let lobby = r#"{ path = "/lobby", params = [] }"#;
        assert_eq!(routes.to_string(), format!("[{chat}, {lobby}]"));
        assert_eq!(show(&routes), "/chat?groupId&kind,/lobby");
    }

    #[test]
    fn empty_unsets_optional_values_and_is_refused_for_required_ones() {
        assert_eq!(parse(Kind::Secret, &[""]), Ok(None));
        assert_eq!(parse(Kind::OptBool, &[""]), Ok(None));
        assert!(parse(Kind::Text, &[""]).is_err());
        assert!(parse(Kind::Count, &[""]).is_err());
    }

    #[test]
    fn scalars_are_checked_before_they_reach_the_config() {
        assert!(Kind::Addr.check("127.0.0.1:0").is_ok());
        assert!(Kind::Addr.check("localhost").is_err());
        assert!(Kind::Count.check("-1").is_err());
        assert!(Kind::Count32.check("4294967296").is_err());
        assert!(Kind::Duration.check("5 parsecs").is_err());
        assert_eq!(parse(Kind::Bool, &["OFF"]), Ok(Some(Value::Boolean(false))));
        assert!(Kind::Bool.check("maybe").is_err());
    }
}
