//! Primitive types that say what they hold: addresses, hashes, amounts, heights.

use std::fmt;
use std::str::FromStr;

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use sha3::{Digest, Keccak256};

/// A block height.
pub type BlockNumber = u64;
/// A sender's transaction counter.
pub type Nonce = u64;
/// The chain id every signed transaction commits to.
pub type ChainId = u64;
/// A slot index: `unix_time_ms / block_time_ms`.
pub type Slot = u64;
/// Block space a transaction uses: its encoded size in bytes.
pub type Weight = u64;

/// Errors parsing the text form of a primitive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not 0x-prefixed hex of the expected length.
    #[error("expected 0x-prefixed hex of {expected} bytes, got {got:?}")]
    BadHex {
        /// Expected number of bytes.
        expected: usize,
        /// The text given.
        got: String,
    },
    /// A mixed-case address whose EIP-55 checksum does not match.
    #[error("address {0} has a wrong EIP-55 checksum")]
    BadChecksum(String),
    /// Not a decimal amount, or out of range.
    #[error("invalid amount {0:?}: {1}")]
    BadAmount(String, &'static str),
}

fn parse_hex_fixed<const N: usize>(s: &str) -> Result<[u8; N], ParseError> {
    let bad = || ParseError::BadHex {
        expected: N,
        got: s.chars().take(80).collect(),
    };
    let body = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(bad)?;
    if body.len() != N * 2 {
        return Err(bad());
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(body, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// A 20-byte account address: keccak256(uncompressed public key)[12..].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The all-zero address.
    pub const ZERO: Address = Address([0u8; 20]);

    /// EIP-55 mixed-case checksummed hex, `0x`-prefixed.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        // keccak256 directly, not through `crypto`: that module builds on these types.
        let digest: [u8; 32] = Keccak256::digest(lower.as_bytes()).into();
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (digest[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl FromStr for Address {
    type Err = ParseError;
    /// Accepts all-lowercase, all-uppercase, or a mixed case that must be a valid EIP-55 checksum.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bytes = parse_hex_fixed::<20>(s)?;
        let addr = Address(bytes);
        let body = &s[2..];
        let has_lower = body.chars().any(|c| c.is_ascii_lowercase());
        let has_upper = body.chars().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper && addr.to_checksum()[2..] != *body {
            return Err(ParseError::BadChecksum(s.to_string()));
        }
        Ok(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

/// A 32-byte keccak256 hash.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash; never a valid proof of anything.
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// Whether this is the all-zero hash.
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }
}

impl FromStr for Hash {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_hex_fixed::<32>(s).map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

/// An amount of coins in base units (1 coin = 10^18). Every arithmetic step is checked.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode, Debug)]
pub struct Amount(pub u128);

impl Amount {
    /// Zero coins.
    pub const ZERO: Amount = Amount(0);
    /// Base units in one coin.
    pub const COIN: u128 = 1_000_000_000_000_000_000;
    /// Decimal places of one coin.
    pub const DECIMALS: usize = 18;

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_add(rhs.0).map(Amount)
    }
    /// `self - rhs`, or `None` below zero.
    pub fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_sub(rhs.0).map(Amount)
    }
    /// `self * n`, or `None` on overflow.
    pub fn checked_mul(self, n: u128) -> Option<Amount> {
        self.0.checked_mul(n).map(Amount)
    }
    /// Whole coins, e.g. `Amount::coins(5)`; saturates at `u128::MAX`.
    pub fn coins(n: u64) -> Amount {
        Amount((n as u128).saturating_mul(Self::COIN))
    }

    /// Parses decimal coins (`"1.5"`) into base units; at most 18 decimals, no sign.
    pub fn parse_coins(s: &str) -> Result<Amount, ParseError> {
        let bad = |why| ParseError::BadAmount(s.to_string(), why);
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("no digits"));
        }
        if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("only digits and one '.' are allowed"));
        }
        if frac.len() > Self::DECIMALS {
            return Err(bad("more than 18 decimal places"));
        }
        let int_v: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("too large"))?
        };
        let mut frac_v: u128 = 0;
        for c in frac
            .chars()
            .chain(std::iter::repeat('0'))
            .take(Self::DECIMALS)
        {
            frac_v = frac_v * 10 + (c as u8 - b'0') as u128;
        }
        int_v
            .checked_mul(Self::COIN)
            .and_then(|v| v.checked_add(frac_v))
            .map(Amount)
            .ok_or_else(|| bad("too large"))
    }

    /// Decimal coins without trailing zeros, e.g. `1.5`.
    pub fn to_coins_string(&self) -> String {
        let int = self.0 / Self::COIN;
        let frac = self.0 % Self::COIN;
        if frac == 0 {
            return int.to_string();
        }
        let frac = format!("{frac:018}");
        format!("{int}.{}", frac.trim_end_matches('0'))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Amount {
    type Err = ParseError;
    /// Base units in decimal, or `0x` hex.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = |why| ParseError::BadAmount(s.to_string(), why);
        if let Some(h) = s.strip_prefix("0x") {
            return u128::from_str_radix(h, 16)
                .map(Amount)
                .map_err(|_| bad("not a u128 hex quantity"));
        }
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("expected base units as decimal digits"));
        }
        s.parse::<u128>()
            .map(Amount)
            .map_err(|_| bad("larger than u128"))
    }
}

/// Raw bytes, `0x`-hex in JSON.
#[derive(Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl FromStr for Bytes {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let body = s.strip_prefix("0x").ok_or_else(|| ParseError::BadHex {
            expected: 0,
            got: s.chars().take(80).collect(),
        })?;
        hex::decode(body)
            .map(Bytes)
            .map_err(|_| ParseError::BadHex {
                expected: body.len() / 2,
                got: s.chars().take(80).collect(),
            })
    }
}

macro_rules! serde_via_str {
    ($t:ty, $fmt:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                #[allow(clippy::redundant_closure_call)]
                s.serialize_str(&($fmt)(self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_str!(Address, |a: &Address| a.to_checksum());
serde_via_str!(Hash, |h: &Hash| h.to_string());
serde_via_str!(Amount, |a: &Amount| a.0.to_string());
serde_via_str!(Bytes, |b: &Bytes| format!("0x{}", hex::encode(&b.0)));

/// Lowercase `0x` hex without leading zeros, as Ethereum JSON-RPC quantities are written.
pub fn to_quantity(v: u128) -> String {
    format!("0x{v:x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use parity_scale_codec::DecodeAll;

    #[test]
    fn eip55_vectors() {
        // From ../shared/vectors/eip55.json (eth-utils), copied here.
        let vectors = include_str!("../testdata/eip55.json");
        let list: Vec<std::collections::BTreeMap<String, String>> =
            serde_json::from_str(vectors).expect("vector file parses");
        assert!(list.len() >= 4);
        for v in list {
            let (lower, checksummed) = (&v["lower"], &v["checksummed"]);
            let a: Address = lower.parse().expect("lowercase parses");
            assert_eq!(&a.to_checksum(), checksummed);
            assert_eq!(
                checksummed.parse::<Address>().expect("checksummed parses"),
                a
            );
        }
    }

    #[test]
    fn bad_checksum_refused() {
        let good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        let bad = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert!(good.parse::<Address>().is_ok());
        assert!(matches!(
            bad.parse::<Address>(),
            Err(ParseError::BadChecksum(_))
        ));
        assert!("0x1234".parse::<Address>().is_err());
        assert!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
            .parse::<Address>()
            .is_err());
    }

    #[test]
    fn amount_parsing() {
        assert_eq!(
            Amount::parse_coins("1.5").unwrap(),
            Amount(15 * Amount::COIN / 10)
        );
        assert_eq!(
            Amount::parse_coins("0.000000000000000001").unwrap(),
            Amount(1)
        );
        assert_eq!(Amount::parse_coins("42").unwrap(), Amount::coins(42));
        assert_eq!(Amount::parse_coins(".5").unwrap(), Amount(Amount::COIN / 2));
        assert!(Amount::parse_coins("0.0000000000000000001").is_err());
        assert!(Amount::parse_coins("-1").is_err());
        assert!(Amount::parse_coins("1e5").is_err());
        assert!(Amount::parse_coins("").is_err());
        assert!(Amount::parse_coins(".").is_err());
        assert!(Amount::parse_coins("1.2.3").is_err());
        assert!(Amount::parse_coins("340282366920938463464").is_err());
        assert_eq!(Amount(15 * Amount::COIN / 10).to_coins_string(), "1.5");
        assert_eq!(Amount::coins(3).to_coins_string(), "3");
        assert!("340282366920938463463374607431768211456"
            .parse::<Amount>()
            .is_err());
        assert_eq!("0x10".parse::<Amount>().unwrap(), Amount(16));
    }

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), None);
        assert_eq!(Amount(0).checked_sub(Amount(1)), None);
        assert_eq!(Amount(u128::MAX).checked_mul(2), None);
    }

    #[test]
    fn scale_and_json_round_trips() {
        let a: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        assert_eq!(Address::decode_all(&mut &a.encode()[..]).unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\"");
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
        let amt = Amount(u128::MAX);
        assert_eq!(
            serde_json::from_str::<Amount>(&serde_json::to_string(&amt).unwrap()).unwrap(),
            amt
        );
        let h = crate::crypto::keccak256(b"x");
        assert_eq!(
            serde_json::from_str::<Hash>(&serde_json::to_string(&h).unwrap()).unwrap(),
            h
        );
        assert_eq!(to_quantity(0), "0x0");
        assert_eq!(to_quantity(31337), "0x7a69");
    }
}
