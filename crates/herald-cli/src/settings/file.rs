//! A TOML configuration file, read once and kept with its text so that every error can name
//! the line it is about.

use super::{ConfigError, check};
use herald_hub::HubConfig;
use std::path::{Path, PathBuf};
use toml::Table;
use toml::de::DeTable;

/// A configuration file that deserialises into `HubConfig`.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    path: PathBuf,
    text: String,
    table: Table,
    config: HubConfig,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(path, text)
    }

    /// Parses `text` as the contents of `path`: syntax, types, unknown keys.
    pub(crate) fn parse(path: &Path, text: String) -> Result<Self, ConfigError> {
        let mut file = Self {
            path: path.to_owned(),
            text,
            table: Table::new(),
            config: HubConfig::default(),
        };
        // Into the real type first: its errors carry the span of the offending key or value.
        file.config = toml::from_str(&file.text).map_err(|e| file.error(&e))?;
        file.table = toml::from_str(&file.text).map_err(|e| file.error(&e))?;
        Ok(file)
    }

    /// Applies the rules serde cannot express (`HubConfig::validate`: `tls.cert` without
    /// `tls.key`, the broker URL…) to the file alone.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check::check(&self.config)
            .map_err(|p| ConfigError(format!("{}: {}", self.locate(&p.key), p.message)))
    }

    /// The file's TOML table.
    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// Whether the file sets the dotted `key`.
    pub(crate) fn has(&self, key: &str) -> bool {
        let mut table = &self.table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                return table.contains_key(part);
            }
            match table.get(part).and_then(toml::Value::as_table) {
                Some(inner) => table = inner,
                None => return false,
            }
        }
        false
    }

    /// Whether the file sets the dotted `key`, at any depth (`namespaces.chat.latest`).
    pub(crate) fn locates(&self, key: &str) -> bool {
        self.key_offset(key).is_some()
    }

    /// `FILE:LINE:COL` of the dotted `key`, or `FILE` when the file does not set it.
    pub(crate) fn locate(&self, key: &str) -> String {
        match self.key_offset(key) {
            Some(offset) => self.at(offset),
            None => self.path.display().to_string(),
        }
    }

    fn key_offset(&self, key: &str) -> Option<usize> {
        let document = DeTable::parse(&self.text).ok()?;
        let mut table = document.get_ref();
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let (name, value) = table.get_key_value(part)?;
            if parts.peek().is_none() {
                return Some(name.span().start);
            }
            table = value.get_ref().as_table()?;
        }
        None
    }

    fn error(&self, e: &toml::de::Error) -> ConfigError {
        let place = match e.span() {
            Some(span) => self.at(span.start),
            None => self.path.display().to_string(),
        };
        ConfigError(format!("{place}: {}", e.message().trim_end()))
    }

    /// `FILE:LINE:COL` of a byte offset; both counted from 1, the column in characters.
    fn at(&self, offset: usize) -> String {
        let (line, column) = line_column(&self.text, offset);
        format!("{}:{line}:{column}", self.path.display())
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}
