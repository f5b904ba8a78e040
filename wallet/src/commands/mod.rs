//! One module per subcommand; each returns a [`crate::Report`] whose JSON shape is a struct
//! declared beside it and documented in `docs/wallet.md`.

pub mod balance;
pub mod config;
pub mod history;
pub mod keys;
pub mod peg;
pub mod resend;
pub mod transfer;
pub mod tx;

/// The first two dev accounts' addresses, as the JSON shape tests spell them.
#[cfg(test)]
fn test_addresses() -> [primitives::types::Address; 2] {
    [
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    ]
    .map(|a| a.parse().expect("a valid address"))
}
