//! Key files: a secp256k1 secret as 0x-hex, mode 0600 (authority and member keys), and the
//! persistent libp2p identity derived from one.

use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;
use primitives::crypto::SecretKey;

use crate::NetworkError;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {reason}")]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// Reads a secp256k1 key file (an authority's or a member's key, 0x-hex), refusing files other users can read.
pub fn load_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let err = |reason: String| KeyFileError {
        path: path.to_path_buf(),
        reason,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "permissions {mode:o} let other users read it; run chmod 600"
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    SecretKey::from_hex(&text).map_err(|_| err("not a 32-byte hex secret key".into()))
}

/// Writes a secret key file with mode 0600.
pub fn write_key_file(path: &Path, key: &SecretKey) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{}", key.to_hex())?;
    f.sync_all()
}

/// Loads the node's persistent p2p identity, creating it (mode 0600) on first run.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, NetworkError> {
    let err = |reason: String| NetworkError::Key {
        path: path.display().to_string(),
        reason,
    };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let text = text.trim();
        let mut bytes =
            hex::decode(text.strip_prefix("0x").unwrap_or(text)).map_err(|e| err(e.to_string()))?;
        return Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| err(e.to_string()));
    }
    let secret = primitives::crypto::SecretKey::random();
    write_key_file(path, &secret).map_err(|e| err(e.to_string()))?;
    let mut bytes =
        hex::decode(secret.to_hex().trim_start_matches("0x")).map_err(|e| err(e.to_string()))?;
    Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| err(e.to_string()))
}
