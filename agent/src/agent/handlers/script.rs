//! Runs one event handler script: `sh -c SCRIPT` in its own process group with serf's
//! environment, the event's stdin, stdout/stderr logged line by line (bounded), and the whole
//! group killed when it outlives its timeout or the agent stops. Reports what happened; never
//! panics and never returns an error the caller must handle.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Longest line logged as one record; longer ones are split.
const MAX_LINE: usize = 4096;

/// One script run: what to execute and what it gets.
#[derive(Debug)]
pub(super) struct Invocation<'a> {
    /// serf's event kind (for the log).
    pub kind: &'static str,
    /// The shell command.
    pub script: &'a str,
    /// `SERF_*` variables, added to the agent's environment.
    pub env: &'a [(String, String)],
    /// Written to the script's stdin, then closed.
    pub stdin: &'a [u8],
}

/// How a run ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The script exited (with any status).
    Exited(ExitStatus),
    /// `sh` could not be started.
    SpawnFailed(std::io::Error),
    /// Waiting for the script failed.
    WaitFailed(std::io::Error),
    /// It ran past the timeout; its process group was killed.
    TimedOut,
    /// The agent is stopping; its process group was killed.
    Cancelled,
}

/// Runs `inv`, logging at most `output_limit` bytes of each of its stdout and stderr.
pub(super) async fn run(
    inv: &Invocation<'_>,
    timeout: Duration,
    output_limit: usize,
    token: &CancellationToken,
) -> Outcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(inv.script)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what the script started too; and a backstop
        // should this future be dropped before the child is reaped.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::SpawnFailed(e),
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, drive(&mut child, inv, output_limit)) => match r {
            Ok(Ok(status)) => Outcome::Exited(status),
            Ok(Err(e)) => Outcome::WaitFailed(e),
            Err(_) => Outcome::TimedOut,
        },
        _ = token.cancelled() => Outcome::Cancelled,
    };
    if !matches!(outcome, Outcome::Exited(_)) {
        kill_group(&mut child).await;
    }
    outcome
}

/// Feeds stdin, logs stdout and stderr, and waits for the exit; done when all three are.
async fn drive(
    child: &mut Child,
    inv: &Invocation<'_>,
    output_limit: usize,
) -> std::io::Result<ExitStatus> {
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut pipe) = stdin {
            // A script that does not read its stdin closes the pipe: not an error.
            let _ = pipe.write_all(inv.stdin).await;
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // Each stream logs up to `output_limit` bytes.
    let (mut out_budget, mut err_budget) = (output_limit, output_limit);
    let out = log_lines(stdout, inv.kind, "stdout", &mut out_budget);
    let err = log_lines(stderr, inv.kind, "stderr", &mut err_budget);
    let ((), (), (), status) = tokio::join!(feed, out, err, child.wait());
    status
}

/// Logs `pipe` line by line at info until EOF; past `budget` bytes it only drains.
async fn log_lines(
    pipe: Option<impl AsyncRead + Unpin>,
    kind: &'static str,
    stream: &'static str,
    budget: &mut usize,
) {
    let Some(mut pipe) = pipe else { return };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut truncated = false;
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(line) = take_line(&mut pending) {
            emit(&line, kind, stream, budget, &mut truncated);
        }
    }
    if !pending.is_empty() {
        emit(&pending, kind, stream, budget, &mut truncated);
    }
}

/// The next complete line (without its newline), or a full `MAX_LINE` chunk of a long one.
fn take_line(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    match pending.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let mut line: Vec<u8> = pending.drain(..=i).collect();
            line.pop();
            Some(line)
        }
        None if pending.len() >= MAX_LINE => Some(pending.drain(..MAX_LINE).collect()),
        None => None,
    }
}

fn emit(line: &[u8], kind: &'static str, stream: &'static str, budget: &mut usize, cut: &mut bool) {
    if *budget == 0 {
        if !*cut {
            *cut = true;
            warn!(event = kind, stream, "event handler output truncated");
        }
        return;
    }
    let take = line.len().min(*budget);
    *budget -= take;
    let text = String::from_utf8_lossy(&line[..take]);
    let text = text.trim_end_matches('\r');
    info!(event = kind, stream, "{text}");
}

/// SIGKILL to the script's process group, then reap `sh`.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The group may already be gone (ESRCH); kill() below covers `sh` itself.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newlines_and_long_runs() {
        let mut p = b"a\nbc\npartial".to_vec();
        assert_eq!(take_line(&mut p), Some(b"a".to_vec()));
        assert_eq!(take_line(&mut p), Some(b"bc".to_vec()));
        assert_eq!(take_line(&mut p), None);
        assert_eq!(p, b"partial");
        let mut long = vec![b'x'; MAX_LINE + 3];
        assert_eq!(take_line(&mut long).map(|l| l.len()), Some(MAX_LINE));
        assert_eq!(long.len(), 3);
    }
}
