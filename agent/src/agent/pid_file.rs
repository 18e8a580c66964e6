//! `pid_file` (`-pid-file`): the agent's process id, written once its listeners are bound and
//! removed when it stops, as Consul does (decimal, no newline), so init scripts and
//! supervisors can find and signal it.
//!
//! Owns the file only: it never reads one back or checks for another running agent (a second
//! agent on the same ports fails to bind before it writes the file).

use std::path::{Path, PathBuf};

use super::AgentError;

/// A written pid file; dropping it removes the file.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id to `path`, replacing what was there.
    pub(crate) fn create(path: &Path) -> Result<PidFile, AgentError> {
        std::fs::write(path, std::process::id().to_string()).map_err(|e| {
            AgentError::Config(format!("pid_file {}: cannot write: {e}", path.display()))
        })?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }

    /// [`PidFile::create`] when `path` is set.
    pub(crate) fn create_opt(path: Option<&Path>) -> Result<Option<PidFile>, AgentError> {
        path.map(PidFile::create).transpose()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), cause = %e, "cannot remove the pid file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_written_as_decimal_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pid");
        let pid = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(pid);
        assert!(!path.exists());
    }
}
