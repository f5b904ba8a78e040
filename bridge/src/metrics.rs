//! Prometheus metrics of one member, in its own registry (never process-global).

use std::sync::atomic::AtomicU64;

use chain::peg::Direction;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
    registry: Registry,
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
    /// Source blocks rescanned after reorgs.
    pub reorgs: Family<DirectionLabel, Counter>,
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
        let mut registry = Registry::with_prefix("bridge");
        let m = Self {
            registry: Registry::default(),
            backlog: Family::default(),
            events_seen: Family::default(),
            events_signed: Family::default(),
            events_submitted: Family::default(),
            events_paid: Family::default(),
            confirmation_to_payout_seconds: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            member_balance_coins: Family::default(),
            scan_lag_blocks: Family::default(),
            peers: Gauge::default(),
            reorgs: Family::default(),
        };
        registry.register(
            "backlog",
            "Unpaid transfers by direction",
            m.backlog.clone(),
        );
        registry.register(
            "events_seen",
            "Peg events seen on the source chain",
            m.events_seen.clone(),
        );
        registry.register(
            "events_signed",
            "Peg events this member signed",
            m.events_signed.clone(),
        );
        registry.register(
            "events_submitted",
            "Payouts this member submitted",
            m.events_submitted.clone(),
        );
        registry.register(
            "events_paid",
            "Transfers seen paid on the destination",
            m.events_paid.clone(),
        );
        registry.register(
            "confirmation_to_payout_seconds",
            "Seconds from signing at depth to the payout",
            m.confirmation_to_payout_seconds.clone(),
        );
        registry.register("errors", "Errors by kind", m.errors.clone());
        registry.register(
            "member_balance_coins",
            "The member's balance on each chain (coins)",
            m.member_balance_coins.clone(),
        );
        registry.register(
            "scan_lag_blocks",
            "Source head minus the scan cursor",
            m.scan_lag_blocks.clone(),
        );
        registry.register("peers", "Connected bridge peers", m.peers.clone());
        registry.register(
            "reorgs",
            "Reorgs of scanned source blocks",
            m.reorgs.clone(),
        );
        Self { registry, ..m }
    }

    /// The label for `d`.
    pub fn dir(d: Direction) -> DirectionLabel {
        DirectionLabel {
            direction: direction_name(d).to_string(),
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
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
