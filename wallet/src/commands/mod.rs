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
