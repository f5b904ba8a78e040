//! The federated two-way peg's on-chain rules: the peg message members sign, its domain,
//! the federation and its limits, and the checks every peg operation passes.
//!
//! A peg message can only move coins: nothing here can change members, threshold or limits.
//! `message` holds what is signed, `params` the federation and the peg as one chain sees
//! it, `rules` the checks (pure: the mempool and the executor pass in what they read).

mod error;
mod message;
mod params;
mod rules;

pub use error::PegError;
pub use message::{domain, escrow_address, withdrawal_address, Direction, PegMessage};
pub use params::{largest_payout_size, PegConfig, PegParams, PegRole, PegTerms};
pub use rules::{
    check_payout, check_source, check_tx, day_of, peg_for, record_payout, record_source, resolve,
    roll_day, totals_on, PegOp,
};
