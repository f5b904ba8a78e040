//! Prometheus metrics of one node, in its own registry (never process-global).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label of a refused transaction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `Rejection::code()`.
    pub reason: String,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Canonical head height.
    pub head_height: Gauge,
    /// Transactions in the mempool.
    pub mempool_txs: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Blocks committed (produced or imported).
    pub blocks_total: Counter,
    /// Transactions committed in blocks.
    pub txs_included_total: Counter,
    /// Transactions accepted into the mempool.
    pub txs_accepted_total: Counter,
    /// Transactions refused, by reason.
    pub txs_rejected_total: Family<ReasonLabel, Counter>,
    /// Chain reorganisations.
    pub reorgs_total: Counter,
    /// Peer messages refused (invalid, junk, oversized), by reason.
    pub peer_rejections_total: Family<ReasonLabel, Counter>,
    /// Blocks the best known peer is ahead of us.
    pub sync_lag: Gauge,
    /// Seconds to commit one block durably.
    pub block_commit_seconds: Histogram,
}

impl Metrics {
    /// Registers every metric under `prefix` (e.g. `mainchain`).
    pub fn new(prefix: &str) -> Self {
        let mut registry = Registry::with_prefix(prefix);
        let m = Self {
            head_height: Gauge::default(),
            mempool_txs: Gauge::default(),
            peers: Gauge::default(),
            blocks_total: Counter::default(),
            txs_included_total: Counter::default(),
            txs_accepted_total: Counter::default(),
            txs_rejected_total: Family::default(),
            reorgs_total: Counter::default(),
            peer_rejections_total: Family::default(),
            sync_lag: Gauge::default(),
            block_commit_seconds: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
            ]),
            registry: Registry::default(),
        };
        registry.register(
            "head_height",
            "Canonical head height",
            m.head_height.clone(),
        );
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            m.mempool_txs.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register("blocks", "Blocks committed", m.blocks_total.clone());
        registry.register(
            "txs_included",
            "Transactions committed in blocks",
            m.txs_included_total.clone(),
        );
        registry.register(
            "txs_accepted",
            "Transactions accepted into the mempool",
            m.txs_accepted_total.clone(),
        );
        registry.register(
            "txs_rejected",
            "Transactions refused, by reason",
            m.txs_rejected_total.clone(),
        );
        registry.register("reorgs", "Chain reorganisations", m.reorgs_total.clone());
        registry.register(
            "peer_rejections",
            "Peer messages refused, by reason",
            m.peer_rejections_total.clone(),
        );
        registry.register(
            "sync_lag",
            "Blocks the best known peer is ahead",
            m.sync_lag.clone(),
        );
        registry.register(
            "block_commit_seconds",
            "Time to commit one block durably",
            m.block_commit_seconds.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts a refusal.
    pub fn rejected(&self, reason: &str) {
        self.txs_rejected_total
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a refused peer message.
    pub fn peer_rejected(&self, reason: &str) {
        self.peer_rejections_total
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registries_do_not_collide_and_encode() {
        let a = Metrics::new("mainchain");
        let b = Metrics::new("mainchain");
        a.head_height.set(7);
        a.rejected("nonce_too_low");
        assert!(a.encode().contains("mainchain_head_height 7"));
        assert!(a.encode().contains("reason=\"nonce_too_low\""));
        assert!(b.encode().contains("mainchain_head_height 0"));
    }
}
