//! Errors building, keying and starting a swarm.

/// Errors building or starting a swarm.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The p2p key file.
    #[error("p2p key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Building the transport or behaviour.
    #[error("building the libp2p swarm: {0}")]
    Build(String),
    /// Listening failed.
    #[error("listening on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}
