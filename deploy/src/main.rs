//! The `devnet` binary.

fn main() {}
