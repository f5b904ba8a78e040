//! The `wallet` binary: parses the command line, runs the command, prints the result, and
//! exits non-zero with a one-line reason on failure (codes in docs/wallet.md).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use wallet::cli::Cli;
use wallet::{one_line, Env, ErrorOut, WalletError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| Ok(rt.block_on(wallet::run(cli, Env::from_process()))?));
    match result {
        Ok(report) => {
            println!("{}", report.render(json));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let wallet_error = e.downcast_ref::<WalletError>();
            if json {
                if let Some(w) = wallet_error {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&ErrorOut::new(w)).unwrap_or_default()
                    );
                }
            }
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(
                wallet_error.map_or(wallet::error::exit::GENERAL, WalletError::exit_code),
            )
        }
    }
}
