//! Prometheus metrics of one node, in its own registry (never process-global).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use service::metrics::MetricsRegistry;

/// Label of a refused transaction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `Rejection::code()`.
    pub reason: String,
}

impl From<&str> for ReasonLabel {
    fn from(reason: &str) -> Self {
        Self {
            reason: reason.to_string(),
        }
    }
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Canonical head height.
    pub head_height: Gauge,
    /// Transactions in the mempool.
    pub mempool_txs: Gauge,
    /// Transactions in the local-transaction journal (`txjournal.redb`).
    pub journal_txs: Gauge,
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
    /// Account checkpoint writes that failed (their changes go into the next one).
    pub checkpoint_failures_total: Counter,
    /// Height of the last final block.
    pub finalized_height: Gauge,
    /// Blocks between the head and the last final block.
    pub finality_lag_blocks: Gauge,
    /// Milliseconds between the head's slot and the last final block's slot.
    pub finality_lag_ms: Gauge,
    /// The finality round of the instance being decided (0 when all goes well).
    pub finality_round: Gauge,
    /// Equivocations seen (two conflicting statements by one authority), kept as evidence.
    pub finality_equivocations_total: Counter,
    /// Commits refused for conflicting with the final chain.
    pub finality_conflicts_total: Counter,
    /// Finality messages dropped because the finality thread was busy.
    pub finality_dropped_total: Counter,
}

impl Metrics {
    /// Registers every metric under `prefix` (e.g. `mainchain`).
    pub fn new(prefix: &str) -> Self {
        let mut r = MetricsRegistry::new(prefix);
        Self {
            head_height: r.add("head_height", "Canonical head height", Gauge::default()),
            mempool_txs: r.add(
                "mempool_txs",
                "Transactions in the mempool",
                Gauge::default(),
            ),
            journal_txs: r.add(
                "journal_txs",
                "Transactions accepted over RPC held in the journal until included",
                Gauge::default(),
            ),
            peers: r.add("peers", "Connected peers", Gauge::default()),
            blocks_total: r.add("blocks", "Blocks committed", Counter::default()),
            txs_included_total: r.add(
                "txs_included",
                "Transactions committed in blocks",
                Counter::default(),
            ),
            txs_accepted_total: r.add(
                "txs_accepted",
                "Transactions accepted into the mempool",
                Counter::default(),
            ),
            txs_rejected_total: r.add(
                "txs_rejected",
                "Transactions refused, by reason",
                Family::default(),
            ),
            reorgs_total: r.add("reorgs", "Chain reorganisations", Counter::default()),
            peer_rejections_total: r.add(
                "peer_rejections",
                "Peer messages refused, by reason",
                Family::default(),
            ),
            sync_lag: r.add(
                "sync_lag",
                "Blocks the best known peer is ahead",
                Gauge::default(),
            ),
            block_commit_seconds: r.add(
                "block_commit_seconds",
                "Time to commit one block durably",
                Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            ),
            checkpoint_failures_total: r.add(
                "checkpoint_failures",
                "Account checkpoint writes that failed",
                Counter::default(),
            ),
            finalized_height: r.add(
                "finalized_height",
                "Height of the last final block",
                Gauge::default(),
            ),
            finality_lag_blocks: r.add(
                "finality_lag_blocks",
                "Blocks between the head and the last final block",
                Gauge::default(),
            ),
            finality_lag_ms: r.add(
                "finality_lag_ms",
                "Milliseconds between the head's slot and the last final block's slot",
                Gauge::default(),
            ),
            finality_round: r.add(
                "finality_round",
                "Finality round of the instance being decided",
                Gauge::default(),
            ),
            finality_equivocations_total: r.add(
                "finality_equivocations",
                "Conflicting statements by one authority, kept as evidence",
                Counter::default(),
            ),
            finality_conflicts_total: r.add(
                "finality_conflicts",
                "Commits refused for conflicting with the final chain",
                Counter::default(),
            ),
            finality_dropped_total: r.add(
                "finality_dropped",
                "Finality messages dropped because the finality thread was busy",
                Counter::default(),
            ),
            // Last: the field initialisers above register into it first.
            registry: r,
        }
    }

    /// Counts a refusal.
    pub fn rejected(&self, reason: &str) {
        self.txs_rejected_total.get_or_create(&reason.into()).inc();
    }

    /// Counts a refused peer message.
    pub fn peer_rejected(&self, reason: &str) {
        self.peer_rejections_total
            .get_or_create(&reason.into())
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        self.registry.encode()
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
