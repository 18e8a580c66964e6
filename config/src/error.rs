//! `ConfigError`: why a configuration could not be loaded or is invalid.
//!
//! Every variant names where the bad value came from (a file, an environment variable, a
//! command-line flag) and, where known, the key path and the line, so an operator can fix it
//! without guessing. No I/O here.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded or validated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file or directory could not be read.
    #[error("config file {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A config file has a name that is neither `.json` nor `.hcl`.
    #[error("config file {}: unknown format, expected a .json or .hcl file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A config file does not parse, or a value in it has the wrong type or an unknown key.
    #[error("config file {}: {message}{}{}", path.display(), Location { key: key.as_deref(), line: *line }, Hint(hint.as_deref()))]
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key path, when known (e.g. `ports.http`).
        key: Option<String>,
        /// The 1-based line, when the format reports one.
        line: Option<usize>,
        /// What is wrong, as the parser said it.
        message: String,
        /// What was expected instead (e.g. the list of known keys), when the parser said.
        hint: Option<String>,
    },
    /// A value from the environment or the command line has the wrong type or an unknown key.
    #[error("{origin}: {message}{}{}", Location { key: key.as_deref(), line: None }, Hint(hint.as_deref()))]
    Value {
        /// Where the value came from, e.g. `environment variable MERIDIAN_PORTS__HTTP`.
        origin: String,
        /// The dotted key path, when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
        /// What was expected instead, when the parser said.
        hint: Option<String>,
    },
    /// The merged configuration breaks a rule (a range, a format, or a cross-field rule).
    #[error("invalid configuration: {key}: {message}")]
    Invalid {
        /// The key (or keys) at fault, e.g. `bootstrap_expect`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// A validation error for `key`.
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key path the error is about, if known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::File { key, .. } | ConfigError::Value { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether the error is about a file's contents or a file that could not be read.
    pub fn is_file_error(&self) -> bool {
        matches!(
            self,
            ConfigError::File { .. } | ConfigError::Read { .. } | ConfigError::UnknownFormat { .. }
        )
    }
}

/// Renders ` at key "a.b", line 3` (either part optional).
struct Location<'a> {
    key: Option<&'a str>,
    line: Option<usize>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = self.key {
            write!(f, " at key {key:?}")?;
        }
        match (self.key, self.line) {
            (Some(_), Some(line)) => write!(f, ", line {line}"),
            (None, Some(line)) => write!(f, " at line {line}"),
            _ => Ok(()),
        }
    }
}

/// Renders `, expected one of ...` after the location.
struct Hint<'a>(Option<&'a str>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(hint) => write!(f, ", {hint}"),
            None => Ok(()),
        }
    }
}

/// Splits serde's `unknown field `x`, expected one of ...` into the complaint and the hint, so
/// the key and line can go between them.
pub(crate) fn split_hint(message: &str) -> (String, Option<String>) {
    match message.split_once(", expected ") {
        Some((head, tail)) => (head.to_string(), Some(format!("expected {tail}"))),
        None => (message.to_string(), None),
    }
}
