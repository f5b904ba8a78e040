//! `wallet new`, `import`, `import-dev`, `list`, `address`: the keystore.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use primitives::crypto::SecretKey;
use primitives::types::Address;
use serde::Serialize;

use crate::error::{Result, WalletError};
use crate::{Ctx, Report};
use keystore::{valid_name, KeyFile};

/// `new`, `import` and `import-dev` print the stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyOut {
    /// The key's name.
    pub name: String,
    /// Its address (EIP-55).
    pub address: Address,
    /// The key file written.
    pub path: PathBuf,
}

/// One key in `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// The key's name.
    pub name: String,
    /// Its address, or `null` if the file does not name one (cast's files).
    pub address: Option<Address>,
    /// The key file.
    pub path: PathBuf,
}

/// `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListOut {
    /// The keystore directory.
    pub keystore: PathBuf,
    /// The keys, sorted by name.
    pub keys: Vec<ListEntry>,
}

/// `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressOut {
    /// The key's name.
    pub name: String,
    /// Its address.
    pub address: Address,
}

/// Checks the name is valid and free before any password is asked.
fn check_new_name(ctx: &Ctx, name: &str) -> Result<()> {
    if !valid_name(name) {
        return Err(WalletError::BadKeyName(name.to_string()));
    }
    if ctx.keystore.find(name).is_ok() {
        return Err(WalletError::KeyExists {
            name: name.to_string(),
            dir: ctx.keystore.dir.clone(),
        });
    }
    Ok(())
}

fn store(ctx: &Ctx, name: &str, key: &SecretKey, log_n: u8, verb: &str) -> Result<Report> {
    let password = ctx.password.read(name, true)?;
    let file = KeyFile::encrypt(key, &password, log_n).map_err(|source| WalletError::Keystore {
        name: name.to_string(),
        source,
    })?;
    let path = ctx
        .keystore
        .store(name, &file)
        .map_err(|e| ctx.dir_error(name, e))?;
    let out = KeyOut {
        name: name.to_string(),
        address: key.address(),
        path,
    };
    let human = format!(
        "{verb} key {}: {}\nSaved to {}",
        out.name,
        out.address,
        out.path.display()
    );
    Report::new(&out, human)
}

/// `wallet new NAME`: a fresh random key.
pub fn new(ctx: &Ctx, name: &str, log_n: u8) -> Result<Report> {
    check_new_name(ctx, name)?;
    store(ctx, name, &SecretKey::random(), log_n, "Created")
}

/// `wallet import NAME`: a private key (hex) from a file, or stdin (hidden prompt on a terminal).
pub fn import(ctx: &Ctx, name: &str, file: Option<&Path>, log_n: u8) -> Result<Report> {
    check_new_name(ctx, name)?;
    let text = match file {
        Some(p) if p != Path::new("-") => std::fs::read_to_string(p)
            .map_err(|e| WalletError::io("reading the private key file", p, e))?,
        _ if std::io::stdin().is_terminal() => rpassword::prompt_password("Private key (hex): ")
            .map_err(|e| WalletError::io("reading the private key", "<terminal>", e))?,
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| WalletError::io("reading the private key", "<stdin>", e))?;
            s
        }
    };
    // Never echo the input: it may be a key with a typo.
    let key = SecretKey::from_hex(text.trim()).map_err(|_| {
        WalletError::BadPrivateKey(
            "expected 64 hex digits (optionally 0x-prefixed) of a valid secp256k1 key".into(),
        )
    })?;
    store(ctx, name, &key, log_n, "Imported")
}

/// `wallet import-dev NAME INDEX`: a development key of the well-known mnemonic.
pub fn import_dev(ctx: &Ctx, name: &str, index: u32, log_n: u8) -> Result<Report> {
    check_new_name(ctx, name)?;
    let key = primitives::dev::dev_key(index)
        .map_err(|e| WalletError::BadInput(format!("development key {index}: {e}")))?;
    store(
        ctx,
        name,
        &key,
        log_n,
        &format!("Imported development key {index} as"),
    )
}

/// `wallet list`.
pub fn list(ctx: &Ctx) -> Result<Report> {
    let keys = ctx
        .keystore
        .list()
        .map_err(|e| ctx.dir_error("", e))?
        .into_iter()
        .map(|k| ListEntry {
            name: k.name,
            address: k.address,
            path: k.path,
        })
        .collect::<Vec<_>>();
    let out = ListOut {
        keystore: ctx.keystore.dir.clone(),
        keys,
    };
    let human = if out.keys.is_empty() {
        format!(
            "No keys in {} (create one with `wallet new NAME`)",
            out.keystore.display()
        )
    } else {
        let width = out.keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
        out.keys
            .iter()
            .map(|k| {
                let addr = k.address.map_or_else(
                    || "(address not stored in the file)".to_string(),
                    |a| a.to_string(),
                );
                format!("{:width$}  {addr}", k.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Report::new(&out, human)
}

/// `wallet address NAME`.
pub fn address(ctx: &Ctx, name: &str) -> Result<Report> {
    let (address, _) = ctx.resolve_address_of_key(name)?;
    let out = AddressOut {
        name: name.to_string(),
        address,
    };
    Report::new(&out, out.address.to_string())
}

impl Ctx {
    /// The address of key `name` (never a literal address).
    pub fn resolve_address_of_key(&self, name: &str) -> Result<(Address, Option<String>)> {
        if name.starts_with("0x") || name.starts_with("0X") {
            return Err(WalletError::UnknownKey {
                name: name.to_string(),
                dir: self.keystore.dir.clone(),
            });
        }
        self.resolve_address(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes() {
        let [a, _] = crate::commands::test_addresses();
        let k = KeyOut {
            name: "dev0".into(),
            address: a,
            path: "/k/dev0.json".into(),
        };
        assert_eq!(
            serde_json::to_value(&k).unwrap(),
            serde_json::json!({"name": "dev0", "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "path": "/k/dev0.json"})
        );
        let l = ListOut {
            keystore: "/k".into(),
            keys: vec![
                ListEntry {
                    name: "dev0".into(),
                    address: Some(a),
                    path: "/k/dev0.json".into(),
                },
                ListEntry {
                    name: "cast".into(),
                    address: None,
                    path: "/k/cast".into(),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            serde_json::json!({"keystore": "/k", "keys": [
                {"name": "dev0", "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "path": "/k/dev0.json"},
                {"name": "cast", "address": null, "path": "/k/cast"}
            ]})
        );
        assert_eq!(
            serde_json::to_value(AddressOut {
                name: "dev0".into(),
                address: a
            })
            .unwrap(),
            serde_json::json!({"name": "dev0", "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"})
        );
    }
}
