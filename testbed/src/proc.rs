//! Processes on hosts: starting a program inside a namespace in its own process group,
//! telling whether it still runs, and signalling its group. Reads `/proc`; signals through
//! rustix's safe `kill(2)`.
//!
//! A started process is known by (pid, start time): the start time from `/proc/PID/stat`
//! tells our agent from an unrelated process that got the same pid after ours died.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};

use crate::state::HostProcess;

/// A process could not be started or signalled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    /// The log file could not be opened.
    #[error("{}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// The process exited before it could be recorded.
    #[error("`{cmd}` exited at once; see {}", log.display())]
    Exited {
        /// The command line.
        cmd: String,
        /// Its log.
        log: PathBuf,
    },
    /// kill(2) failed.
    #[error("cannot signal process group {pid}: {source}")]
    Signal {
        /// The group.
        pid: i32,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether a recorded process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running (or sleeping).
    Running,
    /// Stopped by SIGSTOP.
    Stopped,
    /// Gone (exited, a zombie, or the pid now belongs to another process).
    Dead,
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Liveness::Running => "yes",
            Liveness::Stopped => "stopped",
            Liveness::Dead => "no",
        })
    }
}

/// `ip netns exec NS ARGV...` in a new process group, stdout and stderr appended to `log`.
/// `ip netns exec` execs the program itself, so the pid is the program's.
pub fn spawn_in(ns: &str, argv: &[String], log: &Path) -> Result<HostProcess, ProcError> {
    let cmd = format!("ip netns exec {ns} {}", argv.join(" "));
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| ProcError::Log {
            path: log.to_path_buf(),
            source,
        })?;
    let err = out.try_clone().map_err(|source| ProcError::Log {
        path: log.to_path_buf(),
        source,
    })?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        // Plain text logs: `testbed logs` and editors show them without escape codes.
        .env("NO_COLOR", "1")
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| ProcError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    // The child is not waited for: it outlives this command (after we exit, init reaps it).
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    match stat(pid) {
        Some((_, start_time)) => Ok(HostProcess { pid, start_time }),
        None => Err(ProcError::Exited {
            cmd,
            log: log.to_path_buf(),
        }),
    }
}

/// State letter and start time of `pid` from `/proc/PID/stat`.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 overall is the 20th after the state (field 3).
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// Whether the recorded process still runs.
pub fn liveness(p: &HostProcess) -> Liveness {
    match stat(p.pid) {
        Some((_, start)) if start != p.start_time => Liveness::Dead,
        Some(('Z' | 'X' | 'x', _)) | None => Liveness::Dead,
        Some(('T' | 't', _)) => Liveness::Stopped,
        Some(_) => Liveness::Running,
    }
}

/// Sends `sig` to the recorded process's group, if it is still ours.
pub fn signal(p: &HostProcess, sig: Signal) -> Result<(), ProcError> {
    if liveness(p) == Liveness::Dead {
        return Ok(());
    }
    signal_group(p.pid, sig)
}

/// Sends `sig` to process group `pid`; a group that is gone is fine.
pub fn signal_group(pid: i32, sig: Signal) -> Result<(), ProcError> {
    let Some(group) = Pid::from_raw(pid) else {
        return Ok(());
    };
    match kill_process_group(group, sig) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
        Err(e) => Err(ProcError::Signal {
            pid,
            source: e.into(),
        }),
    }
}

/// Sends `sig` to the single process `pid`; one that is gone is fine.
pub fn signal_pid(pid: i32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Pids of live (non-zombie) processes whose command line contains `needle`.
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
                && !matches!(stat(*pid), Some(('Z' | 'X' | 'x', _)) | None)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Liveness, liveness, stat};
    use crate::state::HostProcess;

    #[test]
    fn reads_our_own_stat_and_tells_a_reused_pid() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let (state, start) = stat(me).expect("own stat");
        assert!(state.is_ascii_alphabetic());
        let ours = HostProcess {
            pid: me,
            start_time: start,
        };
        assert_eq!(liveness(&ours), Liveness::Running);
        let reused = HostProcess {
            pid: me,
            start_time: start + 1,
        };
        assert_eq!(liveness(&reused), Liveness::Dead);
    }
}
