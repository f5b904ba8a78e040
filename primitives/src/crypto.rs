//! secp256k1 keys (k256), recoverable signatures over keccak256 prehashes, addresses.

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::types::{Address, Bytes, Hash};

/// Every domain prefix, in one place: a transaction, a block seal, a bridge member's peer
/// binding and a peg attestation can never be confused, nor any hash the chain commits to.
/// None is a prefix of another; changing a byte changes signatures and genesis hashes.
pub mod domain {
    /// Prefix of every transaction signing hash.
    pub const TRANSACTION: &[u8] = b"twinpeg/transaction/v1";
    /// Prefix of every block seal signing hash.
    pub const BLOCK_SEAL: &[u8] = b"twinpeg/block-seal/v1";
    /// Prefix of a bridge member's statement binding its libp2p peer id to its member key.
    pub const BRIDGE_PEER: &[u8] = b"twinpeg/bridge-peer/v1";
    /// Prefix of the peg domain, the hash every peg attestation binds (with both geneses).
    pub const PEG: &[u8] = b"twinpeg/peg-domain/v1";
    /// Preimage of the mainchain escrow's address.
    pub const ESCROW: &[u8] = b"twinpeg/escrow/v1";
    /// Preimage of the sidechain withdrawal address (a transfer to it is a withdrawal).
    pub const WITHDRAWAL: &[u8] = b"twinpeg/withdrawal/v1";
    /// Prefix of one account's entry in the state digest.
    pub const STATE_ACCOUNT: &[u8] = b"twinpeg/state/account";
    /// Prefix of one processed peg id's entry in the state digest.
    pub const STATE_PEG_ID: &[u8] = b"twinpeg/state/peg-id";
    /// Prefix of the state digest over the entries and the totals.
    pub const STATE_DIGEST: &[u8] = b"twinpeg/state/digest";
    /// Prefix of an authority's finality statement (proposal, prevote, precommit), which
    /// also binds the chain id and the genesis hash.
    pub const FINALITY: &[u8] = b"twinpeg/finality/v1";

    /// Every prefix above, for the test that keeps them apart.
    pub const ALL: [&[u8]; 10] = [
        TRANSACTION,
        BLOCK_SEAL,
        BRIDGE_PEER,
        PEG,
        ESCROW,
        WITHDRAWAL,
        STATE_ACCOUNT,
        STATE_PEG_ID,
        STATE_DIGEST,
        FINALITY,
    ];
}

/// Errors from key handling and signature recovery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The 32 bytes are not a valid secp256k1 secret scalar.
    #[error("invalid secret key")]
    InvalidSecretKey,
    /// r or s is zero or out of range.
    #[error("malformed signature")]
    MalformedSignature,
    /// `v` must be 0 or 1.
    #[error("invalid recovery id {0} (must be 0 or 1)")]
    InvalidRecoveryId(u8),
    /// s > n/2: the malleable twin of a valid signature.
    #[error("signature s value is high (not canonical)")]
    HighS,
    /// No public key could be recovered.
    #[error("signature recovery failed")]
    RecoveryFailed,
}

/// keccak256 (original Keccak padding, as Ethereum uses).
pub fn keccak256(data: &[u8]) -> Hash {
    Hash(Keccak256::digest(data).into())
}

/// keccak256 over several pieces, without concatenating them first.
pub fn keccak256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// A recoverable secp256k1 signature: r, s (low-S) and the recovery bit v in {0, 1}.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Signature(pub [u8; 65]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Bytes(self.0.to_vec()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = Bytes::deserialize(d)?;
        let arr: [u8; 65] =
            b.0.try_into()
                .map_err(|_| serde::de::Error::custom("signature must be 65 bytes"))?;
        Ok(Signature(arr))
    }
}

impl Signature {
    /// Recovers the signer's address of `prehash`, refusing high-S and bad recovery ids.
    pub fn recover(&self, prehash: &Hash) -> Result<Address, CryptoError> {
        let v = self.0[64];
        if v > 1 {
            return Err(CryptoError::InvalidRecoveryId(v));
        }
        let sig = EcdsaSignature::from_slice(&self.0[..64])
            .map_err(|_| CryptoError::MalformedSignature)?;
        if sig.normalize_s() != sig {
            return Err(CryptoError::HighS);
        }
        let recid = RecoveryId::from_byte(v).ok_or(CryptoError::InvalidRecoveryId(v))?;
        let key = VerifyingKey::recover_from_prehash(&prehash.0, &sig, recid)
            .map_err(|_| CryptoError::RecoveryFailed)?;
        Ok(address_of(&key))
    }
}

/// The address of a public key: keccak256(uncompressed point without the 0x04 tag)[12..].
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    let digest = keccak256(&bytes[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest.0[12..]);
    Address(out)
}

/// A secp256k1 secret key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct SecretKey {
    inner: SigningKey,
    address: Address,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.address)
    }
}

impl SecretKey {
    /// From 32 big-endian bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let inner = SigningKey::from_slice(bytes).map_err(|_| CryptoError::InvalidSecretKey)?;
        let address = address_of(inner.verifying_key());
        Ok(Self { inner, address })
    }

    /// From 64 hex digits, with or without `0x`; surrounding whitespace is ignored.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let s = s.trim();
        let body = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(body).map_err(|_| CryptoError::InvalidSecretKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidSecretKey);
        }
        Self::from_bytes(&bytes)
    }

    /// A fresh key from the operating system's randomness.
    pub fn random() -> Self {
        use rand::RngCore;
        loop {
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            if let Ok(k) = Self::from_bytes(&b) {
                return k;
            }
        }
    }

    /// The secret as 0x-hex; for key files and dev output only.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.inner.to_bytes()))
    }

    /// This key's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The uncompressed public key without the 0x04 tag (64 bytes).
    pub fn public_key(&self) -> [u8; 64] {
        let point = self.inner.verifying_key().to_sec1_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&point.as_bytes()[1..]);
        out
    }

    /// Signs a 32-byte prehash; the result is always low-S.
    pub fn sign_prehash(&self, prehash: &Hash) -> Signature {
        let (sig, recid) = self.inner.sign_prehash_recoverable(&prehash.0);
        let mut v = recid.to_byte();
        let normalized = sig.normalize_s();
        if normalized != sig {
            // Negating s mirrors R's y parity.
            v ^= 1;
        }
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&normalized.to_bytes());
        out[64] = v;
        Signature(out)
    }
}

/// The prehash of `payload` under a signing domain: keccak256(domain || payload).
pub fn domain_hash(domain: &[u8], payload: &[u8]) -> Hash {
    keccak256_parts(&[domain, payload])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct DevAccounts {
        accounts: Vec<DevAccount>,
    }
    #[derive(serde::Deserialize)]
    struct DevAccount {
        address: String,
        private_key: String,
        public_key_uncompressed: String,
    }

    #[test]
    fn known_key_gives_known_address() {
        let k = SecretKey::from_hex(
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        )
        .unwrap();
        assert_eq!(
            k.address().to_checksum(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    #[test]
    fn dev_account_vectors() {
        let v: DevAccounts =
            serde_json::from_str(include_str!("../testdata/dev-accounts.json")).unwrap();
        assert_eq!(v.accounts.len(), 10);
        for a in v.accounts {
            let k = SecretKey::from_hex(&a.private_key).unwrap();
            assert_eq!(k.address().to_checksum(), a.address);
            assert_eq!(
                format!("0x{}", hex::encode(k.public_key())),
                a.public_key_uncompressed
            );
        }
    }

    #[test]
    fn keccak_vectors() {
        #[derive(serde::Deserialize)]
        struct V {
            input_hex: String,
            keccak256: String,
        }
        let v: Vec<V> = serde_json::from_str(include_str!("../testdata/keccak256.json")).unwrap();
        assert!(!v.is_empty());
        for x in v {
            let input: Bytes = x.input_hex.parse().unwrap();
            assert_eq!(keccak256(&input.0).to_string(), x.keccak256);
        }
    }

    #[test]
    fn sign_and_recover() {
        let k = SecretKey::random();
        for i in 0..20u8 {
            let h = keccak256(&[i]);
            let sig = k.sign_prehash(&h);
            assert_eq!(sig.recover(&h).unwrap(), k.address());
            assert_ne!(sig.recover(&keccak256(&[i, 1])).ok(), Some(k.address()));
        }
    }

    #[test]
    fn high_s_and_bad_v_refused() {
        let k = SecretKey::random();
        let h = keccak256(b"msg");
        let sig = k.sign_prehash(&h);
        // Build the high-S twin: s' = n - s, v' = v ^ 1.
        let ecdsa = EcdsaSignature::from_slice(&sig.0[..64]).unwrap();
        let (r, s) = ecdsa.split_scalars();
        let neg_s = -*s;
        let twin = EcdsaSignature::from_scalars(r.to_bytes(), neg_s.to_bytes()).unwrap();
        let mut high = [0u8; 65];
        high[..64].copy_from_slice(&twin.to_bytes());
        high[64] = sig.0[64] ^ 1;
        assert_eq!(Signature(high).recover(&h), Err(CryptoError::HighS));
        let mut bad_v = sig;
        bad_v.0[64] = 27;
        assert_eq!(bad_v.recover(&h), Err(CryptoError::InvalidRecoveryId(27)));
        assert_eq!(
            Signature([0u8; 65]).recover(&h),
            Err(CryptoError::MalformedSignature)
        );
    }

    #[test]
    fn domain_prefixes_are_apart_and_keep_their_bytes() {
        for (i, a) in domain::ALL.iter().enumerate() {
            assert!(a.starts_with(b"twinpeg/"));
            for b in &domain::ALL[i + 1..] {
                assert!(
                    !a.starts_with(b) && !b.starts_with(a),
                    "{} and {} overlap",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                );
            }
        }
        // Signatures, genesis hashes and state digests already out there commit to these.
        let bytes: Vec<&str> = domain::ALL
            .iter()
            .map(|d| std::str::from_utf8(d).unwrap())
            .collect();
        assert_eq!(
            bytes,
            [
                "twinpeg/transaction/v1",
                "twinpeg/block-seal/v1",
                "twinpeg/bridge-peer/v1",
                "twinpeg/peg-domain/v1",
                "twinpeg/escrow/v1",
                "twinpeg/withdrawal/v1",
                "twinpeg/state/account",
                "twinpeg/state/peg-id",
                "twinpeg/state/digest",
                "twinpeg/finality/v1",
            ]
        );
    }
}
