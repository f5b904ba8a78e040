//! The `devnet` binary: parses arguments, runs the launcher library, prints the error chain.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = devnet::commands::Cli::parse();
    match devnet::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("devnet: error: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
