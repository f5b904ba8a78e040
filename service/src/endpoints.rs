//! `<data_dir>/endpoints.json`: where a process that bound port 0 actually serves. Declared once
//! here; the node and the member write it, the launcher, the tests and the benchmarks read it.
//!
//! The file carries the writer's pid so that one left by an earlier start is never taken for
//! this one's.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The file's name inside a data dir.
pub const FILE: &str = "endpoints.json";

/// What a chain node writes once its RPC server and p2p listener are bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEndpoints {
    /// `http://host:port`.
    pub rpc_http: String,
    /// `ws://host:port`.
    pub rpc_ws: String,
    /// Its p2p addresses with `/p2p/<peer id>`, loopback first.
    #[serde(default)]
    pub p2p: Vec<String>,
    /// The node's pid: tells this start's file from a stale one.
    pub pid: u32,
}

/// What a bridge member writes once its status server and gossip listener are bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEndpoints {
    /// Its gossip addresses with `/p2p/<peer id>`.
    #[serde(default)]
    pub p2p: Vec<String>,
    /// `http://host:port` of its status server (`GET /health`, `/status`, `/metrics`,
    /// JSON-RPC `bridge_status`).
    pub status_http: String,
    /// The member's pid: tells this start's file from a stale one.
    pub pid: u32,
    /// Its member address (0x-hex, EIP-55).
    pub member: String,
}

/// The endpoints file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Replaces `<dir>/endpoints.json` with `body` atomically (write aside, then rename), so a
/// reader never sees half a file. The error names the file being written.
pub fn write<T: Serialize>(dir: &Path, body: &T) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = dir.join("endpoints.json.tmp");
    let text = serde_json::to_string(body)
        .map_err(|e| (tmp.clone(), std::io::Error::other(e.to_string())))?;
    std::fs::write(&tmp, text).map_err(|e| (tmp.clone(), e))?;
    std::fs::rename(&tmp, path(dir)).map_err(|e| (tmp, e))
}

/// Reads an endpoints file; `None` while it is missing or half-written.
pub fn read<T: DeserializeOwned>(file: &Path) -> Option<T> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_a_half_file_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = NodeEndpoints {
            rpc_http: "http://127.0.0.1:1".into(),
            rpc_ws: "ws://127.0.0.1:1".into(),
            p2p: vec!["/ip4/127.0.0.1/tcp/2/p2p/12D3KooW".into()],
            pid: 7,
        };
        write(dir.path(), &e).expect("write");
        assert_eq!(read::<NodeEndpoints>(&path(dir.path())), Some(e));
        std::fs::write(path(dir.path()), r#"{"rpc_http":"#).expect("write");
        assert_eq!(read::<NodeEndpoints>(&path(dir.path())), None);
        assert_eq!(
            read::<MemberEndpoints>(&dir.path().join("missing.json")),
            None
        );
    }
}
