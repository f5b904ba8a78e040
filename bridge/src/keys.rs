//! The member key: loaded from a 0600 hex key file or an encrypted v3 keystore, never logged.

use std::path::Path;

use primitives::crypto::SecretKey;

use crate::config::MemberConfig;
use crate::error::{BridgeError, Result};

/// Loads the one member key the configuration names.
pub fn load_member_key(cfg: &MemberConfig) -> Result<SecretKey> {
    if let Some(path) = &cfg.key_file {
        return p2p::load_key_file(path).map_err(|e| BridgeError::Key(e.to_string()));
    }
    match (&cfg.keystore_file, &cfg.password_file) {
        (Some(ks), Some(pw)) => load_keystore(ks, pw),
        _ => Err(BridgeError::Key(
            "no key_file or keystore_file configured".into(),
        )),
    }
}

fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| BridgeError::Key(format!("{}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(BridgeError::Key(format!(
                "{}: permissions {mode:o} let other users read it; run chmod 600",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Decrypts a Web3 v3 keystore with the password held in `password_file` (mode 0600).
pub fn load_keystore(keystore: &Path, password_file: &Path) -> Result<SecretKey> {
    check_private(password_file)?;
    let password = std::fs::read_to_string(password_file)
        .map_err(|e| BridgeError::Key(format!("{}: {e}", password_file.display())))?;
    let password = password.trim_end_matches(['\n', '\r']);
    let text = std::fs::read_to_string(keystore)
        .map_err(|e| BridgeError::Key(format!("{}: {e}", keystore.display())))?;
    let file = keystore::KeyFile::from_json(&text)
        .map_err(|e| BridgeError::Key(format!("{}: {e}", keystore.display())))?;
    file.decrypt(password)
        .map_err(|e| BridgeError::Key(format!("{}: {e}", keystore.display())))
}

/// Creates a new random member key in `out` (mode 0600, refuses to overwrite) and returns it.
pub fn new_key_file(out: &Path) -> Result<SecretKey> {
    let key = SecretKey::random();
    p2p::write_key_file(out, &key).map_err(|error| BridgeError::Io {
        what: format!("writing {}", out.display()),
        error,
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_and_key_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kf = dir.path().join("member.key");
        let key = new_key_file(&kf).expect("new key");
        assert!(new_key_file(&kf).is_err(), "never overwrites");
        let loaded = p2p::load_key_file(&kf).expect("load");
        assert_eq!(loaded.address(), key.address());

        let ks = dir.path().join("member.json");
        let file = keystore::KeyFile::encrypt(&key, "pw", 10).expect("encrypt");
        std::fs::write(&ks, serde_json::to_string(&file).expect("json")).expect("write");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pw\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(
                load_keystore(&ks, &pw).is_err(),
                "world-readable password refused"
            );
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        assert_eq!(
            load_keystore(&ks, &pw).expect("decrypt").address(),
            key.address()
        );
    }
}
