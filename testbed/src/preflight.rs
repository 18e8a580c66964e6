//! Checks made before anything is created: privileges and the programs the testbed drives.
//! A testbed that cannot finish must fail here, not halfway through `up`.

use std::path::{Path, PathBuf};

use crate::error::TestbedError;

/// Bit of CAP_NET_ADMIN in the capability masks (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
/// Bit of CAP_SYS_ADMIN: `ip netns add` mounts the namespace under /run/netns.
const CAP_SYS_ADMIN: u32 = 21;

/// Fails unless this process may create network namespaces.
pub fn require_privileges() -> Result<(), TestbedError> {
    let caps = effective_caps().unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if !has(CAP_NET_ADMIN) {
        return Err(TestbedError::NeedsRoot {
            detail: String::new(),
        });
    }
    if !has(CAP_SYS_ADMIN) {
        return Err(TestbedError::NeedsRoot {
            detail: "; `ip netns add` also needs CAP_SYS_ADMIN".into(),
        });
    }
    Ok(())
}

/// The effective capability mask from `/proc/self/status`.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Fails unless `tool` is on PATH.
pub fn require_tool(tool: &'static str, package: &'static str) -> Result<PathBuf, TestbedError> {
    find_on_path(tool).ok_or(TestbedError::MissingTool { tool, package })
}

/// `name` in one of PATH's directories (plus the sbin directories, where Debian puts `ip`
/// and `nft`, which a non-login root shell may lack on PATH).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `meridian` binary: `explicit` if given, else the one next to this executable (the
/// same cargo target dir), else the one on PATH.
pub fn meridian_binary(explicit: Option<&Path>) -> Result<PathBuf, TestbedError> {
    let candidate = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let beside = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.join("meridian")));
            match beside.filter(|p| is_executable(p)) {
                Some(p) => p,
                None => find_on_path("meridian").unwrap_or_else(|| PathBuf::from("meridian")),
            }
        }
    };
    if !is_executable(&candidate) {
        return Err(TestbedError::NoMeridian { path: candidate });
    }
    Ok(std::path::absolute(&candidate).unwrap_or(candidate))
}
