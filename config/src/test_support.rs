//! Helpers shared by the config crate's test modules: the agent flags parsed as the binary
//! parses them, config files in a temp dir, and environments given explicitly.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::{AgentFlags, normalize_args};

/// A throwaway command that wraps the flags, as the binary does.
#[derive(Debug, Parser)]
struct TestCli {
    #[command(flatten)]
    flags: AgentFlags,
}

/// `args` parsed as `meridian agent ARGS` parses them (Consul's single-dash flags).
pub(crate) fn flags(args: &[&str]) -> AgentFlags {
    try_flags(args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`flags`], with clap's error (its text names the flag) instead of a panic.
pub(crate) fn try_flags(args: &[&str]) -> Result<AgentFlags, clap::Error> {
    let argv = std::iter::once("meridian".to_string()).chain(args.iter().map(|s| s.to_string()));
    TestCli::try_parse_from(normalize_args(argv)).map(|c| c.flags)
}

/// Writes `text` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An environment of exactly these variables.
pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
