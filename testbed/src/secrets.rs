//! Keys and certificates of a run (the topology's `[gossip]` and `[tls]`), made with the
//! real CLI as an operator would: `meridian keygen` for gossip keys, `meridian tls ca
//! create` for a CA, `meridian tls cert create -server|-client|-gateway|-cli -dc DC` for
//! leaves (Consul's file names, in a fresh directory per certificate, since the CLI never
//! overwrites).
//!
//! ```text
//! <run-dir>/tls/ca-<n>/consul-agent-ca.pem, consul-agent-ca-key.pem   CA generation n
//! <run-dir>/tls/issued/<host>-<tag>/<dc>-<kind>-consul-0.pem, ...-key.pem
//! <run-dir>/hosts/<host>/tls/ca.pem, cert.pem, key.pem                what the flags name
//! ```
//!
//! Every agent's and gateway's flags name the per-host `ca.pem`, `cert.pem` and `key.pem`,
//! so a rotation overwrites those in place (each by a rename: a reader never sees half a
//! file) and a SIGHUP makes the process read them again. Owns the files only: starts and
//! signals nothing.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::error::TestbedError;
use crate::plan::{HostPlan, Role};
pub use crate::state::{GossipKeys, PemPair, TlsState};
use crate::state::{RunDir, State};

/// The domain certificates are issued under (the agents' and gateways' default).
pub const DOMAIN: &str = "consul";

/// The files a host's flags name.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTls {
    /// The CA certificate(s) it trusts.
    pub ca: PathBuf,
    /// Its certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// `<run-dir>/hosts/<host>/tls/{ca,cert,key}.pem`.
pub fn host_files(run: &RunDir, host: &str) -> HostTls {
    let dir = run.host_dir(host).join("tls");
    HostTls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// `<run-dir>/tls`.
pub fn tls_dir(run: &RunDir) -> PathBuf {
    run.root().join("tls")
}

/// Makes what the topology asks for: gossip keys, and with TLS a CA, a certificate for
/// every host installed under its `tls/` directory, and the testbed's `-cli` certificate.
/// Records it all in `state` (not saved here).
pub async fn make(state: &mut State, run: &RunDir) -> Result<(), TestbedError> {
    let meridian = state.meridian.clone();
    if state.topology.gossip.encrypt {
        for dc in &state.plan.dcs {
            let key = keygen(&meridian).await?;
            state.gossip_keys.lan.insert(dc.name.clone(), key);
        }
    }
    if state.topology.gossip.encrypt_wan {
        state.gossip_keys.wan = Some(keygen(&meridian).await?);
    }
    if !state.topology.tls.enabled {
        return Ok(());
    }
    let ca = create_ca(&meridian, run, 1).await?;
    let first_dc = state.plan.dcs.first().map(|d| d.name.clone());
    let cli = issue_cli(
        &meridian,
        run,
        &ca,
        first_dc.as_deref().unwrap_or("dc1"),
        "1",
    )
    .await?;
    for host in &state.plan.hosts {
        let issued = issue(&meridian, run, &ca, host, "1").await?;
        install_ca(run, &host.name, &[&ca])?;
        install_cert(run, &host.name, &issued)?;
    }
    state.tls = Some(TlsState { cas: vec![ca], cli });
    Ok(())
}

/// `meridian keygen`: a new base64 gossip key.
pub async fn keygen(meridian: &Path) -> Result<String, TestbedError> {
    let out = cli(meridian, &["keygen"], None).await?;
    let key = out.trim().to_string();
    if key.is_empty() {
        return Err(cli_error("keygen", "printed no key".into()));
    }
    Ok(key)
}

/// `meridian tls ca create` in `<run-dir>/tls/ca-<generation>/`.
pub async fn create_ca(
    meridian: &Path,
    run: &RunDir,
    generation: usize,
) -> Result<PemPair, TestbedError> {
    let dir = tls_dir(run).join(format!("ca-{generation}"));
    fresh_dir(&dir)?;
    cli(meridian, &["tls", "ca", "create"], Some(&dir)).await?;
    Ok(PemPair {
        cert: dir.join(format!("{DOMAIN}-agent-ca.pem")),
        key: dir.join(format!("{DOMAIN}-agent-ca-key.pem")),
    })
}

/// `meridian tls cert create` for `host` (by role: `-server -node NAME`, `-client`,
/// `-gateway`; with its addresses as IP SANs), signed by `ca`, in
/// `<run-dir>/tls/issued/<host>-<tag>/`.
pub async fn issue(
    meridian: &Path,
    run: &RunDir,
    ca: &PemPair,
    host: &HostPlan,
    tag: &str,
) -> Result<PemPair, TestbedError> {
    let (kind, label) = match host.role {
        Role::Server => ("-server", "server"),
        Role::Client => ("-client", "client"),
        Role::Gateway => ("-gateway", "gateway"),
    };
    let mut args = vec!["-dc".to_string(), host.dc.clone()];
    if host.role == Role::Server {
        args.extend(["-node".into(), host.name.clone()]);
    }
    let ips = std::iter::once(host.lan_ip).chain(host.wan_ip);
    for ip in ips {
        args.extend(["-additional-ipaddress".into(), ip.to_string()]);
    }
    let dir = tls_dir(run)
        .join("issued")
        .join(format!("{}-{tag}", host.name));
    issue_in(meridian, ca, &dir, kind, &args).await?;
    Ok(leaf_files(&dir, &host.dc, label))
}

/// A `-cli` certificate for `dc`, signed by `ca`, in `<run-dir>/tls/issued/cli-<tag>/`.
pub async fn issue_cli(
    meridian: &Path,
    run: &RunDir,
    ca: &PemPair,
    dc: &str,
    tag: &str,
) -> Result<PemPair, TestbedError> {
    let dir = tls_dir(run).join("issued").join(format!("cli-{tag}"));
    let args = ["-dc".to_string(), dc.to_string()];
    issue_in(meridian, ca, &dir, "-cli", &args).await?;
    Ok(leaf_files(&dir, dc, "cli"))
}

async fn issue_in(
    meridian: &Path,
    ca: &PemPair,
    dir: &Path,
    kind: &str,
    extra: &[String],
) -> Result<(), TestbedError> {
    fresh_dir(dir)?;
    let (ca_cert, ca_key) = (ca.cert.to_string_lossy(), ca.key.to_string_lossy());
    let mut args = vec![
        "tls", "cert", "create", kind, "-ca", &ca_cert, "-key", &ca_key,
    ];
    args.extend(extra.iter().map(String::as_str));
    cli(meridian, &args, Some(dir)).await.map(drop)
}

/// The files `tls cert create` wrote first in an empty directory: `<dc>-<kind>-consul-0`.
fn leaf_files(dir: &Path, dc: &str, kind: &str) -> PemPair {
    PemPair {
        cert: dir.join(format!("{dc}-{kind}-{DOMAIN}-0.pem")),
        key: dir.join(format!("{dc}-{kind}-{DOMAIN}-0-key.pem")),
    }
}

/// Overwrites `host`'s `cert.pem` and `key.pem` with `issued` (the key first; each by a
/// rename).
pub fn install_cert(run: &RunDir, host: &str, issued: &PemPair) -> Result<(), TestbedError> {
    let files = host_files(run, host);
    copy_atomic(&issued.key, &files.key)?;
    copy_atomic(&issued.cert, &files.cert)
}

/// Overwrites `host`'s `ca.pem` with the certificates of `cas`, in order (a bundle when
/// there are several: both are trusted while a CA is replaced).
pub fn install_ca(run: &RunDir, host: &str, cas: &[&PemPair]) -> Result<(), TestbedError> {
    let mut bundle = String::new();
    for ca in cas {
        bundle.push_str(&read(&ca.cert)?);
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
    }
    write_atomic(&host_files(run, host).ca, bundle.as_bytes())
}

/// Runs `meridian ARGS` (in `dir` when given); its stdout, or an error with its stderr.
async fn cli(meridian: &Path, args: &[&str], dir: Option<&Path>) -> Result<String, TestbedError> {
    let mut cmd = Command::new(meridian);
    cmd.args(args).kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let what = format!("meridian {}", args.join(" "));
    let out = cmd.output().await.map_err(|source| TestbedError::Io {
        what: format!("running `{what}`"),
        source,
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(cli_error(&what, format!("{}: {err}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cli_error(what: &str, why: String) -> TestbedError {
    TestbedError::Io {
        what: format!("`{what}`"),
        source: std::io::Error::other(why),
    }
}

/// Makes `dir` and its parents; it must be empty (the CLI would number its files past
/// ones already there).
fn fresh_dir(dir: &Path) -> Result<(), TestbedError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| TestbedError::Io {
            what: format!("emptying {}", dir.display()),
            source,
        })?;
    }
    std::fs::create_dir_all(dir).map_err(|source| TestbedError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })
}

fn read(path: &Path) -> Result<String, TestbedError> {
    std::fs::read_to_string(path).map_err(|source| TestbedError::Io {
        what: format!("reading {}", path.display()),
        source,
    })
}

fn copy_atomic(from: &Path, to: &Path) -> Result<(), TestbedError> {
    let bytes = std::fs::read(from).map_err(|source| TestbedError::Io {
        what: format!("reading {}", from.display()),
        source,
    })?;
    write_atomic(to, &bytes)
}

/// Writes `to` through a temporary file in the same directory and a rename, keeping the
/// file private (keys are in there).
fn write_atomic(to: &Path, bytes: &[u8]) -> Result<(), TestbedError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: String| move |source| TestbedError::Io { what, source };
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let tmp = to.with_extension("pem.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("writing {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, to).map_err(io(format!("renaming into {}", to.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_live_under_the_host_directory() {
        let run = RunDir::new(Path::new("/r"));
        let f = host_files(&run, "dc1-s1");
        assert_eq!(f.ca, Path::new("/r/hosts/dc1-s1/tls/ca.pem"));
        assert_eq!(f.cert, Path::new("/r/hosts/dc1-s1/tls/cert.pem"));
        assert_eq!(f.key, Path::new("/r/hosts/dc1-s1/tls/key.pem"));
    }

    #[test]
    fn leaves_have_consuls_first_file_names() {
        let p = leaf_files(Path::new("/d"), "dc2", "gateway");
        assert_eq!(p.cert, Path::new("/d/dc2-gateway-consul-0.pem"));
        assert_eq!(p.key, Path::new("/d/dc2-gateway-consul-0-key.pem"));
    }

    #[test]
    fn bundles_and_installs_replace_files_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
        std::fs::write(&a, "A").expect("a");
        std::fs::write(&b, "B\n").expect("b");
        let pa = PemPair {
            cert: a.clone(),
            key: b.clone(),
        };
        let pb = PemPair {
            cert: b.clone(),
            key: a.clone(),
        };
        install_ca(&run, "h", &[&pa, &pb]).expect("bundle");
        let f = host_files(&run, "h");
        assert_eq!(std::fs::read_to_string(&f.ca).expect("ca"), "A\nB\n");
        install_ca(&run, "h", &[&pb]).expect("one");
        assert_eq!(std::fs::read_to_string(&f.ca).expect("ca"), "B\n");
        install_cert(&run, "h", &pa).expect("install");
        assert_eq!(std::fs::read_to_string(&f.cert).expect("cert"), "A");
        assert_eq!(std::fs::read_to_string(&f.key).expect("key"), "B\n");
    }
}
