//! The genesis file: chain id, authorities, parameters and prefunded accounts.

use std::collections::HashSet;
use std::path::Path;

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::block::{receipts_root, tx_root, Block, Header};
use crate::crypto::{keccak256, Signature};
use crate::peg::{PegConfig, PegRole};
use crate::types::{Address, Amount, ChainId, Weight};

/// Errors loading or validating a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("reading genesis file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse.
    #[error("parsing genesis file: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// Fee parameters; each chain accepts one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FeeParams {
    /// mainchain: fee >= min_fee_rate x encoded size, paid to the producer.
    FeeRate {
        /// Base units per byte.
        min_fee_rate: Amount,
    },
    /// sidechain: base fee per unit of weight (burned) plus tip.
    BaseFee {
        /// Base fee of block 1.
        initial_base_fee: Amount,
        /// Lowest base fee.
        min_base_fee: Amount,
    },
}

/// A prefunded account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The address.
    pub address: Address,
    /// Base units, as a decimal string.
    pub balance: Amount,
}

/// The genesis specification; its SCALE encoding is committed to by the genesis block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id every transaction must carry.
    pub chain_id: ChainId,
    /// Slot length in milliseconds; 0 or absent takes the chain's default at `init`.
    #[serde(default)]
    pub block_time_ms: u64,
    /// Genesis timestamp, unix milliseconds; slots before it are never produced.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Block producers, in leader order.
    pub authorities: Vec<Address>,
    /// Weight (bytes) one block may use.
    pub max_block_weight: Weight,
    /// Largest encoded transaction accepted, in bytes.
    pub max_tx_size: u32,
    /// The fee rule's parameters.
    pub fee: FeeParams,
    /// Prefunded accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// The federation and the bridge parameters, if this chain is pegged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peg: Option<crate::peg::PegParams>,
}

impl Genesis {
    /// Reads a genesis TOML file, fills the chain's default block time, and validates it.
    pub fn load(path: &Path, default_block_time_ms: u64) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut g: Genesis = toml::from_str(&text)?;
        if g.block_time_ms == 0 {
            g.block_time_ms = default_block_time_ms;
        }
        g.validate()?;
        Ok(g)
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.chain_id == 0 {
            return bad("chain_id must not be 0".into());
        }
        if self.block_time_ms < 50 {
            return bad(format!("block_time_ms {} is below 50", self.block_time_ms));
        }
        if self.authorities.is_empty() {
            return bad("at least one authority is required".into());
        }
        let mut seen = HashSet::new();
        for a in &self.authorities {
            if *a == Address::ZERO || !seen.insert(*a) {
                return bad(format!("authority {a} is zero or listed twice"));
            }
        }
        if self.max_tx_size < 128 || self.max_block_weight < self.max_tx_size as u64 {
            return bad(format!(
                "max_tx_size {} must be >= 128 and <= max_block_weight {}",
                self.max_tx_size, self.max_block_weight
            ));
        }
        if let Some(p) = &self.peg {
            p.validate().map_err(GenesisError::Invalid)?;
            p.check_payout_fits(self.max_tx_size)
                .map_err(GenesisError::Invalid)?;
            if p.counterpart_genesis.is_zero() {
                return bad(
                    "peg.counterpart_genesis must name the other chain's base genesis hash".into(),
                );
            }
        }
        let mut seen = HashSet::new();
        let mut total = Amount::ZERO;
        for acct in &self.accounts {
            if acct.address == crate::peg::escrow_address() {
                return bad("the escrow cannot be prefunded".into());
            }
            if !seen.insert(acct.address) {
                return bad(format!("account {} listed twice", acct.address));
            }
            total = total
                .checked_add(acct.balance)
                .ok_or_else(|| GenesisError::Invalid("total supply overflows u128".into()))?;
        }
        Ok(())
    }

    /// The peg as the `role` end of it sees it, if this genesis has a peg section. Checked
    /// at start too, not only at `init`: a data dir made by an older version may hold a
    /// genesis whose transactions cannot carry a payout.
    pub fn peg_config(&self, role: PegRole) -> Result<Option<PegConfig>, GenesisError> {
        let Some(params) = &self.peg else {
            return Ok(None);
        };
        let supply = self
            .accounts
            .iter()
            .fold(Amount::ZERO, |s, a| Amount(s.0.saturating_add(a.balance.0)));
        PegConfig::for_chain(role, params, self.base_hash(), self.max_tx_size, supply)
            .map(Some)
            .map_err(GenesisError::Invalid)
    }

    /// The hash the peg domain binds: the genesis block hash with `peg.counterpart_genesis`
    /// zeroed, so each chain's genesis can name the other's without a cycle.
    pub fn base_hash(&self) -> crate::types::Hash {
        let mut g = self.clone();
        if let Some(p) = &mut g.peg {
            p.counterpart_genesis = crate::types::Hash::ZERO;
        }
        g.block().hash()
    }

    /// The genesis block: commits to the whole specification through its state root.
    pub fn block(&self) -> Block {
        Block {
            header: Header {
                parent_hash: crate::types::Hash::ZERO,
                number: 0,
                slot: self.timestamp_ms / self.block_time_ms,
                timestamp_ms: self.timestamp_ms,
                author: Address::ZERO,
                tx_root: tx_root([]),
                receipts_root: receipts_root(&[]),
                state_root: keccak256(&self.encode()),
                base_fee: Amount::ZERO,
                weight_used: 0,
            },
            seal: Signature([0u8; 65]),
            transactions: vec![],
        }
    }
}

/// Makes two genesis files name each other: sets each one's `peg.counterpart_genesis` to
/// the other's base hash. Both must already carry the same peg parameters.
pub fn link_geneses(main: &mut Genesis, side: &mut Genesis) {
    let main_base = main.base_hash();
    let side_base = side.base_hash();
    if let Some(p) = &mut main.peg {
        p.counterpart_genesis = side_base;
    }
    if let Some(p) = &mut side.peg {
        p.counterpart_genesis = main_base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
chain_id = 1001
block_time_ms = 6000
authorities = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]
max_block_weight = 8000000
max_tx_size = 16384

[fee]
rule = "fee-rate"
min_fee_rate = "1000"

[[accounts]]
address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
balance = "1000000000000000000000"
"#;

    #[test]
    fn parses_validates_and_commits() {
        let g: Genesis = toml::from_str(SAMPLE).unwrap();
        g.validate().unwrap();
        assert_eq!(g.accounts.len(), 1);
        let mut other = g.clone();
        other.chain_id = 1002;
        assert_ne!(g.block().hash(), other.block().hash());
        let dup = SAMPLE.replace(
            "max_tx_size = 16384",
            "max_tx_size = 16384\nunknown_key = 1",
        );
        assert!(toml::from_str::<Genesis>(&dup).is_err());
        let mut zero = g.clone();
        zero.authorities.push(Address::ZERO);
        assert!(zero.validate().is_err());
    }

    #[test]
    fn a_pegged_genesis_whose_transactions_cannot_hold_a_payout_is_refused() {
        let mut g: Genesis = toml::from_str(SAMPLE).unwrap();
        let members: Vec<Address> = (1..=7u8).map(|i| Address([i; 20])).collect();
        let mut peg = crate::testing::peg_params(members, 5);
        peg.counterpart_genesis = crate::types::Hash([1; 32]);
        g.peg = Some(peg);
        g.validate().expect("16 KiB holds 5 signatures");
        // A peg that names no counterpart (the zero hash) binds no domain: refused.
        let mut unbound = g.clone();
        if let Some(p) = unbound.peg.as_mut() {
            p.counterpart_genesis = crate::types::Hash::ZERO;
        }
        let e = unbound.validate().expect_err("zero counterpart");
        assert!(e.to_string().contains("counterpart_genesis"), "{e}");
        // A payout carries 5 signatures of 65 bytes: 300 bytes cannot hold it.
        g.max_tx_size = 300;
        let e = g.validate().expect_err("too small for a payout");
        assert!(e.to_string().contains("payout"), "{e}");
    }
}
