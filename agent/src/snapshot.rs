//! The snapshot archive of `/v1/snapshot` and `meridian snapshot`: Consul's format, a
//! gzip-compressed tar holding
//!
//! ```text
//!   meta.json   raft metadata (Consul's raft.SnapshotMeta fields: Version, ID, Index, Term, ...)
//!   state.bin   the state, encoded as raft snapshots are (raft/state_machine.rs)
//!   SHA256SUMS  "<hex sha256>  <name>" of the two files above, checked on every read
//! ```
//!
//! Only bytes in memory: no files, no sockets, no raft. A damaged archive (truncated, altered,
//! with a missing or extra member) is refused by [`read`] with Consul's wording, before
//! anything looks at its contents.

use std::io::Read;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

/// The metadata member.
pub const META_FILE: &str = "meta.json";
/// The state member.
pub const STATE_FILE: &str = "state.bin";
/// The checksum member.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// The snapshot format version written (`Version` of meta.json), as Consul's.
pub const SNAPSHOT_VERSION: u32 = 1;
/// An archive that unpacks to more than this is refused (bounds memory on hostile input).
const MAX_UNPACKED: u64 = 1 << 30;

/// `meta.json`: the fields of Consul's `raft.SnapshotMeta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotMeta {
    /// Format version (1).
    pub version: u32,
    /// `term-index-unixms`, only for telling snapshots apart.
    #[serde(rename = "ID")]
    pub id: String,
    /// Raft index of the last entry in the snapshot.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// The raft servers when the snapshot was taken.
    #[serde(default)]
    pub configuration: Configuration,
    /// Raft index of that configuration.
    #[serde(default)]
    pub configuration_index: u64,
    /// Size of `state.bin` in bytes.
    pub size: u64,
}

/// Raft configuration in meta.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Configuration {
    /// The servers.
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
}

/// One raft server in meta.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerEntry {
    /// 0 voter, 1 non-voter (Consul's raft suffrage numbers).
    pub suffrage: u8,
    /// The server's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its raft address.
    pub address: String,
}

/// A verified archive.
#[derive(Debug, Clone)]
pub struct Archive {
    /// meta.json.
    pub meta: SnapshotMeta,
    /// state.bin.
    pub state: Vec<u8>,
}

/// Why an archive could not be written or read; texts follow Consul's `snapshot/archive.go`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The bytes are not a readable gzip/tar stream (truncated, not gzip).
    #[error("failed reading snapshot: {0}")]
    Read(#[source] std::io::Error),
    /// Writing the archive failed.
    #[error("failed to write snapshot: {0}")]
    Write(#[source] std::io::Error),
    /// meta.json is not Consul's snapshot metadata.
    #[error("failed to decode snapshot metadata: {0}")]
    Meta(#[source] serde_json::Error),
    /// A member that does not belong in a snapshot.
    #[error("unexpected file {0:?} in snapshot")]
    UnexpectedFile(String),
    /// SHA256SUMS does not match the members (or one is missing).
    #[error("failed checking integrity of snapshot: {0}")]
    Integrity(String),
    /// The archive unpacks to more than the limit.
    #[error("snapshot unpacks to more than {MAX_UNPACKED} bytes")]
    TooLarge,
}

/// The SHA-256 of `data` in lowercase hex.
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// `meta` and `state` as a gzipped tar archive (`meta.size` is set to `state`'s length).
pub fn write(meta: &SnapshotMeta, state: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let meta = SnapshotMeta {
        size: state.len() as u64,
        ..meta.clone()
    };
    let mut meta_json = serde_json::to_vec(&meta).map_err(ArchiveError::Meta)?;
    meta_json.push(b'\n');
    let sums = format!(
        "{}  {META_FILE}\n{}  {STATE_FILE}\n",
        sha256_hex(&meta_json),
        sha256_hex(state)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        (META_FILE, &meta_json[..]),
        (STATE_FILE, state),
        (SUMS_FILE, sums.as_bytes()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, data)
            .map_err(ArchiveError::Write)?;
    }
    let gz = tar.into_inner().map_err(ArchiveError::Write)?;
    gz.finish().map_err(ArchiveError::Write)
}

/// Unpacks and verifies an archive: every member known, SHA256SUMS listing exactly
/// meta.json and state.bin with matching sums, meta.json decodable.
pub fn read(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    let mut unpacked = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_UNPACKED + 1)
        .read_to_end(&mut unpacked)
        .map_err(ArchiveError::Read)?;
    if unpacked.len() as u64 > MAX_UNPACKED {
        return Err(ArchiveError::TooLarge);
    }
    let mut meta_json = None;
    let mut state = None;
    let mut sums = None;
    let mut tar = tar::Archive::new(&unpacked[..]);
    for entry in tar.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let name = entry
            .path()
            .map_err(ArchiveError::Read)?
            .to_string_lossy()
            .into_owned();
        let slot = match name.as_str() {
            META_FILE => &mut meta_json,
            STATE_FILE => &mut state,
            SUMS_FILE => &mut sums,
            _ => return Err(ArchiveError::UnexpectedFile(name)),
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(ArchiveError::Read)?;
        *slot = Some(data);
    }
    let meta_json = meta_json.unwrap_or_default();
    let state = state.unwrap_or_default();
    verify_sums(
        &sums.unwrap_or_default(),
        &[(META_FILE, &meta_json), (STATE_FILE, &state)],
    )?;
    let meta = serde_json::from_slice(&meta_json).map_err(ArchiveError::Meta)?;
    Ok(Archive { meta, state })
}

/// Checks a SHA256SUMS text against `files`: each line names a known file with its sum,
/// and every file is listed.
fn verify_sums(sums: &[u8], files: &[(&str, &[u8])]) -> Result<(), ArchiveError> {
    let bad = |m: String| ArchiveError::Integrity(m);
    let text = std::str::from_utf8(sums).map_err(|_| bad("SHA256SUMS is not text".into()))?;
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, file) = line
            .split_once("  ")
            .ok_or_else(|| bad(format!("malformed SHA256SUMS line {line:?}")))?;
        let (_, data) = files
            .iter()
            .find(|(name, _)| *name == file)
            .ok_or_else(|| bad(format!("list missing hash for {file:?}")))?;
        if !sum.eq_ignore_ascii_case(&sha256_hex(data)) {
            return Err(bad(format!("hash check failed for {file:?}")));
        }
        seen.push(file);
    }
    match files.iter().find(|(name, _)| !seen.contains(name)) {
        Some((name, _)) => Err(bad(format!("file missing for {name:?}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            version: SNAPSHOT_VERSION,
            id: "2-9-1700000000000".into(),
            index: 9,
            term: 2,
            ..SnapshotMeta::default()
        }
    }

    #[test]
    fn an_archive_reads_back_what_was_written() {
        let bytes = write(&meta(), b"state bytes").expect("write");
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        let a = read(&bytes).expect("read");
        assert_eq!(a.state, b"state bytes");
        assert_eq!(a.meta.index, 9);
        assert_eq!(a.meta.size, 11);
    }

    #[test]
    fn truncated_or_garbage_archives_are_refused() {
        let bytes = write(&meta(), &[7u8; 4096]).expect("write");
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(read(b"not gzip"), Err(ArchiveError::Read(_))));
    }

    /// An archive whose state.bin was changed after its sums were written.
    fn tampered() -> Vec<u8> {
        let gz = GzEncoder::new(Vec::new(), Compression::default());
        let mut tar = tar::Builder::new(gz);
        let meta_json = serde_json::to_vec(&meta()).expect("json");
        let sums = format!(
            "{}  {META_FILE}\n{}  {STATE_FILE}\n",
            sha256_hex(&meta_json),
            sha256_hex(b"original")
        );
        for (name, data) in [
            (META_FILE, &meta_json[..]),
            (STATE_FILE, &b"altered!"[..]),
            (SUMS_FILE, sums.as_bytes()),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            tar.append_data(&mut h, name, data).expect("append");
        }
        let mut gz = tar.into_inner().expect("tar");
        gz.flush().expect("flush");
        gz.finish().expect("gz")
    }

    #[test]
    fn an_altered_member_fails_the_integrity_check() {
        let err = read(&tampered()).expect_err("tampered");
        assert_eq!(
            err.to_string(),
            "failed checking integrity of snapshot: hash check failed for \"state.bin\""
        );
    }
}
