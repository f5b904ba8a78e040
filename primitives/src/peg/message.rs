//! What the federation signs: the peg message, the domain it binds, and the escrow it
//! speaks for.

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::crypto::{domain as prefix, keccak256, keccak256_parts};
use crate::types::{Address, Amount, Hash};

/// Which way coins cross.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Deposit: locked on main, minted on side.
    #[codec(index = 0)]
    MainToSide,
    /// Withdrawal: burned on side, released on main.
    #[codec(index = 1)]
    SideToMain,
}

/// What members sign: `keccak256(SCALE(self))` is the attestation prehash.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct PegMessage {
    /// Binds both chains' genesis: see [`domain`].
    pub domain: Hash,
    /// Deposit or withdrawal.
    pub direction: Direction,
    /// The source transaction's hash (the Lock or Burn).
    pub id: Hash,
    /// Who is paid on the destination chain.
    pub recipient: Address,
    /// Base units paid to the recipient.
    pub amount: Amount,
}

impl PegMessage {
    /// The prehash members sign.
    pub fn signing_hash(&self) -> Hash {
        keccak256(&self.encode())
    }
}

/// The peg domain: keccak256([`prefix::PEG`] || main base genesis hash || side base genesis
/// hash). A signature for one bridge or chain pair is worthless for any other.
pub fn domain(main_base_genesis: &Hash, side_base_genesis: &Hash) -> Hash {
    keccak256_parts(&[prefix::PEG, &main_base_genesis.0, &side_base_genesis.0])
}

/// The mainchain escrow: an address no key controls (no known preimage of its key hash). A
/// value transfer to it is a deposit for its sender.
pub fn escrow_address() -> Address {
    address_from(prefix::ESCROW)
}

/// The sidechain withdrawal address, which no key controls: a value transfer to it is a
/// withdrawal to its sender on the mainchain.
pub fn withdrawal_address() -> Address {
    address_from(prefix::WITHDRAWAL)
}

fn address_from(preimage: &[u8]) -> Address {
    let h = keccak256(preimage);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_and_the_escrow_keep_their_bytes() {
        // Both are committed to by signatures and genesis files already out there.
        let expected = keccak256(&[&b"twinpeg/peg-domain/v1"[..], &[1; 32], &[2; 32]].concat());
        assert_eq!(domain(&Hash([1; 32]), &Hash([2; 32])), expected);
        let h = keccak256(b"twinpeg/escrow/v1");
        assert_eq!(escrow_address().0[..], h.0[12..]);
        assert_ne!(escrow_address(), Address::ZERO);
    }
}
