//! The fuzz targets: one function per decoder of bytes that come from outside a process
//! (peers, RPC clients, files an operator writes). `cargo fuzz` runs them (`fuzz/`, `make
//! fuzz`); `make test` replays each target's seeds and a fixed batch of mutations of them
//! through the same functions, so the targets are exercised even without nightly.
//!
//! A target fails by panicking. Each must never panic on any input; where the format has one
//! encoding (SCALE), whatever decodes must re-encode to exactly the bytes it came from, or one
//! transaction or block could travel under two encodings (and so two hashes).

use parity_scale_codec::{Decode, DecodeAll, Encode};

fn hex_seed(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_default()
}

/// A fuzz target: takes any bytes, panics on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name `cargo fuzz run <name>` and the corpus directory use.
pub const TARGETS: &[(&str, Target)] = &[
    ("signed_tx", signed_tx),
    ("eth_raw_tx", eth_raw_tx),
    ("tx_batch", tx_batch),
    ("block", block),
    ("finality_envelope", finality_envelope),
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("attestation_gossip", attestation_gossip),
    ("peer_binding", peer_binding),
    ("keystore_json", keystore_json),
    ("node_config", node_config),
    ("member_config", member_config),
    ("rpc_params", rpc_params),
];

/// Decodes `data` as exactly one `T`; if it does, the encoding must give `data` back.
fn scale<T: Decode + Encode>(data: &[u8]) -> Option<T> {
    let v = T::decode_all(&mut &data[..]).ok()?;
    assert!(
        v.encode() == data,
        "{} decoded from bytes it does not re-encode to",
        std::any::type_name::<T>()
    );
    Some(v)
}

/// A transaction as RPC and gossip take it: size-checked decode, then sender recovery.
pub fn signed_tx(data: &[u8]) {
    if scale::<primitives::tx::SignedTransaction>(data).is_some() {
        let _ = primitives::tx::SignedTransaction::decode_and_recover(data, 16 * 1024);
    }
}

/// A raw Ethereum transaction as `eth_sendRawTransaction` takes it: what decodes must rebuild
/// exactly these bytes (its hash is theirs) and travel under one SCALE encoding.
pub fn eth_raw_tx(data: &[u8]) {
    if let Ok(signed) = primitives::eth::decode_raw(data) {
        assert_eq!(
            primitives::eth::encode_signed(&signed).as_deref(),
            Some(data),
            "an Ethereum transaction decoded from bytes it does not re-encode to"
        );
        let held = signed.encode();
        assert_eq!(
            scale::<primitives::tx::SignedTransaction>(&held),
            Some(signed.clone())
        );
        if let Ok(r) = signed.recover() {
            assert_eq!(r.hash(), primitives::crypto::keccak256(data));
        }
    }
}

/// A gossiped batch of transactions.
pub fn tx_batch(data: &[u8]) {
    scale::<Vec<primitives::tx::SignedTransaction>>(data);
}

/// A gossiped or synced block; its hashes are computed as import would.
pub fn block(data: &[u8]) {
    if let Some(b) = scale::<primitives::block::Block>(data) {
        let _ = (b.header.hash(), b.header.seal_hash());
    }
}

/// A finality gossip message (proposal, vote or commit in its envelope).
pub fn finality_envelope(data: &[u8]) {
    scale::<finality::Envelope>(data);
}

/// A sync request from a peer.
pub fn sync_request(data: &[u8]) {
    scale::<chain::network::codec::SyncRequest>(data);
}

/// A sync answer from a peer.
pub fn sync_response(data: &[u8]) {
    scale::<chain::network::codec::SyncResponse>(data);
}

/// A bridge member's attestation bundle from the gossip.
pub fn attestation_gossip(data: &[u8]) {
    scale::<bridge::attest::AttestationGossip>(data);
}

/// A bridge member's peer binding (its member key vouching for its peer id).
pub fn peer_binding(data: &[u8]) {
    scale::<bridge::binding::PeerBinding>(data);
}

/// A v3 key file (parsed only: decrypting runs scrypt at the file's own cost, which the
/// keystore bounds before it starts; fuzzing that would only measure scrypt).
pub fn keystore_json(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(f) = keystore::KeyFile::from_json(text) {
            let _ = f.claimed_address();
        }
    }
}

/// A node's TOML config, then its validation.
pub fn node_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = toml::from_str::<chain::config::NodeConfig>(text) {
            let _ = c.validate();
        }
    }
}

/// A bridge member's TOML config, then its validation.
pub fn member_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = toml::from_str::<bridge::config::MemberConfig>(text) {
            let _ = c.validate();
        }
    }
}

/// JSON-RPC parameters as the server's types read them (hex addresses, hashes, byte strings,
/// amounts); whatever parses must print to something that parses back to the same value.
pub fn rpc_params(data: &[u8]) {
    use primitives::types::{Address, Amount, Bytes, Hash};
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    fn again<T>(v: &serde_json::Value)
    where
        T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
    {
        if let Ok(x) = serde_json::from_value::<T>(v.clone()) {
            let printed = serde_json::to_value(&x).expect("a parsed value prints");
            let back: T = serde_json::from_value(printed).expect("what it prints parses");
            assert_eq!(back, x);
        }
    }
    let items: Vec<serde_json::Value> = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    for item in &items {
        again::<Address>(item);
        again::<Hash>(item);
        again::<Bytes>(item);
        again::<Amount>(item);
        again::<Vec<Bytes>>(item);
    }
}

/// Seeds every target starts from: valid inputs, so mutations reach past the first byte.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use primitives::crypto::SecretKey;
    use primitives::tx::{Fee, Transaction, TxKind};
    use primitives::types::{Address, Amount};
    let key =
        SecretKey::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
            .expect("development key 0");
    let tx = |nonce| {
        Transaction {
            chain_id: 2002,
            nonce,
            fee: Fee::Flat {
                fee: Amount(400_000),
            },
            kind: TxKind::Transfer {
                to: Address([7; 20]),
                amount: Amount::coins(1),
            },
        }
        .sign(&key)
    };
    let block = primitives::block::Block {
        header: primitives::block::Header {
            parent_hash: primitives::types::Hash([1; 32]),
            number: 7,
            slot: 9,
            timestamp_ms: 1_700_000_000_000,
            author: key.address(),
            tx_root: primitives::types::Hash([2; 32]),
            receipts_root: primitives::types::Hash([3; 32]),
            state_root: primitives::types::Hash([4; 32]),
            base_fee: Amount(1000),
            weight_used: 21_000,
        },
        seal: tx(0).signature,
        transactions: vec![tx(0), tx(1)],
    };
    match target {
        "signed_tx" => vec![tx(0).encode(), tx(u64::MAX).encode()],
        "eth_raw_tx" => vec![
            // cast 1.7.1 `mktx`, legacy and EIP-1559 (primitives::eth's test vectors).
            hex_seed("f86c05837441e8825208940707070707070707070707070707070707070707880de0b6b3a76400008082f4f5a0c76d136c3a58746c6f223bf6170e6e9075bac22f41537c548cfd2766a9a6a0a3a06a851e54a364fc90a3f76465a83378c9914333278e3d3584b744b62c7606fd9e"),
            hex_seed("02f870827a6905018477359400827b0c940707070707070707070707070707070707070707880de0b6b3a764000080c001a0f28733256889b01ca4001ad8a8e952c7b0daad1e1d270caee44e88f61bea283ca00ea8574516f3f037051470e7a7db50da534250b56e77b37a590c33d8a0c7f68b"),
        ],
        "tx_batch" => vec![vec![tx(0), tx(1), tx(2)].encode(), Vec::<u8>::new().encode()],
        "block" => vec![block.encode()],
        "sync_request" => vec![chain::network::codec::SyncRequest {
            locator: vec![primitives::types::Hash([5; 32]); 3],
            max_blocks: 64,
        }
        .encode()],
        "sync_response" => vec![chain::network::codec::SyncResponse {
            head: 9,
            blocks: vec![block],
        }
        .encode()],
        "keystore_json" => vec![br#"{"version":3,"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","address":"f39fd6e51aad88f6f4ce6ab8827279cfffb92266","crypto":{"cipher":"aes-128-ctr","ciphertext":"00","cipherparams":{"iv":"00"},"kdf":"scrypt","kdfparams":{"dklen":32,"n":2,"p":1,"r":8,"salt":"00"},"mac":"00"}}"#.to_vec()],
        // The documented example files: every key, as operators write them.
        "node_config" => vec![
            include_bytes!("../../deploy/mainchain-node.toml").to_vec(),
            include_bytes!("../../deploy/sidechain-node.toml").to_vec(),
        ],
        "member_config" => vec![include_bytes!("../../deploy/member.toml").to_vec()],
        "rpc_params" => vec![
            br#"["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x00", "1000"]"#.to_vec(),
            br#"["0x0000000000000000000000000000000000000000000000000000000000000001"]"#.to_vec(),
        ],
        _ => Vec::new(),
    }
}

/// A small deterministic mutator (xorshift): bit flips, byte sets, truncations, insertions
/// and splices of a seed. Enough for `make test` to reach past the seeds without nightly.
pub fn mutations(seed: &[u8], count: usize, mut state: u64) -> Vec<Vec<u8>> {
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut m = seed.to_vec();
        for _ in 0..1 + next() % 4 {
            let len = m.len().max(1);
            let at = (next() as usize) % len;
            let at_byte = at % len;
            match next() % 5 {
                0 if !m.is_empty() => m[at_byte] ^= 1 << (next() % 8),
                1 if !m.is_empty() => m[at_byte] = next() as u8,
                2 => m.truncate(at),
                3 => m.insert(at.min(m.len()), next() as u8),
                _ => {
                    let extra: Vec<u8> = (0..next() % 8).map(|_| next() as u8).collect();
                    let at = at.min(m.len());
                    m.splice(at..at, extra);
                }
            }
        }
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .collect()
    }

    #[test]
    fn every_target_survives_its_seeds_the_corpus_and_their_mutations() {
        for (i, (name, target)) in TARGETS.iter().enumerate() {
            let mut inputs = seeds(name);
            inputs.extend(corpus(name));
            inputs.push(Vec::new());
            let mut all = inputs.clone();
            for (j, s) in inputs.iter().enumerate() {
                all.extend(mutations(
                    s,
                    2_000,
                    0x9E37_79B9_7F4A_7C15 ^ ((i * 131 + j) as u64),
                ));
            }
            for input in &all {
                target(input);
            }
        }
    }

    #[test]
    fn the_seeds_are_valid_inputs() {
        use primitives::tx::SignedTransaction;
        for s in seeds("signed_tx") {
            assert!(SignedTransaction::decode_and_recover(&s, 16 * 1024).is_ok());
        }
        for s in seeds("block") {
            assert!(primitives::block::Block::decode_all(&mut &s[..]).is_ok());
        }
        for s in seeds("keystore_json") {
            let text = std::str::from_utf8(&s).expect("utf-8");
            assert!(keystore::KeyFile::from_json(text).is_ok(), "{text}");
        }
        for s in seeds("node_config") {
            let text = std::str::from_utf8(&s).expect("utf-8");
            toml::from_str::<chain::config::NodeConfig>(text).expect("a node config");
        }
        for s in seeds("member_config") {
            let text = std::str::from_utf8(&s).expect("utf-8");
            toml::from_str::<bridge::config::MemberConfig>(text).expect("a member config");
        }
    }

    /// Decodes two bytes as one, as a lenient decoder would: `[1, 0]` and `[1, 9]` both give 1.
    #[derive(Debug)]
    struct Lenient(u8);

    impl Decode for Lenient {
        fn decode<I: parity_scale_codec::Input>(
            input: &mut I,
        ) -> Result<Self, parity_scale_codec::Error> {
            let v = u8::decode(input)?;
            let _ignored = u8::decode(input)?;
            Ok(Lenient(v))
        }
    }

    impl Encode for Lenient {
        fn encode(&self) -> Vec<u8> {
            vec![self.0, 0]
        }
    }

    #[test]
    fn a_decoder_that_accepts_two_encodings_of_one_value_is_caught() {
        scale::<Lenient>(&[1, 0]);
        let caught = std::panic::catch_unwind(|| scale::<Lenient>(&[1, 9]));
        assert!(
            caught.is_err(),
            "[1, 9] decodes to what re-encodes as [1, 0]"
        );
    }
}
