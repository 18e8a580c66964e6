//! `meridian kv get|put|delete`: Consul's `consul kv` over `/v1/kv/:key`, with its output text
//! and exit codes (`command/kv/{get,put,del}`).

use std::io::{Read, Write};

use base64::Engine;
use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags, ServerFlags, escape_path};
use super::table::tabwrite;

const QUERY_ERR: &str = "Error querying Consul agent";

/// `kv` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KvCommand {
    /// Read a key, or list keys under a prefix.
    Get(GetArgs),
    /// Write a key.
    Put(PutArgs),
    /// Delete a key or a prefix.
    Delete(DeleteArgs),
}

/// `kv get [-recurse] [-keys] [-separator S] [-detailed] [-base64] KEY`
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Print every key-value pair under the prefix.
    #[arg(long)]
    pub recurse: bool,
    /// List key names under the prefix.
    #[arg(long)]
    pub keys: bool,
    /// Stop listing at this separator (with -keys).
    #[arg(long, default_value = "/")]
    pub separator: String,
    /// Print all metadata, not only the value.
    #[arg(long)]
    pub detailed: bool,
    /// Print values base64-encoded.
    #[arg(long)]
    pub base64: bool,
    /// Key or prefix.
    #[arg(default_value = "")]
    pub key: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// `kv put [-flags N] [-cas -modify-index N] [-acquire|-release -session ID] [-base64] KEY [DATA]`
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// Opaque u64 stored with the key.
    #[arg(long, default_value_t = 0)]
    pub flags: u64,
    /// Check-and-set: write only if the key's ModifyIndex equals -modify-index.
    #[arg(long)]
    pub cas: bool,
    /// ModifyIndex for -cas.
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
    /// Session for -acquire and -release.
    #[arg(long)]
    pub session: Option<String>,
    /// Take the lock on the key for -session.
    #[arg(long)]
    pub acquire: bool,
    /// Release the lock on the key held by -session.
    #[arg(long)]
    pub release: bool,
    /// DATA is base64; decode it before writing.
    #[arg(long)]
    pub base64: bool,
    /// Key to write.
    pub key: String,
    /// Value: literal text, `-` for stdin, `@path` for a file. Omit for an empty value.
    #[arg(allow_hyphen_values = true)]
    pub data: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// `kv delete [-recurse] [-cas -modify-index N] KEY`
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Delete every key under the prefix.
    #[arg(long)]
    pub recurse: bool,
    /// Check-and-set: delete only if the key's ModifyIndex equals -modify-index.
    #[arg(long)]
    pub cas: bool,
    /// ModifyIndex for -cas.
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
    /// Key or prefix.
    #[arg(default_value = "")]
    pub key: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// One entry of `GET /v1/kv/:key` (consul.md §2.5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KvPair {
    /// Full key.
    pub key: String,
    /// Raft index of creation.
    pub create_index: u64,
    /// Raft index of the last write.
    pub modify_index: u64,
    /// Times the lock was acquired.
    pub lock_index: u64,
    /// Opaque flags.
    pub flags: u64,
    /// Base64 value, or null when empty.
    pub value: Option<String>,
    /// Lock holder, if locked.
    pub session: Option<String>,
}

impl KvPair {
    fn bytes(&self) -> Result<Vec<u8>, CliError> {
        match &self.value {
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| CliError::msg(format!("Error decoding value of {}: {e}", self.key))),
            None => Ok(Vec::new()),
        }
    }
}

/// Runs a `kv` subcommand.
pub async fn run(cmd: KvCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        KvCommand::Get(a) => get(a, out).await,
        KvCommand::Put(a) => put(a, out).await,
        KvCommand::Delete(a) => delete(a, out).await,
    }
}

/// Consul strips one leading `/` as a courtesy: keys cannot start with it.
fn trim_key(key: &str) -> String {
    key.strip_prefix('/').unwrap_or(key).to_string()
}

async fn get(a: GetArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = trim_key(&a.key);
    if key.is_empty() && !(a.recurse || a.keys) {
        return Err(CliError::msg("Error! Missing KEY argument"));
    }
    let client = ApiClient::new(&a.http, Some(&a.server))
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let path = format!("/v1/kv/{}", escape_path(&key));
    if a.keys {
        let keys: Vec<String> = client
            .get_json(
                &path,
                &[("keys", String::new()), ("separator", a.separator.clone())],
            )
            .await
            .map_err(CliError::http(QUERY_ERR))?
            .unwrap_or_default();
        for k in keys {
            writeln!(out, "{k}")?;
        }
        return Ok(());
    }
    if a.recurse {
        let pairs: Vec<KvPair> = client
            .get_json(&path, &[("recurse", String::new())])
            .await
            .map_err(CliError::http(QUERY_ERR))?
            .unwrap_or_default();
        for (i, pair) in pairs.iter().enumerate() {
            if a.detailed {
                writeln!(out, "{}", detailed(pair, a.base64)?)?;
                if i + 1 < pairs.len() {
                    writeln!(out)?;
                }
            } else {
                write!(out, "{}:", pair.key)?;
                write_value(out, &pair.bytes()?, a.base64)?;
            }
        }
        return Ok(());
    }
    let pairs: Option<Vec<KvPair>> = client
        .get_json(&path, &[])
        .await
        .map_err(CliError::http(QUERY_ERR))?;
    let Some(pair) = pairs.and_then(|p| p.into_iter().next()) else {
        return Err(CliError::msg(format!("Error! No key exists at: {key}")));
    };
    if a.detailed {
        writeln!(out, "{}", detailed(&pair, a.base64)?)?;
    } else {
        write_value(out, &pair.bytes()?, a.base64)?;
    }
    Ok(())
}

/// Raw bytes (they need not be UTF-8) or base64, then a newline, as `UI.Info(string(value))`.
fn write_value(out: &mut dyn Write, value: &[u8], b64: bool) -> Result<(), CliError> {
    if b64 {
        out.write_all(
            base64::engine::general_purpose::STANDARD
                .encode(value)
                .as_bytes(),
        )?;
    } else {
        out.write_all(value)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Consul's `prettyKVPair` table.
fn detailed(pair: &KvPair, b64: bool) -> Result<String, CliError> {
    let value = pair.bytes()?;
    let value = if b64 {
        base64::engine::general_purpose::STANDARD.encode(&value)
    } else {
        String::from_utf8_lossy(&value).into_owned()
    };
    let session = pair
        .session
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into());
    Ok(tabwrite(&[
        ("CreateIndex".into(), pair.create_index.to_string()),
        ("Flags".into(), pair.flags.to_string()),
        ("Key".into(), pair.key.clone()),
        ("LockIndex".into(), pair.lock_index.to_string()),
        ("ModifyIndex".into(), pair.modify_index.to_string()),
        ("Session".into(), session),
        ("Value".into(), value),
    ]))
}

/// The bytes to write: literal, `@file`, or `-` for stdin.
fn read_data(data: Option<&str>) -> Result<Vec<u8>, CliError> {
    match data {
        None | Some("") => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::msg(format!("Error! Failed to read stdin: {e}")))?;
            Ok(buf)
        }
        Some(d) => match d.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map_err(|e| CliError::msg(format!("Error! Failed to read file: {e}"))),
            None => Ok(d.as_bytes().to_vec()),
        },
    }
}

async fn put(a: PutArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = a.key.clone();
    let mut data = read_data(a.data.as_deref())?;
    if a.base64 {
        data = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .map_err(|e| CliError::msg(format!("Error! Cannot base 64 decode data: {e}")))?;
    }
    let session = a.session.clone().unwrap_or_default();
    if (a.acquire || a.release) && session.is_empty() {
        return Err(CliError::msg(
            "Error! Missing -session (required with -acquire and -release)",
        ));
    }
    if a.cas && a.modify_index == 0 {
        return Err(CliError::msg("Must specify -modify-index with -cas!"));
    }
    let client = ApiClient::new(&a.http, Some(&a.server))
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let mut query = Vec::new();
    if a.flags != 0 {
        query.push(("flags", a.flags.to_string()));
    }
    let (op, fail_prefix) = if a.cas {
        query.push(("cas", a.modify_index.to_string()));
        (Op::Cas, format!("Error! Did not write to {key}"))
    } else if a.acquire {
        query.push(("acquire", session));
        (Op::Acquire, "Error! Failed writing data".to_string())
    } else if a.release {
        query.push(("release", session));
        (Op::Release, "Error! Failed writing data".to_string())
    } else {
        (Op::Put, "Error! Failed writing data".to_string())
    };
    let path = format!("/v1/kv/{}", escape_path(&key));
    let body = client
        .put(&path, &query, data)
        .await
        .map_err(CliError::http(fail_prefix))?;
    let ok = String::from_utf8_lossy(&body).trim() == "true";
    let line = match (op, ok) {
        (Op::Cas, false) => {
            return Err(CliError::msg(format!(
                "Error! Did not write to {key}: CAS failed"
            )));
        }
        (Op::Acquire, false) => return Err(CliError::msg("Error! Did not acquire lock")),
        (Op::Release, false) => return Err(CliError::msg("Error! Did not release lock")),
        (Op::Acquire, true) => format!("Success! Lock acquired on: {key}"),
        (Op::Release, true) => format!("Success! Lock released on: {key}"),
        // A plain put reports success whatever the body says, as Consul's does.
        (Op::Cas | Op::Put, _) => format!("Success! Data written to: {key}"),
    };
    writeln!(out, "{line}")?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Put,
    Cas,
    Acquire,
    Release,
}

async fn delete(a: DeleteArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = trim_key(&a.key);
    if key.is_empty() && !a.recurse {
        return Err(CliError::msg("Error! Missing KEY argument"));
    }
    if a.cas && a.modify_index == 0 {
        return Err(CliError::msg(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.",
        ));
    }
    if a.modify_index != 0 && !a.cas {
        return Err(CliError::msg("Cannot specify -modify-index without -cas!"));
    }
    if a.recurse && a.cas {
        return Err(CliError::msg("Cannot specify both -cas and -recurse!"));
    }
    let client = ApiClient::new(&a.http, Some(&a.server))
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let path = format!("/v1/kv/{}", escape_path(&key));
    if a.recurse {
        client
            .delete(&path, &[("recurse", String::new())])
            .await
            .map_err(CliError::http(format!(
                "Error! Did not delete prefix {key}"
            )))?;
        writeln!(out, "Success! Deleted keys with prefix: {key}")?;
    } else if a.cas {
        let body = client
            .delete(&path, &[("cas", a.modify_index.to_string())])
            .await
            .map_err(CliError::http(format!("Error! Did not delete key {key}")))?;
        if String::from_utf8_lossy(&body).trim() != "true" {
            return Err(CliError::msg(format!(
                "Error! Did not delete key {key}: CAS failed"
            )));
        }
        writeln!(out, "Success! Deleted key: {key}")?;
    } else {
        client
            .delete(&path, &[])
            .await
            .map_err(CliError::http(format!("Error deleting key {key}")))?;
        writeln!(out, "Success! Deleted key: {key}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detailed_output_matches_consul() {
        let pair = KvPair {
            key: "foo".into(),
            create_index: 5,
            modify_index: 7,
            lock_index: 0,
            flags: 42,
            value: Some("YmFy".into()),
            session: None,
        };
        let expected = "CreateIndex      5\nFlags            42\nKey              foo\nLockIndex        0\nModifyIndex      7\nSession          -\nValue            bar";
        assert_eq!(detailed(&pair, false).unwrap(), expected);
        assert!(
            detailed(&pair, true)
                .unwrap()
                .ends_with("Value            YmFy")
        );
    }

    #[test]
    fn null_value_is_empty() {
        assert_eq!(
            KvPair {
                value: None,
                ..KvPair::default()
            }
            .bytes()
            .unwrap(),
            Vec::<u8>::new()
        );
    }
}
