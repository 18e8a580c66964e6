//! `testbed exec HOST -- CMD` and `testbed logs HOST`: a shell's view of one host.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::error::TestbedError;
use crate::plan::HostPlan;
use crate::state::{RunDir, State};

/// The host named `name` in `state`.
pub fn host<'a>(state: &'a State, name: &str) -> Result<&'a HostPlan, TestbedError> {
    state
        .plan
        .host(name)
        .ok_or_else(|| TestbedError::UnknownHost(name.to_string()))
}

/// Runs `command` inside `host`'s namespace with our stdin/stdout/stderr; its exit code.
pub async fn exec(run: &RunDir, name: &str, command: &[String]) -> Result<i32, TestbedError> {
    crate::preflight::require_privileges()?;
    let state = run.require()?;
    let h = host(&state, name)?;
    let status = tokio::process::Command::new("ip")
        .args(["netns", "exec", &h.netns])
        .args(command)
        .status()
        .await
        .map_err(|source| TestbedError::Io {
            what: format!("running {} in {}", command.join(" "), h.netns),
            source,
        })?;
    Ok(status.code().unwrap_or(1))
}

/// Prints `host`'s agent log; with `follow`, keeps printing what is appended until
/// interrupted.
pub async fn logs(run: &RunDir, name: &str, follow: bool) -> Result<(), TestbedError> {
    let state = run.require()?;
    host(&state, name)?;
    let path = run.log_path(name);
    let io = |source| TestbedError::Io {
        what: format!("reading {}", path.display()),
        source,
    };
    let mut file = std::fs::File::open(&path).map_err(io)?;
    let mut pos = 0u64;
    loop {
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk).map_err(io)?;
        pos += chunk.len() as u64;
        let mut out = std::io::stdout().lock();
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() || !follow {
            return Ok(());
        }
        drop(out);
        tokio::select! {
            () = crate::up::interrupted() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
