//! Layered configuration, the same for every process: defaults in code, then a TOML file, then
//! environment variables, then (at the binary edge) command-line flags.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Layers `defaults`, then the TOML `file` (when given; it must exist), then
/// `<env_prefix>_*` environment variables, and deserializes the result.
///
/// Environment values are parsed as numbers and booleans where they look like them, and
/// `<env_prefix>_BOOTSTRAP` is a comma-separated list.
pub fn load_layered<T: DeserializeOwned>(
    defaults: config::builder::ConfigBuilder<config::builder::DefaultState>,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, config::ConfigError> {
    with_toml_file(defaults, file, true)
        .add_source(
            config::Environment::with_prefix(env_prefix)
                .prefix_separator("_")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("bootstrap"),
        )
        .build()?
        .try_deserialize()
}

/// `b` with the TOML `file` (when given) layered on top; it must exist if `required`.
pub fn with_toml_file(
    b: config::builder::ConfigBuilder<config::builder::DefaultState>,
    file: Option<&Path>,
    required: bool,
) -> config::builder::ConfigBuilder<config::builder::DefaultState> {
    match file {
        Some(f) => b.add_source(
            config::File::from(f)
                .format(config::FileFormat::Toml)
                .required(required),
        ),
        None => b,
    }
}
