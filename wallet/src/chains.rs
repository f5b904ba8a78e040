//! Which of the two chains a command is about, as flags, JSON and node names spell it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the two chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ChainSel {
    /// The mainchain.
    Main,
    /// The sidechain.
    Side,
}

impl ChainSel {
    /// Both chains, main first.
    pub const BOTH: [ChainSel; 2] = [ChainSel::Main, ChainSel::Side];

    /// The name the node reports in `tp_chainInfo`: `mainchain` or `sidechain`.
    pub fn node_name(self) -> &'static str {
        match self {
            ChainSel::Main => "mainchain",
            ChainSel::Side => "sidechain",
        }
    }

    /// `main` or `side`, as the flags and JSON spell it.
    pub fn short(self) -> &'static str {
        match self {
            ChainSel::Main => "main",
            ChainSel::Side => "side",
        }
    }

    /// The chains a command touches: the one asked for, or both.
    pub fn selected(chain: Option<ChainSel>) -> Vec<ChainSel> {
        chain.map_or_else(|| Self::BOTH.to_vec(), |c| vec![c])
    }
}

impl fmt::Display for ChainSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.node_name())
    }
}
