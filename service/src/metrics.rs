//! A Prometheus registry per process component (never process-global), as `GET /metrics` serves it.

use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of [`MetricsRegistry::encode`]'s text, as `GET /metrics` serves it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One process component's own registry (never process-global), filled metric by metric.
#[derive(Debug)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    /// An empty registry whose metric names all start with `<prefix>_`.
    pub fn new(prefix: &str) -> Self {
        Self {
            registry: Registry::with_prefix(prefix),
        }
    }

    /// Registers `metric` as `name` and hands it back, so a metrics struct is built field by
    /// field with each name beside its field.
    pub fn add<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.registry.register(name, help, metric.clone());
        metric
    }

    /// The Prometheus text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
