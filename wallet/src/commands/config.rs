//! `wallet config`: the endpoints, keystore and files the wallet resolved, and where from.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::settings::Endpoint;
use crate::{Ctx, Report};

/// `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigOut {
    /// The mainchain endpoint and its source (`flag_or_env`, `config`, `devnet`, `default`).
    pub main_rpc: Endpoint,
    /// The sidechain endpoint and its source.
    pub side_rpc: Endpoint,
    /// The keystore directory.
    pub keystore: PathBuf,
    /// The config file read, or `null`.
    pub config_file: Option<PathBuf>,
    /// The devnet endpoints file read, or `null`.
    pub devnet_file: Option<PathBuf>,
    /// The record of sent transactions (`<wallet home>/sent.redb`), whether or not it exists yet.
    pub sent_record: PathBuf,
}

/// Runs `config`.
pub fn run(ctx: &Ctx) -> Result<Report> {
    let s = &ctx.settings;
    let out = ConfigOut {
        main_rpc: s.main.clone(),
        side_rpc: s.side.clone(),
        keystore: s.keystore.clone(),
        config_file: s.config_file.clone(),
        devnet_file: s.devnet_file.clone(),
        sent_record: s.sent_record.clone(),
    };
    let src = |e: &Endpoint| {
        serde_json::to_value(e.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let opt = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "(none)".to_string(), |p| p.display().to_string())
    };
    let human = format!(
        "mainchain RPC  {} ({})\nsidechain RPC  {} ({})\nkeystore       {}\nconfig file    {}\ndevnet file    {}\nsent record    {}",
        out.main_rpc.url,
        src(&out.main_rpc),
        out.side_rpc.url,
        src(&out.side_rpc),
        out.keystore.display(),
        opt(&out.config_file),
        opt(&out.devnet_file),
        out.sent_record.display(),
    );
    Report::new(&out, human)
}
