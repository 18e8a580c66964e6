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

use figment::error::Kind;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::DeserializeOwned;

use crate::consul_keys::{self, ConfigWarning, WarningKind, strip_inert};
use crate::error::split_hint;
use crate::files::{FileFormat, config_files, dir_files, error_key, file_layer, text_layer};
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
    // Not a key: the former ACL gate (`MERIDIAN_ACL_PREVIEW`), now ignored.
    "ACL_PREVIEW",
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
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut warnings = Vec::new();
        let mut fig = Figment::new();
        if flags.dev {
            let dev = Layer::stripped(LAYER_DEV, dev_defaults(), &mut warnings)?;
            fig = fig.merge(checked(dev)?);
        }
        let format = flags.config_format()?;
        for path in config_files(&flags.config_file, &flags.config_dir, format)? {
            fig = fig.merge(file_layer(&path, format, &mut warnings)?);
        }
        for text in &flags.hcl {
            if let Err(r) = crate::hcl_scan::check(text) {
                return Err(ConfigError::Value {
                    origin: LAYER_HCL.into(),
                    key: None,
                    message: format!("{} (line {}, column {})", r.problem, r.line, r.column),
                    hint: None,
                });
            }
            let value: serde_json::Value = hcl::from_str(text).map_err(|e| ConfigError::Value {
                origin: LAYER_HCL.into(),
                key: None,
                message: e.to_string(),
                hint: None,
            })?;
            fig = fig.merge(checked(Layer::stripped(LAYER_HCL, value, &mut warnings)?)?);
        }
        for layer in env_layers(env, &mut warnings)? {
            fig = fig.merge(layer);
        }
        let overrides = Layer::stripped(LAYER_FLAGS, flags.overrides(), &mut warnings)?;
        fig = fig.merge(checked(overrides)?);
        finish(fig, flags.dev, warnings)
    }
}

/// Loads and validates config files and directories alone, without environment or flags, as
/// `meridian validate PATH...` does. Directories contribute their `*.json` and `*.hcl` files.
pub fn validate_paths(paths: &[PathBuf]) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let mut fig = Figment::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let files = if meta.is_dir() {
            dir_files(path, None)?
        } else {
            vec![path.clone()]
        };
        for file in files {
            fig = fig.merge(file_layer(&file, None, &mut warnings)?);
        }
    }
    finish(fig, false, warnings)
}

/// [`validate_paths`] for one file's text: `hcl` picks the format its extension would.
/// For the fuzz targets, which feed bytes rather than files; not an API.
#[doc(hidden)]
pub fn validate_text(text: &str, hcl: bool) -> Result<Config, ConfigError> {
    let (path, format) = if hcl {
        ("fuzz.hcl", FileFormat::Hcl)
    } else {
        ("fuzz.json", FileFormat::Json)
    };
    let mut warnings = Vec::new();
    let layer = text_layer(Path::new(path), text, format, &mut warnings)?;
    finish(Figment::new().merge(layer), false, warnings)
}

/// [`validate_paths`] for one file or directory.
pub fn validate_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    validate_paths(&[path.as_ref().to_path_buf()])
}

/// Extracts the merged layers, applies `-dev`, normalizes and validates.
fn finish(
    fig: Figment,
    dev: bool,
    mut warnings: Vec<ConfigWarning>,
) -> Result<Config, ConfigError> {
    let mut cfg: Config = fig.extract().map_err(from_figment)?;
    cfg.dev_mode = dev;
    // `ui` and `ui_config.enabled` are two spellings of one switch.
    let ui = cfg.ui_enabled();
    cfg.ui = ui;
    cfg.ui_config.enabled = ui;
    cfg.validate()?;
    warnings.extend(inert_typed_warnings(&fig));
    warnings.dedup();
    cfg.warnings = warnings;
    Ok(cfg)
}

/// Warnings for the keys of the typed `Config` that Meridian does not act on yet, named by
/// the layer that set them last. `-dev` is Meridian's own choice and is not reported.
fn inert_typed_warnings(fig: &Figment) -> Vec<ConfigWarning> {
    consul_keys::INERT_TYPED
        .iter()
        .filter_map(|key| {
            let meta = fig.find_metadata(key)?;
            let value = fig.find_value(key).ok()?;
            let off = key.starts_with("ports.")
                && consul_keys::is_off(&serde_json::to_value(&value).ok()?);
            (meta.name != LAYER_DEV && !off).then(|| ConfigWarning {
                key: (*key).to_string(),
                origin: origin_of(meta, key),
                kind: WarningKind::NoEffect,
            })
        })
        .collect()
}

/// A source's name for messages: the file, the variable, or the flag that sets `key`.
fn origin_of(meta: &Metadata, key: &str) -> String {
    if let Some(Source::File(path)) = &meta.source {
        return path.display().to_string();
    }
    match (meta.name.as_ref(), flag_for_key(key)) {
        (LAYER_FLAGS, Some(flag)) => format!("command-line flag {flag}"),
        (name, _) => name.to_string(),
    }
}

// === environment ===

/// One layer per `MERIDIAN_*` variable, so an error names the exact variable.
/// `__` separates nested keys: `MERIDIAN_DNS_CONFIG__NODE_TTL=5s` sets `dns_config.node_ttl`.
///
/// A variable that names no configuration key (a wrapper script's `MERIDIAN_BIN`) is
/// warned about and skipped; one that names a key with a bad value is an error.
fn env_layers(
    env: impl IntoIterator<Item = (String, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<Layer>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter_map(|(k, v)| {
            let upper = k.to_ascii_uppercase();
            let rest = upper.strip_prefix(ENV_PREFIX)?.to_string();
            (!rest.is_empty() && !CLIENT_ENV.contains(&rest.as_str())).then_some((k, v))
        })
        .collect();
    vars.sort();
    let mut layers = Vec::new();
    for (name, raw) in vars {
        let key = name[ENV_PREFIX.len()..]
            .to_ascii_lowercase()
            .replace("__", ".");
        let value = figment::util::nest(
            &key,
            raw.parse()
                .unwrap_or_else(|e: std::convert::Infallible| match e {}),
        );
        let json = serde_json::to_value(&value).map_err(|e| ConfigError::Value {
            origin: format!("environment variable {name}"),
            key: Some(key.clone()),
            message: e.to_string(),
            hint: None,
        })?;
        let layer = Layer::stripped(format!("environment variable {name}"), json, warnings)?;
        match Figment::from(&layer).extract::<Config>() {
            Ok(_) => layers.push(layer),
            Err(e) if matches!(e.kind, Kind::UnknownField(..)) => warnings.push(ConfigWarning {
                key: name,
                origin: "environment".into(),
                kind: WarningKind::NotAKey,
            }),
            Err(e) => return Err(from_figment(e)),
        }
    }
    Ok(layers)
}

// === layers ===

/// One named source of configuration values.
pub(crate) struct Layer {
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

    /// A layer from a JSON value whose Consul keys without effect are already taken out.
    pub(crate) fn from_json(
        name: impl Into<String>,
        source: Option<Source>,
        json: serde_json::Value,
    ) -> Result<Layer, ConfigError> {
        let value = Value::serialize(json).map_err(from_figment)?;
        Layer::new(name, source, value)
    }

    /// A layer from a JSON value, without the Consul keys Meridian does not act on (each
    /// pushed onto `warnings`, named by the variable or flag that set it).
    fn stripped(
        name: impl Into<String>,
        mut json: serde_json::Value,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<Layer, ConfigError> {
        let name = name.into();
        if let serde_json::Value::Object(dict) = &mut json {
            let origin = |key: &str| match (name.as_str(), flag_for_key(key)) {
                (LAYER_FLAGS, Some(flag)) => format!("command-line flag {flag}"),
                (other, _) => other.to_string(),
            };
            strip_inert(dict, &origin, warnings);
        }
        Layer::from_json(name, None, json)
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
