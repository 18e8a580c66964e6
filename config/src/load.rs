//! Loading: figment layering of `-dev` defaults < config files < inline `-hcl` < `MERIDIAN_*`
//! environment < command-line flags, then `validate()`.
//!
//! Each layer is first checked alone against the typed `Config`, so an error points at exactly
//! one source: a file (with the key path, and the line where the format reports one), one
//! environment variable, or the flags. Only then are the layers merged with figment (dicts
//! merge key by key; lists and scalars from a higher layer replace lower ones).
//!
//! ```text
//!  (serde defaults) < -dev < file1 < file2 < dir/*.{hcl,json} < -hcl < MERIDIAN_* < flags
//! ```

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::DeserializeOwned;

use crate::error::split_hint;
use crate::flags::{dev_defaults, flag_for_key};
use crate::{AgentFlags, Config, ConfigError};

/// Prefix of environment variables that set config keys (`MERIDIAN_PORTS__HTTP=8501`).
pub const ENV_PREFIX: &str = "MERIDIAN_";

/// `MERIDIAN_*` variables that belong to the CLI's HTTP client, not to the agent config.
const CLIENT_ENV: &[&str] = &[
    "HTTP_ADDR",
    "HTTP_TOKEN",
    "HTTP_TOKEN_FILE",
    "HTTP_AUTH",
    "HTTP_SSL",
    "HTTP_SSL_VERIFY",
    "CACERT",
    "CAPATH",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "TLS_SERVER_NAME",
    "GRPC_ADDR",
    "NAMESPACE",
    "PARTITION",
    "DATACENTER_CLI",
];

const LAYER_DEV: &str = "-dev defaults";
const LAYER_FLAGS: &str = "command-line flags";
const LAYER_HCL: &str = "-hcl";

/// figment [`Format`](figment::providers::Format) for HCL via hcl-rs (figment ships none).
#[derive(Debug, Clone, Copy)]
pub struct Hcl;

impl figment::providers::Format for Hcl {
    type Error = hcl::Error;
    const NAME: &'static str = "HCL";

    fn from_str<T: DeserializeOwned>(string: &str) -> Result<T, hcl::Error> {
        hcl::from_str(string)
    }
}

impl Config {
    /// Loads the agent configuration from `flags` and the process environment, and validates it.
    pub fn load(flags: &AgentFlags) -> Result<Config, ConfigError> {
        Self::load_with_env(flags, std::env::vars())
    }

    /// [`Config::load`] with the environment given explicitly (tests; embedding).
    pub fn load_with_env(
        flags: &AgentFlags,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        if flags.dev {
            fig = fig.merge(checked(Layer::from_json(LAYER_DEV, None, dev_defaults())?)?);
        }
        for path in config_files(&flags.config_file, &flags.config_dir)? {
            fig = fig.merge(file_layer(&path)?);
        }
        for text in &flags.hcl {
            let value: Value = hcl::from_str(text).map_err(|e| ConfigError::Value {
                origin: LAYER_HCL.into(),
                key: None,
                message: e.to_string(),
                hint: None,
            })?;
            fig = fig.merge(checked(Layer::new(LAYER_HCL, None, value)?)?);
        }
        for layer in env_layers(env)? {
            fig = fig.merge(checked(layer)?);
        }
        fig = fig.merge(checked(Layer::from_json(
            LAYER_FLAGS,
            None,
            flags.overrides(),
        )?)?);
        finish(fig, flags.dev)
    }
}

/// Loads and validates config files and directories alone, without environment or flags, as
/// `meridian validate PATH...` does. Directories contribute their `*.json` and `*.hcl` files.
pub fn validate_paths(paths: &[PathBuf]) -> Result<Config, ConfigError> {
    let mut fig = Figment::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let files = if meta.is_dir() {
            dir_files(path)?
        } else {
            vec![path.clone()]
        };
        for file in files {
            fig = fig.merge(file_layer(&file)?);
        }
    }
    finish(fig, false)
}

/// [`validate_paths`] for one file or directory.
pub fn validate_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    validate_paths(&[path.as_ref().to_path_buf()])
}

/// Extracts the merged layers, applies `-dev`, normalizes and validates.
fn finish(fig: Figment, dev: bool) -> Result<Config, ConfigError> {
    let mut cfg: Config = fig.extract().map_err(from_figment)?;
    cfg.dev_mode = dev;
    // `ui` and `ui_config.enabled` are two spellings of one switch.
    let ui = cfg.ui_enabled();
    cfg.ui = ui;
    cfg.ui_config.enabled = ui;
    cfg.validate()?;
    Ok(cfg)
}

// === files ===

/// `-config-file` paths, then each `-config-dir`'s files.
// Consul interleaves files and dirs in command-line order; clap keeps them apart, so files
// come first. Later files still win over earlier ones.
fn config_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = files.to_vec();
    for dir in dirs {
        out.extend(dir_files(dir)?);
    }
    Ok(out)
}

/// The `*.json` and `*.hcl` files in `dir`, in lexical order of their names.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_file() && FileFormat::of(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[derive(Debug, Clone, Copy)]
enum FileFormat {
    Json,
    Hcl,
}

impl FileFormat {
    fn of(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()? {
            "json" => Some(FileFormat::Json),
            "hcl" => Some(FileFormat::Hcl),
            _ => None,
        }
    }
}

/// Reads, checks and converts one file into a layer.
fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let format = FileFormat::of(path).ok_or_else(|| ConfigError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
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
    let value: Value = match format {
        FileFormat::Json => {
            // Typed first, for the line and key path of type errors and unknown keys.
            let mut de = serde_json::Deserializer::from_str(&text);
            if let Err(e) = serde_path_to_error::deserialize::<_, Config>(&mut de) {
                let key = error_key(&e.path().to_string(), &e.inner().to_string());
                let inner = e.into_inner();
                let message = strip_json_location(&inner);
                return Err(file_err(
                    key,
                    Some(inner.line()).filter(|l| *l > 0),
                    &message,
                ));
            }
            serde_json::from_str(&text)
                .map_err(|e| file_err(None, Some(e.line()), &strip_json_location(&e)))?
        }
        FileFormat::Hcl => {
            let body: hcl::Body = text.parse().map_err(|e: hcl::Error| match e {
                hcl::Error::Parse(pe) => {
                    let loc = pe.location();
                    let message = format!("{} (column {})", pe.message(), loc.column());
                    file_err(None, Some(loc.line()), &message)
                }
                other => file_err(None, None, &other.to_string()),
            })?;
            let de = hcl::de::Deserializer::from_body(body.clone());
            if let Err(e) = serde_path_to_error::deserialize::<_, Config>(de) {
                let key = error_key(&e.path().to_string(), &e.inner().to_string());
                return Err(file_err(key, None, &e.into_inner().to_string()));
            }
            hcl::de::from_body(body).map_err(|e| file_err(None, None, &e.to_string()))?
        }
    };
    Layer::new(
        path.display().to_string(),
        Some(Source::File(path.to_path_buf())),
        value,
    )
}

/// serde_json appends ` at line L column C`; the line is reported separately.
fn strip_json_location(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    msg.strip_suffix(&suffix).map(str::to_string).unwrap_or(msg)
}

/// The key path of a deserialization error. Some deserializers report an unknown key at its
/// parent, so the key's own name is taken from the message and appended when missing.
fn error_key(path: &str, message: &str) -> Option<String> {
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

// === environment ===

/// One layer per `MERIDIAN_*` variable, so an error names the exact variable.
/// `__` separates nested keys: `MERIDIAN_DNS_CONFIG__NODE_TTL=5s` sets `dns_config.node_ttl`.
fn env_layers(env: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Layer>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter_map(|(k, v)| {
            let upper = k.to_ascii_uppercase();
            let rest = upper.strip_prefix(ENV_PREFIX)?.to_string();
            (!rest.is_empty() && !CLIENT_ENV.contains(&rest.as_str())).then_some((k, v))
        })
        .collect();
    vars.sort();
    vars.into_iter()
        .map(|(name, raw)| {
            let key = name[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            let value = figment::util::nest(
                &key,
                raw.parse()
                    .unwrap_or_else(|e: std::convert::Infallible| match e {}),
            );
            Layer::new(format!("environment variable {name}"), None, value)
        })
        .collect()
}

// === layers ===

/// One named source of configuration values.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Layer {
    fn new(
        name: impl Into<String>,
        source: Option<Source>,
        value: Value,
    ) -> Result<Layer, ConfigError> {
        let name = name.into();
        let dict = value.into_dict().ok_or_else(|| ConfigError::Value {
            origin: name.clone(),
            key: None,
            message: "the top level must be an object of keys".into(),
            hint: None,
        })?;
        let metadata = match source {
            Some(source) => Metadata::named(name).source(source),
            None => Metadata::named(name),
        };
        Ok(Layer { metadata, dict })
    }

    fn from_json(
        name: &str,
        source: Option<Source>,
        json: serde_json::Value,
    ) -> Result<Layer, ConfigError> {
        let value = Value::serialize(json).map_err(from_figment)?;
        Layer::new(name, source, value)
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Extracts `layer` alone, so its errors are attributed to it and not to a merged dict.
fn checked(layer: Layer) -> Result<Layer, ConfigError> {
    let fig = Figment::from(&layer);
    fig.extract::<Config>().map_err(from_figment)?;
    Ok(layer)
}

/// Maps figment's first error to a `ConfigError` naming its source and key.
fn from_figment(err: figment::Error) -> ConfigError {
    let message = err.kind.to_string();
    let path = if err.path.is_empty() {
        ".".to_string()
    } else {
        err.path.join(".")
    };
    let key = error_key(&path, &message);
    let (message, hint) = split_hint(&message);
    let Some(meta) = err.metadata else {
        return ConfigError::Value {
            origin: "configuration".into(),
            key,
            message,
            hint,
        };
    };
    if let Some(Source::File(path)) = meta.source {
        return ConfigError::File {
            path,
            key,
            line: None,
            message,
            hint,
        };
    }
    let origin = match (meta.name.as_ref(), key.as_deref().and_then(flag_for_key)) {
        (LAYER_FLAGS, Some(flag)) => format!("command-line flag {flag}"),
        (name, _) => name.to_string(),
    };
    ConfigError::Value {
        origin,
        key,
        message,
        hint,
    }
}
