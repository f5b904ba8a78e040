//! Prometheus metrics of one member, in its own registry (never process-global).

use std::sync::atomic::AtomicU64;

use primitives::peg::Direction;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use service::metrics::MetricsRegistry;

/// Label: `deposits` or `withdrawals`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// The direction's name.
    pub direction: String,
}

/// Label: what failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// A stable name, e.g. `rpc`, `refused`, `equivocation`.
    pub kind: String,
}

impl From<&str> for KindLabel {
    fn from(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
        }
    }
}

/// Label: why gossip was dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A stable name, e.g. `duplicate`, `not_member_peer`, `verify_queue_full`.
    pub reason: String,
}

/// Label: `main` or `side`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabel {
    /// The chain.
    pub chain: String,
}

/// The name a direction has in labels, logs and status.
pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::MainToSide => "deposits",
        Direction::SideToMain => "withdrawals",
    }
}

/// The member's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Unpaid transfers, by direction.
    pub backlog: Family<DirectionLabel, Gauge>,
    /// Peg events seen on the source, by direction.
    pub events_seen: Family<DirectionLabel, Counter>,
    /// Events signed by this member.
    pub events_signed: Family<DirectionLabel, Counter>,
    /// Payouts this member submitted (accepted by its node).
    pub events_submitted: Family<DirectionLabel, Counter>,
    /// Transfers seen paid on the destination.
    pub events_paid: Family<DirectionLabel, Counter>,
    /// Seconds from signing at depth to seeing the payout.
    pub confirmation_to_payout_seconds: Family<DirectionLabel, Histogram>,
    /// Errors, by kind.
    pub errors: Family<KindLabel, Counter>,
    /// The member's balance on each chain, in coins.
    pub member_balance_coins: Family<ChainLabel, Gauge<f64, AtomicU64>>,
    /// Blocks between the source head and the watcher's cursor, by direction.
    pub scan_lag_blocks: Family<DirectionLabel, Gauge>,
    /// Connected bridge peers.
    pub peers: Gauge,
    /// Attestations held in memory until this member records their transfer.
    pub early_attestations: Gauge,
    /// Source blocks rescanned after reorgs.
    pub reorgs: Family<DirectionLabel, Counter>,
    /// Attestation gossip dropped unverified or refused, by reason.
    pub gossip_dropped: Family<ReasonLabel, Counter>,
    /// Signature recoveries spent on gossip (attestations and peer bindings).
    pub gossip_recoveries: Counter,
    /// Peers banned for misbehaving on the members' network.
    pub peers_banned: Counter,
    /// Connected peers that proved they speak for a federation member.
    pub member_peers: Gauge,
    /// Nonce gaps of this member's own on the destination, closed by re-signing, by direction.
    pub nonce_gaps: Family<DirectionLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `bridge` prefix.
    pub fn new() -> Self {
        let mut r = MetricsRegistry::new("bridge");
        Self {
            backlog: r.add(
                "backlog",
                "Unpaid transfers by direction",
                Family::default(),
            ),
            events_seen: r.add(
                "events_seen",
                "Peg events seen on the source chain",
                Family::default(),
            ),
            events_signed: r.add(
                "events_signed",
                "Peg events this member signed",
                Family::default(),
            ),
            events_submitted: r.add(
                "events_submitted",
                "Payouts this member submitted",
                Family::default(),
            ),
            events_paid: r.add(
                "events_paid",
                "Transfers seen paid on the destination",
                Family::default(),
            ),
            confirmation_to_payout_seconds: r.add(
                "confirmation_to_payout_seconds",
                "Seconds from signing at depth to the payout",
                Family::new_with_constructor(latency_histogram),
            ),
            errors: r.add("errors", "Errors by kind", Family::default()),
            member_balance_coins: r.add(
                "member_balance_coins",
                "The member's balance on each chain (coins)",
                Family::default(),
            ),
            scan_lag_blocks: r.add(
                "scan_lag_blocks",
                "Source head minus the scan cursor",
                Family::default(),
            ),
            peers: r.add("peers", "Connected bridge peers", Gauge::default()),
            early_attestations: r.add(
                "early_attestations",
                "Attestations held until this member records their transfer",
                Gauge::default(),
            ),
            reorgs: r.add(
                "reorgs",
                "Reorgs of scanned source blocks",
                Family::default(),
            ),
            gossip_dropped: r.add(
                "gossip_dropped",
                "Attestation gossip dropped unverified or refused, by reason",
                Family::default(),
            ),
            gossip_recoveries: r.add(
                "gossip_recoveries",
                "Signature recoveries spent on gossip (attestations and peer bindings)",
                Counter::default(),
            ),
            peers_banned: r.add(
                "peers_banned",
                "Peers banned for misbehaving on the members' network",
                Counter::default(),
            ),
            member_peers: r.add(
                "member_peers",
                "Connected peers that proved they speak for a federation member",
                Gauge::default(),
            ),
            nonce_gaps: r.add(
                "nonce_gaps",
                "Own nonce gaps on the destination closed by re-signing the payouts behind them",
                Family::default(),
            ),
            // Last: the field initialisers above register into it first.
            registry: r,
        }
    }

    /// The label for `d`.
    pub fn dir(d: Direction) -> DirectionLabel {
        DirectionLabel {
            direction: direction_name(d).to_string(),
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors.get_or_create(&kind.into()).inc();
    }

    /// Counts `n` gossip messages dropped for `reason`.
    pub fn dropped(&self, reason: &str, n: u64) {
        self.gossip_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc_by(n);
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
    fn registries_are_per_member() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.events_signed
            .get_or_create(&Metrics::dir(Direction::MainToSide))
            .inc();
        a.error("rpc");
        a.confirmation_to_payout_seconds
            .get_or_create(&Metrics::dir(Direction::SideToMain))
            .observe(1.5);
        let text = a.encode();
        assert!(
            text.contains("bridge_events_signed_total{direction=\"deposits\"} 1"),
            "{text}"
        );
        assert!(text.contains("kind=\"rpc\""));
        assert!(!b.encode().contains("deposits"));
    }
}
