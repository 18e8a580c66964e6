//! The gossip keyring: an ordered list of AES-GCM keys, memberlist-style. Owns sealing and
//! opening of single datagrams and the keyring file (`serf/local.keyring`). No sockets here;
//! the transport calls [`Keyring::seal`] / [`Keyring::open`] per packet.
//!
//! Wire format (memberlist `security.go`, version 1): `[1][nonce:12][ciphertext||tag:16]`,
//! 29 bytes of overhead. The first key is the primary and seals; opening tries every key.
//!
//! Key sizes: 16 bytes (AES-128-GCM) and 32 bytes (AES-256-GCM). memberlist also accepts
//! 24-byte AES-192 keys, but ring (the project's only crypto provider) has no AES-192, so a
//! 24-byte key is rejected with [`KeyError::Aes192Unsupported`] rather than silently misused.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng;
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// memberlist's encryption version 1 (no padding). Also the transport's "sealed" envelope tag.
pub const ENCRYPTION_VERSION: u8 = 1;
/// Bytes a sealed packet adds to its plaintext: version (1) + nonce (12) + tag (16).
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
const TAG_LEN: usize = 16;

/// The keyring file under a data dir for the LAN pool (Consul's path).
pub fn local_keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serf").join("local.keyring")
}

/// The keyring file under a data dir for the WAN pool (Consul's path).
pub fn remote_keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serf").join("remote.keyring")
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not standard base64.
    #[error("gossip key is not valid base64: {0}")]
    Base64(String),
    /// 24 bytes is AES-192, which ring does not implement.
    #[error(
        "gossip key is 24 bytes (AES-192), which is not supported; use 16 (AES-128) or 32 bytes (AES-256)"
    )]
    Aes192Unsupported,
    /// Any other length.
    #[error("gossip key is {0} bytes; it must be 16 (AES-128) or 32 bytes (AES-256)")]
    BadLength(usize),
    /// `install` of a key that is already there is fine; `use`/`remove` of a missing one is not.
    #[error("gossip key is not installed in the keyring")]
    NotInstalled,
    /// memberlist refuses this, so does Consul's `keyring -remove`.
    #[error("removing the primary gossip key is not allowed; `use` another key first")]
    RemovePrimary,
    /// ring refused the key bytes (cannot happen for 16/32 bytes; kept to avoid an unwrap).
    #[error("gossip key rejected by the cipher")]
    Cipher,
}

/// Why a packet could not be opened. Small and unboxed: this is the hot path.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than version + nonce + tag.
    #[error("sealed packet too short")]
    TooShort,
    /// First byte is not a version this build understands.
    #[error("unknown encryption version {0}")]
    UnknownVersion(u8),
    /// The keyring is empty.
    #[error("no gossip keys installed")]
    NoKeys,
    /// Wrong key, tampered data or a truncated tag.
    #[error("no installed key could decrypt the packet")]
    NoKeyMatched,
}

/// Errors reading or writing the keyring file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringFileError {
    /// Filesystem trouble.
    #[error("keyring file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a JSON list of strings.
    #[error("keyring file {path} is not a JSON list of base64 keys: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// One of the keys is bad.
    #[error("keyring file {path}, key #{index}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Zero-based position in the list.
        index: usize,
        /// What is wrong with it.
        source: KeyError,
    },
}

/// A validated gossip key (16 or 32 raw bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct GossipKey(Vec<u8>);

impl GossipKey {
    /// Accepts raw key bytes of a supported length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        match bytes.len() {
            16 | 32 => Ok(Self(bytes.to_vec())),
            24 => Err(KeyError::Aes192Unsupported),
            n => Err(KeyError::BadLength(n)),
        }
    }

    /// Parses Consul's format: standard base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| KeyError::Base64(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random 32-byte key (what `consul keygen` prints).
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Standard base64, as `keygen` prints and `encrypt` takes.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    fn cipher(&self) -> Result<LessSafeKey, KeyError> {
        let alg = if self.0.len() == 16 {
            &AES_128_GCM
        } else {
            &AES_256_GCM
        };
        let unbound = UnboundKey::new(alg, &self.0).map_err(|_| KeyError::Cipher)?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl fmt::Debug for GossipKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GossipKey({} bytes)", self.0.len())
    }
}

/// An ordered keyring: index 0 is the primary (seals); every key may open.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<(GossipKey, LessSafeKey)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Keyring {
    /// A keyring whose primary is `primary`.
    pub fn new(primary: GossipKey) -> Result<Self, KeyError> {
        let mut ring = Self::default();
        ring.install(primary)?;
        Ok(ring)
    }

    /// A keyring from keys in order (first = primary); empty means "no encryption".
    pub fn from_keys(keys: impl IntoIterator<Item = GossipKey>) -> Result<Self, KeyError> {
        let mut ring = Self::default();
        for key in keys {
            ring.install(key)?;
        }
        Ok(ring)
    }

    /// True when no key is installed (gossip runs in plaintext).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys in order, primary first.
    pub fn keys(&self) -> Vec<GossipKey> {
        self.keys.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The primary key, if any.
    pub fn primary(&self) -> Option<&GossipKey> {
        self.keys.first().map(|(k, _)| k)
    }

    /// Adds a key at the end (it can open at once; `use_key` makes it seal). Idempotent.
    /// The first key installed into an empty ring becomes the primary.
    pub fn install(&mut self, key: GossipKey) -> Result<(), KeyError> {
        if self.keys.iter().any(|(k, _)| *k == key) {
            return Ok(());
        }
        let cipher = key.cipher()?;
        self.keys.push((key, cipher));
        Ok(())
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, key: &GossipKey) -> Result<(), KeyError> {
        let pos = self
            .keys
            .iter()
            .position(|(k, _)| k == key)
            .ok_or(KeyError::NotInstalled)?;
        let entry = self.keys.remove(pos);
        self.keys.insert(0, entry);
        Ok(())
    }

    /// Removes a non-primary key.
    pub fn remove(&mut self, key: &GossipKey) -> Result<(), KeyError> {
        let pos = self
            .keys
            .iter()
            .position(|(k, _)| k == key)
            .ok_or(KeyError::NotInstalled)?;
        if pos == 0 {
            return Err(KeyError::RemovePrimary);
        }
        self.keys.remove(pos);
        Ok(())
    }

    /// Seals with the primary key: `[1][nonce][ciphertext||tag]`. `None` when the ring is empty.
    pub fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let (_, cipher) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        // ThreadRng is a CSPRNG reseeded from the OS; random 96-bit nonces are safe up to
        // ~2^32 packets per key (rotate well before).
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.push(ENCRYPTION_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = 1 + NONCE_LEN;
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut out[body..],
            )
            // ring only fails for inputs beyond ~64 GiB; a datagram cannot get there.
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// Opens a sealed packet with whichever installed key fits.
    pub fn open(&self, packet: &[u8]) -> Result<Vec<u8>, OpenError> {
        if packet.len() < SEAL_OVERHEAD {
            return Err(OpenError::TooShort);
        }
        if packet[0] != ENCRYPTION_VERSION {
            return Err(OpenError::UnknownVersion(packet[0]));
        }
        if self.keys.is_empty() {
            return Err(OpenError::NoKeys);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&packet[1..1 + NONCE_LEN]);
        let sealed = &packet[1 + NONCE_LEN..];
        for (_, cipher) in &self.keys {
            // open_in_place scribbles on failure, so every attempt gets a fresh copy.
            let mut buf = sealed.to_vec();
            let nonce = Nonce::assume_unique_for_key(nonce);
            if let Ok(plain) = cipher.open_in_place(nonce, Aad::empty(), &mut buf) {
                let len = plain.len();
                buf.truncate(len);
                return Ok(buf);
            }
        }
        Err(OpenError::NoKeyMatched)
    }

    /// Loads a keyring file (a JSON list of base64 keys, primary first). A missing file
    /// yields `Ok(None)`.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyringFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyringFileError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let list: Vec<String> =
            serde_json::from_str(&text).map_err(|source| KeyringFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        let mut ring = Self::default();
        for (index, text) in list.iter().enumerate() {
            let key_err = |source| KeyringFileError::Key {
                path: path.to_owned(),
                index,
                source,
            };
            let key = GossipKey::from_base64(text).map_err(key_err)?;
            ring.install(key).map_err(key_err)?;
        }
        Ok(Some(ring))
    }

    /// Writes the keyring file atomically (temp file in the same dir, fsync, rename), mode
    /// 0600 on unix since it holds secrets.
    pub fn save(&self, path: &Path) -> Result<(), KeyringFileError> {
        let io_err = |source| KeyringFileError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let list: Vec<String> = self.keys.iter().map(|(k, _)| k.to_base64()).collect();
        let json = serde_json::to_vec_pretty(&list).map_err(|source| KeyringFileError::Json {
            path: path.to_owned(),
            source,
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o600);
            tmp.as_file().set_permissions(perms).map_err(io_err)?;
        }
        tmp.write_all(&json).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8, len: usize) -> GossipKey {
        GossipKey::from_bytes(&vec![byte; len]).expect("valid length")
    }

    #[test]
    fn seal_open_round_trip_with_both_key_sizes() {
        for len in [16, 32] {
            let ring = Keyring::new(key(7, len)).expect("ring");
            let sealed = ring.seal(b"hello").expect("sealed");
            assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
            assert_eq!(sealed[0], ENCRYPTION_VERSION);
            assert_eq!(ring.open(&sealed).expect("opens"), b"hello");
        }
    }

    #[test]
    fn wrong_key_tamper_and_truncation_are_errors() {
        let a = Keyring::new(key(1, 32)).expect("ring");
        let b = Keyring::new(key(2, 32)).expect("ring");
        let sealed = a.seal(b"payload").expect("sealed");
        assert_eq!(b.open(&sealed), Err(OpenError::NoKeyMatched));
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(a.open(&bad), Err(OpenError::NoKeyMatched), "byte {i}");
        }
        let mut bad = sealed.clone();
        bad[0] = 9;
        assert_eq!(a.open(&bad), Err(OpenError::UnknownVersion(9)));
        assert_eq!(a.open(&sealed[..10]), Err(OpenError::TooShort));
        assert_eq!(Keyring::default().open(&sealed), Err(OpenError::NoKeys));
        assert!(Keyring::default().seal(b"x").is_none());
    }

    #[test]
    fn rotation_install_use_remove() {
        let (old, new) = (key(1, 32), key(2, 16));
        let mut ring = Keyring::new(old.clone()).expect("ring");
        let by_old = ring.seal(b"a").expect("sealed");
        ring.install(new.clone()).expect("install");
        ring.install(new.clone()).expect("install is idempotent");
        assert_eq!(ring.keys().len(), 2);
        assert_eq!(
            ring.primary(),
            Some(&old),
            "install does not change the primary"
        );
        ring.use_key(&new).expect("use");
        assert_eq!(ring.primary(), Some(&new));
        let by_new = ring.seal(b"b").expect("sealed");
        assert_eq!(ring.open(&by_old).expect("old still opens"), b"a");
        assert_eq!(ring.remove(&new), Err(KeyError::RemovePrimary));
        ring.remove(&old).expect("remove old");
        assert_eq!(ring.open(&by_old), Err(OpenError::NoKeyMatched));
        assert_eq!(ring.open(&by_new).expect("opens"), b"b");
        assert_eq!(ring.use_key(&old), Err(KeyError::NotInstalled));
        assert_eq!(ring.remove(&old), Err(KeyError::NotInstalled));
    }

    #[test]
    fn key_parsing_says_what_is_wrong() {
        let k = GossipKey::generate();
        assert_eq!(GossipKey::from_base64(&k.to_base64()), Ok(k));
        assert!(matches!(
            GossipKey::from_base64("not base64!"),
            Err(KeyError::Base64(_))
        ));
        let e = GossipKey::from_base64(&BASE64.encode([0u8; 24])).expect_err("24");
        assert_eq!(e, KeyError::Aes192Unsupported);
        assert!(e.to_string().contains("24 bytes"), "{e}");
        let e = GossipKey::from_base64("c2hvcnQ=").expect_err("5 bytes");
        assert_eq!(e, KeyError::BadLength(5));
        assert!(e.to_string().contains("5 bytes"), "{e}");
        assert!(
            !format!("{:?}", key(3, 16)).contains('3'),
            "debug hides key bytes"
        );
    }

    #[test]
    fn keyring_file_round_trip_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = local_keyring_path(dir.path());
        assert!(Keyring::load(&path).expect("missing is ok").is_none());
        let ring = Keyring::from_keys([key(1, 32), key(2, 16)]).expect("ring");
        ring.save(&path).expect("save");
        let back = Keyring::load(&path).expect("load").expect("present");
        assert_eq!(back.keys(), ring.keys());
        let text = std::fs::read_to_string(&path).expect("read");
        let list: Vec<String> = serde_json::from_str(&text).expect("json list");
        assert_eq!(list[0], key(1, 32).to_base64());

        std::fs::write(&path, "{}").expect("write");
        assert!(matches!(
            Keyring::load(&path),
            Err(KeyringFileError::Json { .. })
        ));
        std::fs::write(&path, r#"["c2hvcnQ="]"#).expect("write");
        let err = Keyring::load(&path).expect_err("bad key");
        assert!(err.to_string().contains("key #0"), "{err}");
    }
}
