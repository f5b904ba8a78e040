//! Development accounts: the keys of the well-known mnemonic `test test ... junk` at
//! `m/44'/60'/0'/0/{index}`, the same accounts `anvil` prefunds. Public; never for real funds.

use crate::crypto::{CryptoError, SecretKey};

/// The development mnemonic.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Errors deriving a key from a mnemonic.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    /// Not a valid BIP-39 phrase.
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    /// Derivation failed (index out of range).
    #[error("derivation failed: {0}")]
    Derive(String),
    /// The derived scalar is not a key.
    #[error(transparent)]
    Key(#[from] CryptoError),
}

/// The key at `m/44'/60'/0'/0/{index}` of `phrase` (empty passphrase).
pub fn derive_key(phrase: &str, index: u32) -> Result<SecretKey, DeriveError> {
    let mnemonic =
        bip39::Mnemonic::parse(phrase).map_err(|e| DeriveError::Mnemonic(e.to_string()))?;
    let seed = mnemonic.to_seed("");
    let path: bip32::DerivationPath = format!("m/44'/60'/0'/0/{index}")
        .parse()
        .map_err(|e: bip32::Error| DeriveError::Derive(e.to_string()))?;
    let xprv = bip32::XPrv::derive_from_path(&seed, &path)
        .map_err(|e| DeriveError::Derive(e.to_string()))?;
    Ok(SecretKey::from_bytes(&xprv.private_key().to_bytes())?)
}

/// Development account `index` of [`DEV_MNEMONIC`].
pub fn dev_key(index: u32) -> Result<SecretKey, DeriveError> {
    derive_key(DEV_MNEMONIC, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_match_the_published_accounts() {
        #[derive(serde::Deserialize)]
        struct File {
            accounts: Vec<Acct>,
        }
        #[derive(serde::Deserialize)]
        struct Acct {
            index: u32,
            address: String,
            private_key: String,
        }
        let f: File = serde_json::from_str(include_str!("../testdata/dev-accounts.json")).unwrap();
        for a in f.accounts {
            let k = dev_key(a.index).unwrap();
            assert_eq!(k.address().to_checksum(), a.address);
            assert_eq!(k.to_hex(), a.private_key);
        }
        assert!(derive_key("not a mnemonic", 0).is_err());
    }
}
