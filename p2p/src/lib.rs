//! libp2p plumbing shared by the chain nodes and the bridge members: the swarm builder and
//! gossipsub settings, the SCALE frame codec, peer scores and bans, bootstrap redial, listen
//! addresses, key files.
//!
//! Each process defines its own behaviour and event loop on top; nothing here knows what a
//! block or an attestation is.

pub mod addr;
pub mod codec;
pub mod error;
pub mod exchange;
pub mod keys;
pub mod scores;
pub mod swarm;

pub use addr::{check_p2p_addrs, NotMultiaddr};
pub use error::NetworkError;
pub use exchange::Exchange;
pub use keys::{load_key_file, load_or_create_keypair, write_key_file, KeyFileError};
pub use scores::{lift_expired_bans, refuse_if_banned, report, PeerScores, BAN_SCORE};
pub use swarm::{build_tcp_swarm, common_event, gossipsub_config, ListenAddrs, Redial};
