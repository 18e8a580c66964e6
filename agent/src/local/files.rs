//! The on-disk form of local state: one JSON file per service and per check under
//! `<data_dir>/services` and `<data_dir>/checks`, named by the hex of the ID, written
//! atomically (temp file created 0600, fsync, rename) because a file may hold the token the
//! entry was registered with. A file is `{"Definition": .., "Token": .., "FromConfig": ..}`;
//! files written before tokens were kept hold the bare definition and still load. No
//! locking here: `LocalState` decides what to write.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{LocalError, Registration};

/// One persisted entry with its registration.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    #[serde(rename = "Definition")]
    definition: T,
    #[serde(flatten)]
    registration: Registration,
}

/// File name of an ID: hex, so IDs with `/` or `..` stay inside the directory.
pub(super) fn file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

/// Writes `definition` and its registration as `dir/name`.
pub(super) fn write<T: Serialize>(
    dir: &Path,
    name: &str,
    definition: &T,
    registration: &Registration,
) -> Result<(), LocalError> {
    let entry = Entry {
        definition,
        registration: registration.clone(),
    };
    write_atomic(dir, name, &serde_json::to_vec(&entry).unwrap_or_default())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LocalError> {
    let io = |source| LocalError::Io {
        path: dir.join(name),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // NamedTempFile creates the file 0600 and rename keeps the mode.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dir.join(name)).map_err(|e| io(e.error))?;
    Ok(())
}

/// Every entry under `dir` (none if it does not exist).
pub(super) fn read_all<T: DeserializeOwned>(
    dir: &Path,
) -> Result<Vec<(T, Registration)>, LocalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LocalError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        out.push(read_one(path)?);
    }
    Ok(out)
}

fn read_one<T: DeserializeOwned>(path: PathBuf) -> Result<(T, Registration), LocalError> {
    let text = std::fs::read(&path).map_err(|source| LocalError::Io {
        path: path.clone(),
        source,
    })?;
    if let Ok(e) = serde_json::from_slice::<Entry<T>>(&text) {
        return Ok((e.definition, e.registration));
    }
    let bare = serde_json::from_slice(&text).map_err(|source| LocalError::Json { path, source })?;
    Ok((bare, Registration::default()))
}

/// Removes `dir/name` if present.
pub(super) fn remove(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(dir.join(name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Service;

    #[test]
    fn files_from_before_tokens_still_load_and_new_ones_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = Service {
            id: "old".into(),
            service: "old".into(),
            ..Service::default()
        };
        std::fs::write(
            dir.path().join(file_name("old")),
            serde_json::to_vec(&old).expect("json"),
        )
        .expect("write");
        let reg = Registration {
            token: "secret".into(),
            from_config: true,
        };
        let new = Service {
            id: "new".into(),
            service: "new".into(),
            ..Service::default()
        };
        write(dir.path(), &file_name("new"), &new, &reg).expect("write");
        let mut got = read_all::<Service>(dir.path()).expect("read");
        got.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        assert_eq!(got, vec![(new, reg), (old, Registration::default())]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(file_name("new")))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the file may hold a token");
        }
    }
}
