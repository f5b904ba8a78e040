//! The `bridge` binary: parses arguments, sets up tracing, calls the library, prints the
//! error chain and exits non-zero on failure.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bridge::cli::{Cli, Command, ConfigCommand, KeysCommand};
use bridge::config::MemberConfig;
use bridge::status::BridgeApiClient;
use clap::Parser;
use service::logging::init_tracing;

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let cfg = MemberConfig::load(config.as_deref())?;
            init_tracing(cfg.log_format, &cfg.log_level);
            bridge::run::run(cfg).await?;
        }
        Command::Keys {
            command: KeysCommand::New { out },
        } => {
            let key = bridge::keys::new_key_file(&out)?;
            println!("{}", key.address());
        }
        Command::Status {
            status_url,
            config,
            json,
        } => {
            let url = match (status_url, config) {
                (Some(u), _) => u,
                (None, Some(c)) => format!("http://{}", MemberConfig::load(Some(&c))?.status_addr),
                (None, None) => "http://127.0.0.1:9500".to_string(),
            };
            let client = jsonrpsee::http_client::HttpClientBuilder::default()
                .build(&url)
                .with_context(|| format!("status URL {url}"))?;
            let s = client
                .status()
                .await
                .with_context(|| format!("asking the member at {url} for its status"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", bridge::status::render(&s));
            }
        }
        Command::Audit {
            main_rpc,
            side_rpc,
            from,
            to,
            json,
        } => {
            let report = bridge::audit::audit(&bridge::audit::AuditOptions {
                main_rpc,
                side_rpc,
                from,
                to,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.ok {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Config {
            command: ConfigCommand::Validate { config },
        } => {
            let cfg = MemberConfig::load(Some(&config))?;
            let key = bridge::keys::load_member_key(&cfg)?;
            if cfg.data_dir.as_os_str().is_empty() {
                bail!("data_dir is empty");
            }
            println!("config ok; member {}", key.address());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
