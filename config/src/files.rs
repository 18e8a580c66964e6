//! Config files: which files `-config-file`/`-config-dir` name, reading one JSON or HCL file,
//! taking out the Consul keys Meridian does not act on, and checking the rest alone against
//! the typed `Config` so an error names the file, the key and (for JSON) the line.
//!
//! Reads files; does not log.

use std::path::{Path, PathBuf};

use figment::Source;

use crate::consul_keys::{ConfigWarning, strip_inert};
use crate::error::split_hint;
use crate::load::Layer;
use crate::{Config, ConfigError};

/// The format of a config file: from its extension, or `-config-format` for every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    Json,
    Hcl,
}

impl FileFormat {
    /// The format a file's extension names, if any.
    fn of(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()? {
            "json" => Some(FileFormat::Json),
            "hcl" => Some(FileFormat::Hcl),
            _ => None,
        }
    }

    /// Parses `-config-format`'s value.
    pub(crate) fn parse(s: &str) -> Option<FileFormat> {
        match s {
            "json" => Some(FileFormat::Json),
            "hcl" => Some(FileFormat::Hcl),
            _ => None,
        }
    }
}

/// `-config-file` paths, then each `-config-dir`'s files.
// Consul interleaves files and dirs in command-line order; clap keeps them apart, so files
// come first. Later files still win over earlier ones.
pub(crate) fn config_files(
    files: &[PathBuf],
    dirs: &[PathBuf],
    format: Option<FileFormat>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = files.to_vec();
    for dir in dirs {
        out.extend(dir_files(dir, format)?);
    }
    Ok(out)
}

/// The `*.json` and `*.hcl` files in `dir` (every file with `-config-format`, as Consul), in
/// lexical order of their names.
pub(crate) fn dir_files(
    dir: &Path,
    format: Option<FileFormat>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_file() && (format.is_some() || FileFormat::of(&path).is_some()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one file, takes out (and warns about) the keys with no effect, checks the rest
/// against the typed `Config`, and returns it as a layer.
pub(crate) fn file_layer(
    path: &Path,
    format: Option<FileFormat>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Layer, ConfigError> {
    let format =
        format
            .or_else(|| FileFormat::of(path))
            .ok_or_else(|| ConfigError::UnknownFormat {
                path: path.to_path_buf(),
            })?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text_layer(path, &text, format, warnings)
}

/// [`file_layer`] once the file is read: `text` is the content of `path`, in `format`.
pub(crate) fn text_layer(
    path: &Path,
    text: &str,
    format: FileFormat,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Layer, ConfigError> {
    let file_err = |key: Option<String>, line: Option<usize>, message: &str| {
        let (message, hint) = split_hint(message);
        ConfigError::File {
            path: path.to_path_buf(),
            key,
            line,
            message,
            hint,
        }
    };
    let mut value: serde_json::Value = match format {
        FileFormat::Json => serde_json::from_str(text)
            .map_err(|e| file_err(None, Some(e.line()), &strip_json_location(&e)))?,
        FileFormat::Hcl => {
            if let Err(r) = crate::hcl_scan::check(text) {
                let message = format!("{} (column {})", r.problem, r.column);
                return Err(file_err(None, Some(r.line), &message));
            }
            let body: hcl::Body = text.parse().map_err(|e: hcl::Error| match e {
                hcl::Error::Parse(pe) => {
                    let loc = pe.location();
                    let message = format!("{} (column {})", pe.message(), loc.column());
                    file_err(None, Some(loc.line()), &message)
                }
                other => file_err(None, None, &other.to_string()),
            })?;
            hcl::from_body(body).map_err(|e| file_err(None, None, &e.to_string()))?
        }
    };
    let origin = path.display().to_string();
    if let serde_json::Value::Object(dict) = &mut value {
        strip_inert(dict, &|_| origin.clone(), warnings);
    }
    // Typed, for the key path of type errors and unknown keys.
    if let Err(e) = serde_path_to_error::deserialize::<_, Config>(&value) {
        let key = error_key(&e.path().to_string(), &e.inner().to_string());
        let line = match (format, key.as_deref()) {
            (FileFormat::Json, Some(k)) => json_line(text, k),
            _ => None,
        };
        return Err(file_err(key, line, &e.into_inner().to_string()));
    }
    Layer::from_json(origin, Some(Source::File(path.to_path_buf())), value)
}

/// The line of `key` (a dotted path) in JSON `text`: the exact one when a typed parse of the
/// whole text fails at the same key, else the first line where the path's names appear in
/// order. `None` when neither finds it.
fn json_line(text: &str, key: &str) -> Option<usize> {
    let mut de = serde_json::Deserializer::from_str(text);
    if let Err(e) = serde_path_to_error::deserialize::<_, Config>(&mut de) {
        let same = error_key(&e.path().to_string(), &e.inner().to_string());
        let line = e.inner().line();
        if same.as_deref() == Some(key) && line > 0 {
            return Some(line);
        }
    }
    let (mut from, mut found) = (0, 0);
    for name in key.split('.') {
        let name = name.split('[').next().unwrap_or(name);
        let quoted = format!("\"{name}\"");
        found = from + text.get(from..)?.find(&quoted)?;
        from = found + quoted.len();
    }
    Some(text.get(..found)?.matches('\n').count() + 1)
}

/// serde_json appends ` at line L column C`; the line is reported separately.
fn strip_json_location(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    msg.strip_suffix(&suffix).map(str::to_string).unwrap_or(msg)
}

/// The key path of a deserialization error. Some deserializers report an unknown key at its
/// parent, so the key's own name is taken from the message and appended when missing.
pub(crate) fn error_key(path: &str, message: &str) -> Option<String> {
    let parent = if path == "." {
        None
    } else {
        Some(path.to_string())
    };
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string());
    match (parent, unknown) {
        // Some deserializers already include the unknown key in the path.
        (Some(p), Some(u)) if p == u || p.ends_with(&format!(".{u}")) => Some(p),
        (Some(p), Some(u)) => Some(format!("{p}.{u}")),
        (None, Some(u)) => Some(u),
        (p, None) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_finds_a_nested_key_after_stripped_ones() {
        let text = "{\n  \"telemetry\": {},\n  \"ports\": {\n    \"http\": \"x\"\n  }\n}\n";
        assert_eq!(json_line(text, "ports.http"), Some(4));
        assert_eq!(json_line(text, "nowhere"), None);
    }
}
