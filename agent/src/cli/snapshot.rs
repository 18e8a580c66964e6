//! `meridian snapshot save|restore|inspect`: Consul's `consul snapshot` over `/v1/snapshot`,
//! with its output text (`command/snapshot/{save,restore,inspect}`). The archive format is
//! `crate::snapshot`; `inspect` reads a file only and needs no agent.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use super::client::{ApiClient, HttpFlags, ServerFlags};
use super::table::tabwrite;
use crate::raft::state_machine::decode_snapshot;
use crate::snapshot::{self, Archive};

/// `snapshot` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of the servers' state to a file.
    Save(SaveArgs),
    /// Restore the servers' state from a snapshot file.
    Restore(RestoreArgs),
    /// Print the metadata and contents summary of a snapshot file.
    Inspect(InspectArgs),
}

/// `snapshot save [-stale] FILE`
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Where to write the snapshot.
    pub file: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// `snapshot restore FILE`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot to restore.
    pub file: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `snapshot inspect FILE`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The snapshot to inspect.
    pub file: PathBuf,
}

/// Runs a `snapshot` subcommand.
pub async fn run(cmd: SnapshotCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        SnapshotCommand::Save(a) => save(a, out).await,
        SnapshotCommand::Restore(a) => restore(a, out).await,
        SnapshotCommand::Inspect(a) => inspect(&a.file, out),
    }
}

async fn save(a: SaveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&a.http, Some(&a.server)).map_err(CliError::http("Error"))?;
    let body = client
        .get("/v1/snapshot", &[])
        .await
        .map_err(CliError::http("Error saving snapshot"))?
        .ok_or_else(|| CliError::msg("Error saving snapshot: the agent has no snapshot API"))?;
    // Written beside the target and renamed, so a failed save never leaves half a file
    // under the name asked for (Consul's `.part` file).
    let part = part_path(&a.file);
    std::fs::write(&part, &body)
        .map_err(|e| CliError::msg(format!("Error writing snapshot file: {e}")))?;
    let archive = match snapshot::read(&body) {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(CliError::msg(format!("Error verifying snapshot file: {e}")));
        }
    };
    std::fs::rename(&part, &a.file)
        .map_err(|e| CliError::msg(format!("Error writing snapshot file: {e}")))?;
    writeln!(
        out,
        "Saved and verified snapshot to index {}",
        archive.meta.index
    )?;
    Ok(())
}

fn part_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

async fn restore(a: RestoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let body = std::fs::read(&a.file)
        .map_err(|e| CliError::msg(format!("Error opening snapshot file: {e}")))?;
    let client = ApiClient::new(&a.http, None).map_err(CliError::http("Error"))?;
    client
        .put("/v1/snapshot", &[], body)
        .await
        .map_err(CliError::http("Error restoring snapshot"))?;
    writeln!(out, "Restored snapshot")?;
    Ok(())
}

fn inspect(file: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::msg(format!("Error opening snapshot file: {e}")))?;
    let archive = snapshot::read(&bytes)
        .map_err(|e| CliError::msg(format!("Error verifying snapshot: {e}")))?;
    writeln!(out, "{}", summary(&archive)?)?;
    Ok(())
}

/// Consul's inspect text: the metadata block, then rows and bytes per table.
fn summary(archive: &Archive) -> Result<String, CliError> {
    let m = &archive.meta;
    let mut text = tabwrite(&[
        (" ID".into(), m.id.clone()),
        (" Size".into(), m.size.to_string()),
        (" Index".into(), m.index.to_string()),
        (" Term".into(), m.term.to_string()),
        (" Version".into(), m.version.to_string()),
    ]);
    let rows = decode_snapshot(&archive.state)
        .map_err(|e| CliError::msg(format!("Error decoding snapshot: {e}")))?;
    let mut by_table: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &rows {
        let e = by_table.entry(format!("{:?}", r.table)).or_default();
        e.0 += 1;
        e.1 += r.key.len() + r.value.len();
    }
    let mut table: Vec<(String, (usize, usize))> = by_table.into_iter().collect();
    table.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
    let total: usize = table.iter().map(|(_, (_, size))| size).sum();
    let mut lines = vec![vec![" Type".into(), "Count".into(), "Size".into()]];
    let rule = || vec![" ----".to_string(), "----".into(), "----".into()];
    lines.push(rule());
    for (name, (count, size)) in &table {
        lines.push(vec![
            format!(" {name}"),
            count.to_string(),
            byte_size(*size),
        ]);
    }
    lines.push(rule());
    lines.push(vec![" Total".into(), String::new(), byte_size(total)]);
    text.push_str("\n\n");
    text.push_str(&pad_table(&lines));
    Ok(text)
}

/// Columns padded like Consul's inspect table (tabwriter, padding 6, minimum width 8).
fn pad_table(lines: &[Vec<String>]) -> String {
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            let w = lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0);
            (w + 6).max(8)
        })
        .collect();
    lines
        .iter()
        .map(|l| {
            let mut s = String::new();
            for (i, cell) in l.iter().enumerate() {
                if i + 1 < l.len() {
                    s.push_str(&format!("{cell:<w$}", w = widths[i]));
                } else {
                    s.push_str(cell);
                }
            }
            s.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `76B`, `1.7KB`, `5MB`: Consul's inspect sizes.
fn byte_size(n: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n}B");
    }
    let s = format!("{v:.1}");
    format!("{}{}", s.trim_end_matches(".0"), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_consuls() {
        assert_eq!(byte_size(76), "76B");
        assert_eq!(byte_size(1740), "1.7KB");
        assert_eq!(byte_size(5 * 1024), "5KB");
    }
}
