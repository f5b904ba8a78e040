//! Twinpeg benchmarks: a load generator and the `make bench` suite measured against this
//! machine's own limits (its signature-recovery rate, measured in the same run).

pub mod loadgen;
pub mod micro;
pub mod node;
pub mod peg;
pub mod reference;
pub mod scaling;
pub mod suite;
