//! Checking p2p addresses as configurations name them.

/// A p2p address in a configuration that does not parse as a multiaddr.
#[derive(Debug, thiserror::Error)]
#[error("{key} {value:?} is not a multiaddr")]
pub struct NotMultiaddr {
    /// Where it stands: `p2p_listen` or `bootstrap entry`.
    pub key: &'static str,
    /// The value as written.
    pub value: String,
}

/// Checks that the listen address and every bootstrap entry are multiaddrs.
pub fn check_p2p_addrs(listen: &str, bootstrap: &[String]) -> Result<(), NotMultiaddr> {
    let entries = std::iter::once(("p2p_listen", listen))
        .chain(bootstrap.iter().map(|b| ("bootstrap entry", b.as_str())));
    for (key, value) in entries {
        if value.parse::<libp2p::Multiaddr>().is_err() {
            return Err(NotMultiaddr {
                key,
                value: value.to_string(),
            });
        }
    }
    Ok(())
}
