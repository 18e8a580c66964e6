//! A CA and certificates made with `meridian tls ca create` / `tls cert create` in a test's
//! temp dir, and Consul's TLS stanza for an agent presenting them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{bin, text};

/// `meridian ARGS` run in `dir`.
pub fn meridian_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run meridian")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A CA and certificates in `dir/pki`, made with the CLI.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn create(root: &Path) -> Pki {
        let dir = root.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let pki = Pki { dir };
        pki.run(&["tls", "ca", "create"]);
        pki
    }

    pub fn run(&self, args: &[&str]) -> String {
        let o = meridian_in(&self.dir, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        stdout(&o)
    }

    /// A new certificate of `kind` (`-server`, `-client`) with `extra` flags: (cert, key).
    pub fn cert(&self, kind: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
        let mut args = vec!["tls", "cert", "create", kind];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let saved: Vec<PathBuf> = out
            .lines()
            .filter_map(|l| l.strip_prefix("==> Saved "))
            .map(|f| self.dir.join(f))
            .collect();
        (saved[0].clone(), saved[1].clone())
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("consul-agent-ca.pem")
    }
}

/// Consul's TLS stanza for a server presenting `cert`/`key`.
pub fn tls_config(dir: &Path, name: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    let path = dir.join(format!("{name}.hcl"));
    let body = format!(
        r#"tls {{
  defaults {{
    ca_file = "{}"
    cert_file = "{}"
    key_file = "{}"
    verify_incoming = true
    verify_outgoing = true
  }}
  internal_rpc {{
    verify_server_hostname = true
  }}
}}
"#,
        ca.display(),
        cert.display(),
        key.display()
    );
    std::fs::write(&path, body).expect("write config");
    path.to_string_lossy().into_owned()
}
