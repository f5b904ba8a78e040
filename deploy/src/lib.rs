//! The Twinpeg devnet launcher: one command for a whole local two-chain network.
