//! The hub's configuration as `herald serve` assembles it.
//!
//! Precedence, highest first: **flag > `HERALD_*` variable > file > default**. The file is
//! deserialised into `HubConfig` as written (so `deny_unknown_fields` catches typos, with a
//! line number); then each flag, or else its variable, replaces the file's value for that key
//! in the file's TOML table, and the table is deserialised again. A value therefore means the
//! same thing in a flag, a variable and the file. The keys, flags and variables come from one
//! table, [`table::SETTINGS`].

mod check;
mod command;
mod file;
mod kind;
mod render;
mod table;
#[cfg(test)]
mod tests;

pub(crate) use command::{ConfigCommand, main as config_main, print};
pub(crate) use file::ConfigFile;
pub(crate) use render::effective_file;
pub(crate) use table::SETTINGS;

use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};
use herald_hub::HubConfig;
use std::fmt;
use table::{Setting, section_title};
use toml::{Table, Value};

/// A configuration that cannot be used; the message starts with where the value came from
/// (`FILE:LINE:COL`, `--flag` or `HERALD_VAR`).
#[derive(Debug)]
pub(crate) struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where a setting's effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Nothing set it.
    Default,
    /// The configuration file.
    File,
    /// Its `HERALD_*` variable.
    Env,
    /// Its flag.
    Flag,
}

/// The merged configuration, with the source of each setting (in [`SETTINGS`] order).
#[derive(Debug)]
pub(crate) struct Effective {
    pub(crate) config: HubConfig,
    pub(crate) sources: Vec<Source>,
}

/// The hub flags of `herald serve`, one per [`SETTINGS`] row, each as given on the command line.
#[derive(Clone, Debug, Default)]
pub(crate) struct HubFlags {
    values: Vec<Option<Vec<String>>>,
}

impl FromArgMatches for HubFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let values = SETTINGS
            .iter()
            .map(|s| {
                let given = matches.try_get_many::<String>(s.flag).ok().flatten();
                given.map(|values| values.cloned().collect())
            })
            .collect();
        Ok(Self { values })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for HubFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = HubConfig::default();
        SETTINGS
            .iter()
            .fold(cmd, |cmd, s| cmd.arg(arg(s, &defaults)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn arg(setting: &'static Setting, defaults: &HubConfig) -> Arg {
    let default = (setting.get)(defaults).map_or_else(|| "unset".into(), |v| kind::show(&v));
    let kind = setting.kind;
    let arg = Arg::new(setting.flag)
        .long(setting.flag)
        .value_name(setting.value_name)
        .help(format!("{} [default: {default}]", setting.help))
        .long_help(format!(
            "{}\n\n[env: {}]\n[default: {default}]",
            setting.help,
            setting.env()
        ))
        .help_heading(section_title(setting.section()))
        .value_parser(move |s: &str| kind.check(s).map(|()| s.to_owned()));
    match kind {
        kind::Kind::Bool | kind::Kind::OptBool => arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true"),
        kind::Kind::List | kind::Kind::Routes => arg.action(ArgAction::Append),
        _ => arg.action(ArgAction::Set),
    }
}

/// Merges defaults, the file, the variables `env` returns and the flags, in that order of
/// increasing precedence, then applies the rules serde cannot express.
pub(crate) fn resolve(
    file: Option<&ConfigFile>,
    flags: &HubFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Effective, ConfigError> {
    let mut table = file.map(ConfigFile::table).cloned().unwrap_or_default();
    let mut sources = Vec::with_capacity(SETTINGS.len());
    for (i, setting) in SETTINGS.iter().enumerate() {
        let flag = flags.values.get(i).cloned().flatten();
        let source = match overriding(setting, flag, env)? {
            Some((value, source)) => {
                set(&mut table, setting.key, value);
                source
            }
            None if file.is_some_and(|f| f.has(setting.key)) => Source::File,
            None => Source::Default,
        };
        sources.push(source);
    }
    let config: HubConfig = table.try_into().map_err(|e: toml::de::Error| {
        ConfigError(format!("invalid configuration: {}", e.message()))
    })?;
    let effective = Effective { config, sources };
    if let Err(problem) = check::check(&effective.config) {
        return Err(ConfigError(format!(
            "{}: {}",
            effective.origin(&problem.key, file),
            problem.message
        )));
    }
    Ok(effective)
}

/// The flag's value, or else the variable's, read as the setting's kind; `None` when neither
/// is given.
fn overriding(
    setting: &Setting,
    flag: Option<Vec<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Option<Value>, Source)>, ConfigError> {
    let (raw, source, origin) = match (flag, env(&setting.env())) {
        (Some(raw), _) => (raw, Source::Flag, format!("--{}", setting.flag)),
        (None, Some(raw)) => (vec![raw], Source::Env, setting.env()),
        (None, None) => return Ok(None),
    };
    let value = setting
        .kind
        .parse(&raw)
        .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
    Ok(Some((value, source)))
}

/// The process environment, for [`resolve`].
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

impl Effective {
    /// Where the value of `key` came from, for error messages.
    fn origin(&self, key: &str, file: Option<&ConfigFile>) -> String {
        let Some(i) = SETTINGS.iter().position(|s| s.key == key) else {
            // A TOML-only key (a table such as `[namespaces.NAME]`): only a file sets it.
            return match file {
                Some(file) if file.locates(key) => file.locate(key),
                _ => key.to_owned(),
            };
        };
        match (self.sources.get(i), file) {
            (Some(Source::Flag), _) => format!("--{}", SETTINGS[i].flag),
            (Some(Source::Env), _) => SETTINGS[i].env(),
            (Some(Source::File), Some(file)) => file.locate(key),
            _ => "default".to_owned(),
        }
    }
}

/// Sets (or, for `None`, removes) a dotted key of any depth (`hooks.connect.url`).
fn set(table: &mut Table, key: &str, value: Option<Value>) {
    let (table, leaf) = match key.split_once('.') {
        None => (table, key),
        Some((section, rest)) => {
            let slot = table
                .entry(section)
                .or_insert_with(|| Value::Table(Table::new()));
            if !slot.is_table() {
                *slot = Value::Table(Table::new());
            }
            if let Some(inner) = slot.as_table_mut() {
                set(inner, rest, value);
            }
            return;
        }
    };
    match value {
        Some(value) => {
            table.insert(leaf.to_owned(), value);
        }
        None => {
            table.remove(leaf);
        }
    }
}
