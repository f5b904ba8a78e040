//! Ethereum-format value transfers: legacy EIP-155 (type 0) and EIP-1559 (type 2) transactions,
//! as `cast`, web3.py, viem and MetaMask sign them.
//!
//! Such a transaction is held like any other, as a [`SignedTransaction`] (SCALE on the wire
//! and on disk), with an Ethereum fee form ([`Fee::EthLegacy`], [`Fee::EthDynamic`]) and a
//! [`TxKind::Transfer`]. Its signature and hash are Ethereum's: the signature covers the RLP
//! signing payload and the hash is keccak256 of the raw signed RLP, so every tool finds its
//! receipt. Decoding is strict (canonical RLP only, re-encoded and compared), so the RLP can be
//! rebuilt from the held fields byte for byte.

use alloy_rlp::{Decodable, Encodable, Header};

use crate::crypto::{keccak256, Signature};
use crate::tx::{Fee, SignedTransaction, Transaction, TxKind};
use crate::types::{Address, Amount, ChainId, Hash, Nonce};

/// Gas a plain value transfer uses, as on Ethereum.
pub const TRANSFER_GAS: u64 = 21_000;

/// The weight an Ethereum-format transfer is priced at: at least its SCALE size (160 bytes at
/// most: every field at its widest). Per-gas prices are per-weight prices / 125 (rounded up),
/// so an Ethereum transfer pays at least what a native one of its size pays.
pub const TRANSFER_WEIGHT: u64 = 168;

/// Gas per unit of weight: 21000 gas is [`TRANSFER_WEIGHT`] exactly, so a block's gas is its
/// weight x 125 and a native transaction of weight w uses 125 w gas.
pub const GAS_PER_WEIGHT: u64 = TRANSFER_GAS / TRANSFER_WEIGHT;

/// The EIP-2718 type byte of an EIP-1559 transaction.
const EIP1559_TYPE: u8 = 0x02;

/// A per-weight price as a per-gas price (rounded up).
pub fn per_gas(per_weight: Amount) -> Amount {
    Amount(per_weight.0.div_ceil(GAS_PER_WEIGHT as u128))
}

/// Why bytes are not an Ethereum value transfer this chain takes.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EthTxError {
    /// Not canonical RLP of a transaction, or trailing bytes.
    #[error("malformed Ethereum transaction: {0}")]
    Malformed(String),
    /// A type other than legacy (0) and EIP-1559 (2).
    #[error("transaction type {0} is not supported (only legacy and EIP-1559 value transfers)")]
    UnsupportedType(u8),
    /// `v` of 27/28: no chain id, so replayable on any chain.
    #[error("only replay-protected (EIP-155) transactions are accepted")]
    NotReplayProtected,
    /// No recipient: a contract creation.
    #[error("contract creation is not supported: set `to`")]
    ContractCreation,
    /// Non-empty `data` (contract calls are not supported).
    #[error("transaction data is not supported: send a plain value transfer")]
    HasData,
    /// Non-empty access list.
    #[error("access lists are not supported")]
    HasAccessList,
    /// r or s out of range.
    #[error("bad signature values")]
    BadSignature,
}

fn malformed(e: alloy_rlp::Error) -> EthTxError {
    EthTxError::Malformed(e.to_string())
}

/// A 256-bit integer as canonical RLP bytes (no leading zeros), left-padded to 32 bytes.
fn decode_u256(buf: &mut &[u8]) -> Result<[u8; 32], EthTxError> {
    let bytes = Header::decode_bytes(buf, false).map_err(malformed)?;
    if bytes.len() > 32 {
        return Err(EthTxError::BadSignature);
    }
    if bytes.first() == Some(&0) {
        return Err(EthTxError::Malformed("leading zero in an integer".into()));
    }
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(bytes);
    Ok(out)
}

fn trim(v: &[u8; 32]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(32);
    &v[start..]
}

fn encode_u256(v: &[u8; 32], out: &mut Vec<u8>) {
    trim(v).encode(out);
}

fn decode_to(buf: &mut &[u8]) -> Result<Address, EthTxError> {
    let bytes = Header::decode_bytes(buf, false).map_err(malformed)?;
    match bytes.len() {
        0 => Err(EthTxError::ContractCreation),
        20 => {
            let mut a = [0u8; 20];
            a.copy_from_slice(bytes);
            Ok(Address(a))
        }
        n => Err(EthTxError::Malformed(format!("`to` of {n} bytes"))),
    }
}

fn decode_empty_data(buf: &mut &[u8]) -> Result<(), EthTxError> {
    let bytes = Header::decode_bytes(buf, false).map_err(malformed)?;
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(EthTxError::HasData)
    }
}

fn decode_empty_access_list(buf: &mut &[u8]) -> Result<(), EthTxError> {
    let items = Header::decode_bytes(buf, true).map_err(malformed)?;
    if items.is_empty() {
        Ok(())
    } else {
        Err(EthTxError::HasAccessList)
    }
}

fn field<T: Decodable>(buf: &mut &[u8]) -> Result<T, EthTxError> {
    T::decode(buf).map_err(malformed)
}

/// The list payload of `raw` (all of it, nothing after).
fn list_payload(raw: &[u8]) -> Result<&[u8], EthTxError> {
    let mut buf = raw;
    let payload = Header::decode_bytes(&mut buf, true).map_err(malformed)?;
    if !buf.is_empty() {
        return Err(EthTxError::Malformed("trailing bytes".into()));
    }
    Ok(payload)
}

fn signature(r: [u8; 32], s: [u8; 32], parity: u8) -> Signature {
    let mut sig = [0u8; 65];
    sig[..32].copy_from_slice(&r);
    sig[32..64].copy_from_slice(&s);
    sig[64] = parity;
    Signature(sig)
}

/// Decodes a raw signed Ethereum transaction (what `eth_sendRawTransaction` carries) into the
/// transaction it holds. The signature is not checked here: [`SignedTransaction::recover`]
/// does that, as for every transaction.
pub fn decode_raw(raw: &[u8]) -> Result<SignedTransaction, EthTxError> {
    let first = *raw
        .first()
        .ok_or_else(|| EthTxError::Malformed("empty".into()))?;
    let signed = if first >= 0xc0 {
        decode_legacy(raw)?
    } else if first == EIP1559_TYPE {
        decode_eip1559(&raw[1..])?
    } else if first <= 0x7f {
        return Err(EthTxError::UnsupportedType(first));
    } else {
        return Err(EthTxError::Malformed(
            "not an RLP list or a typed envelope".into(),
        ));
    };
    // Canonical RLP only: what is held must rebuild these exact bytes (and so this hash).
    if encode_signed(&signed).as_deref() != Some(raw) {
        return Err(EthTxError::Malformed("non-canonical encoding".into()));
    }
    Ok(signed)
}

/// The signature's r and s, the last fields of both types: nothing may follow them.
fn decode_rs_and_end(p: &mut &[u8]) -> Result<([u8; 32], [u8; 32]), EthTxError> {
    let r = decode_u256(p)?;
    let s = decode_u256(p)?;
    if !p.is_empty() {
        return Err(EthTxError::Malformed("extra fields".into()));
    }
    Ok((r, s))
}

/// The value transfer both types decode to.
fn transfer(
    chain_id: ChainId,
    nonce: Nonce,
    fee: Fee,
    to: Address,
    value: u128,
    signature: Signature,
) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id,
            nonce,
            fee,
            kind: TxKind::Transfer {
                to,
                amount: Amount(value),
            },
        },
        signature,
    }
}

fn decode_legacy(raw: &[u8]) -> Result<SignedTransaction, EthTxError> {
    let mut p = list_payload(raw)?;
    let nonce: u64 = field(&mut p)?;
    let gas_price: u128 = field(&mut p)?;
    let gas_limit: u64 = field(&mut p)?;
    let to = decode_to(&mut p)?;
    let value: u128 = field(&mut p)?;
    decode_empty_data(&mut p)?;
    let v: u64 = field(&mut p)?;
    let (r, s) = decode_rs_and_end(&mut p)?;
    if v == 27 || v == 28 {
        return Err(EthTxError::NotReplayProtected);
    }
    if v < 35 {
        return Err(EthTxError::Malformed(format!("v = {v}")));
    }
    let chain_id = (v - 35) / 2;
    let parity = ((v - 35) % 2) as u8;
    let fee = Fee::EthLegacy {
        gas_price: Amount(gas_price),
        gas_limit,
    };
    Ok(transfer(
        chain_id,
        nonce,
        fee,
        to,
        value,
        signature(r, s, parity),
    ))
}

fn decode_eip1559(body: &[u8]) -> Result<SignedTransaction, EthTxError> {
    let mut p = list_payload(body)?;
    let chain_id: u64 = field(&mut p)?;
    let nonce: u64 = field(&mut p)?;
    let max_priority: u128 = field(&mut p)?;
    let max_fee: u128 = field(&mut p)?;
    let gas_limit: u64 = field(&mut p)?;
    let to = decode_to(&mut p)?;
    let value: u128 = field(&mut p)?;
    decode_empty_data(&mut p)?;
    decode_empty_access_list(&mut p)?;
    let parity: u8 = field(&mut p)?;
    let (r, s) = decode_rs_and_end(&mut p)?;
    if parity > 1 {
        return Err(EthTxError::Malformed(format!("y parity {parity}")));
    }
    let fee = Fee::EthDynamic {
        max_fee_per_gas: Amount(max_fee),
        max_priority_fee_per_gas: Amount(max_priority),
        gas_limit,
    };
    Ok(transfer(
        chain_id,
        nonce,
        fee,
        to,
        value,
        signature(r, s, parity),
    ))
}

/// The fields every Ethereum-format transaction here has.
struct Fields<'a> {
    chain_id: ChainId,
    nonce: Nonce,
    fee: &'a Fee,
    to: &'a Address,
    value: u128,
}

fn fields(tx: &Transaction) -> Option<Fields<'_>> {
    let TxKind::Transfer { to, amount } = &tx.kind else {
        return None;
    };
    matches!(tx.fee, Fee::EthLegacy { .. } | Fee::EthDynamic { .. }).then_some(Fields {
        chain_id: tx.chain_id,
        nonce: tx.nonce,
        fee: &tx.fee,
        to,
        value: amount.0,
    })
}

/// Encodes the list of `items` (each already RLP) with its header.
fn list(items: &[u8], out: &mut Vec<u8>) {
    Header {
        list: true,
        payload_length: items.len(),
    }
    .encode(out);
    out.extend_from_slice(items);
}

/// The common fields, in each type's order, up to and including the empty data (and access
/// list for type 2).
fn body(f: &Fields<'_>, out: &mut Vec<u8>) {
    let empty: &[u8] = &[];
    match f.fee {
        Fee::EthLegacy {
            gas_price,
            gas_limit,
        } => {
            f.nonce.encode(out);
            gas_price.0.encode(out);
            gas_limit.encode(out);
            f.to.0.encode(out);
            f.value.encode(out);
            empty.encode(out);
        }
        Fee::EthDynamic {
            max_fee_per_gas,
            max_priority_fee_per_gas,
            gas_limit,
        } => {
            f.chain_id.encode(out);
            f.nonce.encode(out);
            max_priority_fee_per_gas.0.encode(out);
            max_fee_per_gas.0.encode(out);
            gas_limit.encode(out);
            f.to.0.encode(out);
            f.value.encode(out);
            empty.encode(out);
            list(&[], out);
        }
        _ => {}
    }
}

/// What the sender signs: keccak256 of the EIP-155 / EIP-1559 signing payload; `None` for a
/// transaction that is not an Ethereum-format transfer.
pub fn signing_hash(tx: &Transaction) -> Option<Hash> {
    let f = fields(tx)?;
    let mut items = Vec::with_capacity(96);
    body(&f, &mut items);
    let mut out = Vec::with_capacity(items.len() + 4);
    if let Fee::EthLegacy { .. } = f.fee {
        f.chain_id.encode(&mut items);
        0u8.encode(&mut items);
        0u8.encode(&mut items);
    } else {
        out.push(EIP1559_TYPE);
    }
    list(&items, &mut out);
    Some(keccak256(&out))
}

/// The raw signed bytes (what `eth_sendRawTransaction` carried); `None` for a transaction
/// that is not an Ethereum-format transfer.
pub fn encode_signed(signed: &SignedTransaction) -> Option<Vec<u8>> {
    let f = fields(&signed.tx)?;
    let sig = &signed.signature.0;
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..64]);
    let parity = sig[64];
    let mut items = Vec::with_capacity(160);
    body(&f, &mut items);
    let mut out = Vec::with_capacity(items.len() + 8);
    match f.fee {
        Fee::EthLegacy { .. } => {
            let v = f
                .chain_id
                .checked_mul(2)?
                .checked_add(35)?
                .checked_add(parity as u64)?;
            v.encode(&mut items);
        }
        _ => {
            out.push(EIP1559_TYPE);
            parity.encode(&mut items);
        }
    }
    encode_u256(&r, &mut items);
    encode_u256(&s, &mut items);
    list(&items, &mut out);
    Some(out)
}

/// The transaction hash Ethereum tools expect: keccak256 of the raw signed bytes.
pub fn tx_hash(signed: &SignedTransaction) -> Option<Hash> {
    encode_signed(signed).map(|raw| keccak256(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    /// anvil's first dev key.
    fn key() -> SecretKey {
        SecretKey::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
            .expect("key")
    }

    #[test]
    fn per_gas_rounds_up_and_never_undercharges_a_transfer() {
        assert_eq!(per_gas(Amount(0)), Amount(0));
        assert_eq!(per_gas(Amount(1)), Amount(1));
        let rate = Amount(1_000_000_000);
        let g = per_gas(rate);
        assert!(g.0 * TRANSFER_GAS as u128 >= rate.0 * TRANSFER_WEIGHT as u128);
        assert!((g.0 - 1) * (TRANSFER_GAS as u128) < rate.0 * TRANSFER_WEIGHT as u128);
    }

    #[test]
    fn the_widest_transfer_fits_its_priced_weight() {
        use parity_scale_codec::Encode;
        let widest = SignedTransaction {
            tx: Transaction {
                chain_id: u64::MAX,
                nonce: u64::MAX,
                fee: Fee::EthDynamic {
                    max_fee_per_gas: Amount(u128::MAX),
                    max_priority_fee_per_gas: Amount(u128::MAX),
                    gas_limit: u64::MAX,
                },
                kind: TxKind::Transfer {
                    to: Address([0xff; 20]),
                    amount: Amount(u128::MAX),
                },
            },
            signature: Signature([0xff; 65]),
        };
        assert!(widest.encode().len() as u64 <= TRANSFER_WEIGHT);
    }

    #[test]
    fn signing_and_decoding_round_trip_both_types() {
        for fee in [
            Fee::EthLegacy {
                gas_price: Amount(7_619_048),
                gas_limit: 21_000,
            },
            Fee::EthDynamic {
                max_fee_per_gas: Amount(2_000_000_000),
                max_priority_fee_per_gas: Amount(1),
                gas_limit: 31_500,
            },
        ] {
            let signed = Transaction {
                chain_id: 31337,
                nonce: 5,
                fee,
                kind: TxKind::Transfer {
                    to: Address([7; 20]),
                    amount: Amount(10u128.pow(18)),
                },
            }
            .sign(&key());
            let raw = encode_signed(&signed).expect("eth form");
            let back = decode_raw(&raw).expect("decode");
            assert_eq!(back, signed);
            let rec = back.recover().expect("recover");
            assert_eq!(rec.sender(), key().address());
            assert_eq!(rec.hash(), keccak256(&raw));
        }
    }

    /// Made by `cast mktx` (foundry 1.7.1) with anvil's first dev key, chain 31337, nonce 5,
    /// to 0x0707..07, value 1 ether: `--legacy --gas-limit 21000 --gas-price 7619048`, and
    /// `--gas-limit 31500 --gas-price 2000000000 --priority-gas-price 1`.
    const CAST_LEGACY: &str = "f86c05837441e8825208940707070707070707070707070707070707070707880de0b6b3a76400008082f4f5a0c76d136c3a58746c6f223bf6170e6e9075bac22f41537c548cfd2766a9a6a0a3a06a851e54a364fc90a3f76465a83378c9914333278e3d3584b744b62c7606fd9e";
    const CAST_1559: &str = "02f870827a6905018477359400827b0c940707070707070707070707070707070707070707880de0b6b3a764000080c001a0f28733256889b01ca4001ad8a8e952c7b0daad1e1d270caee44e88f61bea283ca00ea8574516f3f037051470e7a7db50da534250b56e77b37a590c33d8a0c7f68b";

    #[test]
    fn transactions_signed_by_cast_decode_recover_and_re_sign_byte_for_byte() {
        for (raw, fee) in [
            (
                CAST_LEGACY,
                Fee::EthLegacy {
                    gas_price: Amount(7_619_048),
                    gas_limit: 21_000,
                },
            ),
            (
                CAST_1559,
                Fee::EthDynamic {
                    max_fee_per_gas: Amount(2_000_000_000),
                    max_priority_fee_per_gas: Amount(1),
                    gas_limit: 31_500,
                },
            ),
        ] {
            let raw = hex::decode(raw).expect("hex");
            let signed = decode_raw(&raw).expect("decode");
            let expected = Transaction {
                chain_id: 31337,
                nonce: 5,
                fee,
                kind: TxKind::Transfer {
                    to: Address([7; 20]),
                    amount: Amount(10u128.pow(18)),
                },
            };
            assert_eq!(signed.tx, expected);
            let rec = signed.clone().recover().expect("recover");
            assert_eq!(rec.sender(), key().address());
            assert_eq!(rec.hash(), keccak256(&raw));
            // RFC 6979 on both sides: our signature of the same content is cast's.
            assert_eq!(expected.sign(&key()), signed);
        }
    }

    #[test]
    fn unsupported_and_non_canonical_forms_are_refused() {
        let legacy = hex::decode(CAST_LEGACY).expect("hex");
        // Trailing byte.
        let mut t = legacy.clone();
        t.push(0);
        assert!(matches!(decode_raw(&t), Err(EthTxError::Malformed(_))));
        // Truncated.
        assert!(matches!(
            decode_raw(&legacy[..legacy.len() - 1]),
            Err(EthTxError::Malformed(_))
        ));
        // EIP-2930 (type 1) and other types.
        assert_eq!(
            decode_raw(&[0x01, 0xc0]),
            Err(EthTxError::UnsupportedType(1))
        );
        assert_eq!(
            decode_raw(&[0x03, 0xc0]),
            Err(EthTxError::UnsupportedType(3))
        );
        assert!(decode_raw(&[]).is_err());

        let sign_legacy = |to: &[u8], data: &[u8], v: u64| {
            let mut items = Vec::new();
            5u64.encode(&mut items);
            1u64.encode(&mut items);
            21_000u64.encode(&mut items);
            to.encode(&mut items);
            1u64.encode(&mut items);
            data.encode(&mut items);
            v.encode(&mut items);
            [1u8; 32].as_slice().encode(&mut items);
            [1u8; 32].as_slice().encode(&mut items);
            let mut out = Vec::new();
            list(&items, &mut out);
            out
        };
        // Pre-EIP-155 v.
        assert_eq!(
            decode_raw(&sign_legacy(&[7; 20], &[], 27)),
            Err(EthTxError::NotReplayProtected)
        );
        assert_eq!(
            decode_raw(&sign_legacy(&[7; 20], &[], 28)),
            Err(EthTxError::NotReplayProtected)
        );
        // Contract creation and calldata.
        assert_eq!(
            decode_raw(&sign_legacy(&[], &[], 37)),
            Err(EthTxError::ContractCreation)
        );
        assert_eq!(
            decode_raw(&sign_legacy(&[7; 20], &[0xa9, 0x05], 37)),
            Err(EthTxError::HasData)
        );
        assert!(decode_raw(&sign_legacy(&[7; 20], &[], 37)).is_ok());

        // A type-2 transaction with an access list.
        let raw = hex::decode(CAST_1559).expect("hex");
        let mut p = list_payload(&raw[1..]).expect("list");
        let mut items = Vec::new();
        for _ in 0..8 {
            let start = p;
            let h = Header::decode(&mut p).expect("header");
            let used = start.len() - p.len() + h.payload_length;
            items.extend_from_slice(&start[..used]);
            p = &start[used..];
        }
        let mut entry = Vec::new();
        [7u8; 20].as_slice().encode(&mut entry);
        list(&[], &mut entry);
        let mut al = Vec::new();
        list(&entry, &mut al);
        let mut al_list = Vec::new();
        list(&al, &mut al_list);
        let _ = Header::decode(&mut p).expect("access list");
        items.extend_from_slice(&al_list);
        items.extend_from_slice(p);
        let mut out = vec![EIP1559_TYPE];
        list(&items, &mut out);
        assert_eq!(decode_raw(&out), Err(EthTxError::HasAccessList));

        // A native fee form is no Ethereum transaction, and an Ethereum fee form on a
        // non-transfer does not recover.
        let native = Transaction {
            chain_id: 1,
            nonce: 0,
            fee: Fee::Flat { fee: Amount(1) },
            kind: TxKind::Transfer {
                to: Address([7; 20]),
                amount: Amount(1),
            },
        };
        assert_eq!(signing_hash(&native), None);
        let lock = Transaction {
            fee: Fee::EthLegacy {
                gas_price: Amount(1),
                gas_limit: 21_000,
            },
            kind: TxKind::Lock {
                amount: Amount(1),
                recipient: Address([7; 20]),
            },
            ..native
        };
        assert!(matches!(
            lock.sign(&key()).recover(),
            Err(crate::tx::DecodeTxError::EthereumNotTransfer)
        ));
    }
}
