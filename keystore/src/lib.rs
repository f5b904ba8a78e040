//! Web3 Secret Storage v3 key files (the format of geth, cast and eth-account) and the
//! keystore directory that holds them, one `NAME.json` per key, each readable only by its owner.
//!
//! Writing: scrypt (n = 2^18, r = 8, p = 1 unless asked otherwise), aes-128-ctr, and the MAC
//! keccak256(derived_key[16..32] ‖ ciphertext). Reading also accepts the pbkdf2 (hmac-sha256) KDF.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes::cipher::{KeyIvInit, StreamCipher};
use primitives::crypto::{keccak256, SecretKey};
use primitives::types::Address;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// aes-128 in CTR mode with a 128-bit big-endian counter, as the v3 spec uses.
type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// scrypt log2(n) written by default: n = 262144, the strength geth and eth-account use.
pub const DEFAULT_SCRYPT_LOG_N: u8 = 18;
/// The lowest scrypt log2(n) the wallet writes (for tests and slow devices).
pub const MIN_SCRYPT_LOG_N: u8 = 10;
/// The highest scrypt log2(n) the wallet reads: 2^20 x 128 x r bytes is already 1 GiB at r = 8.
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// The most pbkdf2 rounds the wallet reads.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Why a key file cannot be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The MAC does not match: the password is wrong (or the file was altered).
    #[error("bad password (the key file's MAC does not match)")]
    BadPassword,
    /// Not a v3 key file.
    #[error("not a Web3 Secret Storage v3 key file: {0}")]
    Format(String),
    /// A KDF, cipher or parameter this wallet does not support.
    #[error("unsupported key file: {0}")]
    Unsupported(String),
    /// The decrypted bytes are not a secp256k1 key.
    #[error("the decrypted key is not a valid secp256k1 key")]
    InvalidKey,
    /// The decrypted key's address differs from the file's `address` field.
    #[error("the decrypted key's address {actual} differs from the file's address {claimed}")]
    AddressMismatch {
        /// The address field.
        claimed: String,
        /// The key's address.
        actual: Address,
    },
}

/// A v3 key file, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// The address, lowercase hex without `0x` (optional: cast omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The encrypted key. geth once wrote `Crypto`; both spellings are read.
    #[serde(alias = "Crypto")]
    pub crypto: CryptoSection,
    /// A random UUID (v4).
    pub id: String,
    /// Always 3.
    pub version: u32,
}

/// The `crypto` object of a v3 key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoSection {
    /// `aes-128-ctr`.
    pub cipher: String,
    /// `{iv}`.
    pub cipherparams: CipherParams,
    /// The encrypted 32-byte secret, hex.
    pub ciphertext: String,
    /// `scrypt` or `pbkdf2`.
    pub kdf: String,
    /// The KDF's parameters; their fields depend on `kdf`.
    pub kdfparams: serde_json::Value,
    /// keccak256(derived_key[16..32] ‖ ciphertext), hex.
    pub mac: String,
}

/// The cipher's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherParams {
    /// 16-byte IV, hex.
    pub iv: String,
}

#[derive(Debug, Deserialize, Serialize)]
struct ScryptParams {
    dklen: u32,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Debug, Deserialize)]
struct Pbkdf2Params {
    dklen: u32,
    c: u32,
    prf: String,
    salt: String,
}

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, KeystoreError> {
    let body = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(body).map_err(|_| KeystoreError::Format(format!("{field} is not hex")))
}

impl KeyFile {
    /// Parses a key file's JSON.
    pub fn from_json(text: &str) -> Result<Self, KeystoreError> {
        let f: KeyFile =
            serde_json::from_str(text).map_err(|e| KeystoreError::Format(e.to_string()))?;
        if f.version != 3 {
            return Err(KeystoreError::Unsupported(format!("version {}", f.version)));
        }
        Ok(f)
    }

    /// The address the file claims, if it names one.
    pub fn claimed_address(&self) -> Option<Address> {
        let a = self.address.as_deref()?;
        let body = a.strip_prefix("0x").unwrap_or(a);
        format!("0x{}", body.to_ascii_lowercase()).parse().ok()
    }

    /// Encrypts `key` under `password` with scrypt n = 2^`log_n`, r = 8, p = 1.
    pub fn encrypt(key: &SecretKey, password: &str, log_n: u8) -> Result<Self, KeystoreError> {
        if !(MIN_SCRYPT_LOG_N..=MAX_SCRYPT_LOG_N).contains(&log_n) {
            return Err(KeystoreError::Unsupported(format!(
                "scrypt log2(n) = {log_n}: must be {MIN_SCRYPT_LOG_N}..={MAX_SCRYPT_LOG_N}"
            )));
        }
        let mut rng = rand::rngs::OsRng;
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        let mut uuid = [0u8; 16];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut iv);
        rng.fill_bytes(&mut uuid);
        let params = ScryptParams {
            dklen: 32,
            n: 1u64 << log_n,
            r: 8,
            p: 1,
            salt: hex::encode(salt),
        };
        let derived = scrypt_derive(password, &salt, log_n, 8, 1)?;
        let secret = unhex("secret", &key.to_hex())?;
        let mut ciphertext = secret;
        apply_aes_ctr(&derived, &iv, &mut ciphertext)?;
        let mac = mac(&derived, &ciphertext);
        Ok(KeyFile {
            address: Some(hex::encode(key.address().0)),
            crypto: CryptoSection {
                cipher: "aes-128-ctr".into(),
                cipherparams: CipherParams {
                    iv: hex::encode(iv),
                },
                ciphertext: hex::encode(&ciphertext),
                kdf: "scrypt".into(),
                kdfparams: serde_json::to_value(&params)
                    .map_err(|e| KeystoreError::Format(e.to_string()))?,
                mac: hex::encode(mac),
            },
            id: uuid_v4(uuid),
            version: 3,
        })
    }

    /// Decrypts the key with `password`; checks the MAC first, then the claimed address.
    pub fn decrypt(&self, password: &str) -> Result<SecretKey, KeystoreError> {
        let c = &self.crypto;
        if c.cipher != "aes-128-ctr" {
            return Err(KeystoreError::Unsupported(format!("cipher {:?}", c.cipher)));
        }
        let derived = match c.kdf.as_str() {
            "scrypt" => {
                let p: ScryptParams = serde_json::from_value(c.kdfparams.clone())
                    .map_err(|e| KeystoreError::Format(format!("scrypt kdfparams: {e}")))?;
                check_dklen(p.dklen)?;
                if !p.n.is_power_of_two() || p.n < 2 {
                    return Err(KeystoreError::Format(format!(
                        "scrypt n = {} is not a power of two",
                        p.n
                    )));
                }
                let log_n = p.n.trailing_zeros() as u8;
                if log_n > MAX_SCRYPT_LOG_N || p.r == 0 || p.r > 32 || p.p == 0 || p.p > 16 {
                    return Err(KeystoreError::Unsupported(format!(
                        "scrypt parameters n = {}, r = {}, p = {} exceed this wallet's limits",
                        p.n, p.r, p.p
                    )));
                }
                scrypt_derive(password, &unhex("salt", &p.salt)?, log_n, p.r, p.p)?
            }
            "pbkdf2" => {
                let p: Pbkdf2Params = serde_json::from_value(c.kdfparams.clone())
                    .map_err(|e| KeystoreError::Format(format!("pbkdf2 kdfparams: {e}")))?;
                check_dklen(p.dklen)?;
                if p.prf != "hmac-sha256" {
                    return Err(KeystoreError::Unsupported(format!(
                        "pbkdf2 prf {:?}",
                        p.prf
                    )));
                }
                if p.c == 0 || p.c > MAX_PBKDF2_ROUNDS {
                    return Err(KeystoreError::Unsupported(format!(
                        "pbkdf2 rounds c = {}",
                        p.c
                    )));
                }
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    &unhex("salt", &p.salt)?,
                    p.c,
                    &mut out,
                );
                out
            }
            other => return Err(KeystoreError::Unsupported(format!("kdf {other:?}"))),
        };
        let mut ciphertext = unhex("ciphertext", &c.ciphertext)?;
        if ciphertext.len() != 32 {
            return Err(KeystoreError::Format(format!(
                "ciphertext is {} bytes, expected 32",
                ciphertext.len()
            )));
        }
        let expected = unhex("mac", &c.mac)?;
        if !constant_time_eq(&mac(&derived, &ciphertext), &expected) {
            return Err(KeystoreError::BadPassword);
        }
        let iv = unhex("iv", &c.cipherparams.iv)?;
        apply_aes_ctr(&derived, &iv, &mut ciphertext)?;
        let key = SecretKey::from_bytes(&ciphertext).map_err(|_| KeystoreError::InvalidKey)?;
        if let Some(claimed) = &self.address {
            if self.claimed_address() != Some(key.address()) {
                return Err(KeystoreError::AddressMismatch {
                    claimed: claimed.clone(),
                    actual: key.address(),
                });
            }
        }
        Ok(key)
    }
}

fn check_dklen(dklen: u32) -> Result<(), KeystoreError> {
    if dklen != 32 {
        return Err(KeystoreError::Unsupported(format!("dklen {dklen}")));
    }
    Ok(())
}

fn scrypt_derive(
    password: &str,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<[u8; 32], KeystoreError> {
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| KeystoreError::Unsupported(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut out)
        .map_err(|e| KeystoreError::Unsupported(format!("scrypt output: {e}")))?;
    Ok(out)
}

fn apply_aes_ctr(derived: &[u8; 32], iv: &[u8], data: &mut [u8]) -> Result<(), KeystoreError> {
    let mut cipher = Aes128Ctr::new_from_slices(&derived[..16], iv)
        .map_err(|_| KeystoreError::Format("iv must be 16 bytes".into()))?;
    cipher.apply_keystream(data);
    Ok(())
}

fn mac(derived: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(16 + ciphertext.len());
    buf.extend_from_slice(&derived[16..32]);
    buf.extend_from_slice(ciphertext);
    keccak256(&buf).0
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A key file in the keystore directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's name: the file name without `.json`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The address the file names, if any.
    pub address: Option<Address>,
}

/// Whether `name` is usable as a key name (and so as a file name on every platform).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The keystore directory.
#[derive(Debug, Clone)]
pub struct Keystore {
    /// Where the key files live.
    pub dir: PathBuf,
}

/// Why a keystore directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// No key of that name.
    #[error("no key named {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("a key named {0:?} already exists")]
    Exists(String),
    /// A file system error.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a key file.
    #[error("{}: {source}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeystoreError,
    },
}

impl Keystore {
    /// The keystore at `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Keystore { dir: dir.into() }
    }

    /// The file holding key `name`: `NAME.json`, or `NAME` as cast writes it.
    pub fn find(&self, name: &str) -> Result<PathBuf, DirError> {
        if valid_name(name) {
            for candidate in [self.dir.join(format!("{name}.json")), self.dir.join(name)] {
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        Err(DirError::NotFound(name.to_string()))
    }

    /// Reads and parses key `name`.
    pub fn load(&self, name: &str) -> Result<KeyFile, DirError> {
        let path = self.find(name)?;
        read_key_file(&path)
    }

    /// Every key file in the directory, sorted by name; files that are not key files are skipped.
    pub fn list(&self) -> Result<Vec<StoredKey>, DirError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(DirError::Io {
                    what: "reading the keystore",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let name = file_name.strip_suffix(".json").unwrap_or(file_name);
            if !valid_name(name) || !path.is_file() {
                continue;
            }
            if let Ok(file) = read_key_file(&path) {
                out.push(StoredKey {
                    name: name.to_string(),
                    address: file.claimed_address(),
                    path,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    /// Writes `file` as `NAME.json`, readable by the owner only; never replaces an existing key.
    pub fn store(&self, name: &str, file: &KeyFile) -> Result<PathBuf, DirError> {
        if self.find(name).is_ok() {
            return Err(DirError::Exists(name.to_string()));
        }
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| DirError::Io { what, path, source }
        };
        create_private_dir(&self.dir).map_err(io("creating the keystore", &self.dir))?;
        let path = self.dir.join(format!("{name}.json"));
        let tmp = self
            .dir
            .join(format!(".{name}.json.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(file).map_err(|e| DirError::Io {
            what: "encoding",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let written = (|| {
            let mut f = private_file(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("writing", &tmp)(e));
        }
        // A hard link never replaces an existing file: two concurrent writers cannot clobber a key.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(DirError::Exists(name.to_string()))
            }
            Err(e) => Err(io("writing", &path)(e)),
        }
    }
}

fn read_key_file(path: &Path) -> Result<KeyFile, DirError> {
    let text = std::fs::read_to_string(path).map_err(|source| DirError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    KeyFile::from_json(&text).map_err(|source| DirError::Bad {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Vector {
        password: String,
        private_key: String,
        address: String,
        note: String,
        keystore: serde_json::Value,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../testdata/keystore-v3.json")).unwrap()
    }

    fn check(v: &Vector) {
        let file = KeyFile::from_json(&v.keystore.to_string()).unwrap();
        let key = file.decrypt(&v.password).unwrap();
        assert_eq!(key.to_hex(), v.private_key, "{}", v.note);
        assert_eq!(key.address().to_checksum(), v.address, "{}", v.note);
        assert!(matches!(
            file.decrypt("wrong password"),
            Err(KeystoreError::BadPassword)
        ));
    }

    #[test]
    fn spec_vectors_decrypt_light_scrypt_pbkdf2_and_cast() {
        let vs = vectors();
        let mut seen = 0;
        for v in vs.iter().filter(|v| !v.note.contains("262144")) {
            check(v);
            seen += 1;
        }
        assert_eq!(seen, 3);
    }

    /// The default strength (scrypt n = 2^18): seconds in release, much longer in debug.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "scrypt n=262144 is slow in debug builds")]
    fn spec_vector_default_strength() {
        let vs = vectors();
        let v = vs.iter().find(|v| v.note.contains("262144")).unwrap();
        check(v);
    }

    #[test]
    fn round_trip_and_format() {
        let key = SecretKey::random();
        let file = KeyFile::encrypt(&key, "hunter2", MIN_SCRYPT_LOG_N).unwrap();
        assert_eq!(file.decrypt("hunter2").unwrap().to_hex(), key.to_hex());
        assert!(matches!(
            file.decrypt("hunter3"),
            Err(KeystoreError::BadPassword)
        ));
        // Through JSON, with exactly the fields other tools read.
        let json = serde_json::to_value(&file).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["address", "crypto", "id", "version"]);
        assert_eq!(json["version"], 3);
        assert_eq!(json["crypto"]["cipher"], "aes-128-ctr");
        assert_eq!(json["crypto"]["kdf"], "scrypt");
        let kp = &json["crypto"]["kdfparams"];
        assert_eq!(kp["n"], 1024);
        assert_eq!(kp["r"], 8);
        assert_eq!(kp["p"], 1);
        assert_eq!(kp["dklen"], 32);
        assert_eq!(kp["salt"].as_str().unwrap().len(), 64);
        assert_eq!(
            json["crypto"]["cipherparams"]["iv"].as_str().unwrap().len(),
            32
        );
        assert_eq!(json["crypto"]["ciphertext"].as_str().unwrap().len(), 64);
        assert_eq!(json["crypto"]["mac"].as_str().unwrap().len(), 64);
        let addr = json["address"].as_str().unwrap();
        assert_eq!(addr, hex::encode(key.address().0));
        let id = json["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let back = KeyFile::from_json(&json.to_string()).unwrap();
        assert_eq!(back.decrypt("hunter2").unwrap().address(), key.address());
        assert!(KeyFile::encrypt(&key, "x", 9).is_err());
    }

    /// A file this wallet wrote, decrypted by eth-account 0.14 (Python):
    /// `Account.decrypt(json, "twinpeg")` gave the private key recorded here.
    #[test]
    fn our_file_decrypted_by_eth_account() {
        #[derive(Deserialize)]
        struct Written {
            password: String,
            private_key: String,
            keystore: serde_json::Value,
        }
        let w: Written =
            serde_json::from_str(include_str!("../testdata/written-by-wallet.json")).unwrap();
        let file = KeyFile::from_json(&w.keystore.to_string()).unwrap();
        assert_eq!(file.decrypt(&w.password).unwrap().to_hex(), w.private_key);
    }

    #[test]
    fn tampered_and_hostile_files_refused() {
        let v = &vectors()[0];
        let mut ks = v.keystore.clone();
        ks["crypto"]["ciphertext"] = "00".repeat(32).into();
        let f = KeyFile::from_json(&ks.to_string()).unwrap();
        assert!(matches!(
            f.decrypt(&v.password),
            Err(KeystoreError::BadPassword)
        ));
        let mut huge = v.keystore.clone();
        huge["crypto"]["kdfparams"]["n"] = (1u64 << 30).into();
        let f = KeyFile::from_json(&huge.to_string()).unwrap();
        assert!(matches!(
            f.decrypt(&v.password),
            Err(KeystoreError::Unsupported(_))
        ));
        let mut odd = v.keystore.clone();
        odd["crypto"]["kdfparams"]["n"] = 1000.into();
        let f = KeyFile::from_json(&odd.to_string()).unwrap();
        assert!(matches!(
            f.decrypt(&v.password),
            Err(KeystoreError::Format(_))
        ));
        let mut lie = v.keystore.clone();
        lie["address"] = "0000000000000000000000000000000000000001".into();
        let f = KeyFile::from_json(&lie.to_string()).unwrap();
        assert!(matches!(
            f.decrypt(&v.password),
            Err(KeystoreError::AddressMismatch { .. })
        ));
        assert!(KeyFile::from_json("{}").is_err());
        assert!(KeyFile::from_json("not json").is_err());
    }

    #[test]
    fn directory_store_list_find_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::new(dir.path().join("keys"));
        assert!(ks.list().unwrap().is_empty());
        let key = SecretKey::random();
        let file = KeyFile::encrypt(&key, "pw", MIN_SCRYPT_LOG_N).unwrap();
        let path = ks.store("alice", &file).unwrap();
        assert!(matches!(ks.store("alice", &file), Err(DirError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&ks.dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // A cast-style file without extension and without an address.
        let cast = &vectors()[3];
        std::fs::write(ks.dir.join("fromcast"), cast.keystore.to_string()).unwrap();
        std::fs::write(ks.dir.join("notes.txt"), "hello").unwrap();
        let list = ks.list().unwrap();
        let names: Vec<&str> = list.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["alice", "fromcast"]);
        assert_eq!(list[0].address, Some(key.address()));
        assert_eq!(list[1].address, None);
        assert_eq!(
            ks.load("fromcast")
                .unwrap()
                .decrypt("castpass")
                .unwrap()
                .to_hex(),
            cast.private_key
        );
        assert!(matches!(ks.find("bob"), Err(DirError::NotFound(_))));
        assert!(matches!(ks.find("../etc"), Err(DirError::NotFound(_))));
        assert!(!valid_name("../x"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name(""));
        assert!(valid_name("dev-0_main.v2"));
    }
}
