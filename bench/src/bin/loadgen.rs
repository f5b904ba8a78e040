//! `loadgen`: load a running node (e.g. your devnet) with pre-signed transfers.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bench::loadgen::{self, LoadConfig};
use clap::Parser;
use jsonrpsee::http_client::HttpClientBuilder;
use parity_scale_codec::Encode;
use primitives::tx::{Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes};
use rpc_api::types::TxStatus;
use rpc_api::TwinpegApiClient;

/// Sends pre-signed transfers from deterministic sender keys and reports committed tx/s.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The node's HTTP JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9545")]
    http: String,
    /// Its WebSocket URL [default: the HTTP URL with ws://].
    #[arg(long)]
    ws: Option<String>,
    /// Distinct senders (keys derived from --seed).
    #[arg(long, default_value_t = 50)]
    senders: usize,
    /// Transfers in all.
    #[arg(long, default_value_t = 20_000)]
    txs: u64,
    /// Seed of the sender keys.
    #[arg(long, default_value = "loadgen")]
    seed: String,
    /// First fund each sender with 1,000 coins from development account INDEX (devnet).
    #[arg(long, value_name = "INDEX")]
    fund_from_dev: Option<u32>,
    /// Transactions per call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

async fn run(a: Args) -> anyhow::Result<()> {
    let ws =
        a.ws.clone()
            .unwrap_or_else(|| a.http.replacen("http://", "ws://", 1));
    let client = HttpClientBuilder::default().build(&a.http)?;
    let info = client.chain_info().await.context("reaching the node")?;
    let fee = loadgen::generous_fee(&client.fee_info().await?);
    let senders = loadgen::sender_keys(&a.seed, a.senders);
    if let Some(i) = a.fund_from_dev {
        let dev = primitives::dev::dev_key(i)?;
        let nonce = client.account(dev.address()).await?.pending_nonce;
        let mut last = None;
        for (n, s) in senders.iter().enumerate() {
            let tx = Transaction {
                chain_id: info.chain_id,
                nonce: nonce + n as u64,
                fee: fee.clone(),
                kind: TxKind::Transfer {
                    to: s.address(),
                    amount: Amount::coins(1000),
                },
            }
            .sign(&dev);
            last = Some(client.send_transaction(Bytes(tx.encode())).await?);
        }
        if let Some(h) = last {
            for _ in 0..600 {
                if client
                    .transaction(h)
                    .await?
                    .is_some_and(|t| t.status != TxStatus::Pending)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let per_sender = a.txs.div_ceil(a.senders.max(1) as u64);
    let mut load = loadgen::presign(
        &senders,
        per_sender,
        info.chain_id,
        &fee,
        Address([0x42; 20]),
    );
    // Continue from each sender's current nonce.
    for (s, txs) in senders.iter().zip(load.iter_mut()) {
        let nonce = client.account(s.address()).await?.nonce;
        if nonce > 0 {
            let fresh = loadgen::presign(
                std::slice::from_ref(s),
                per_sender + nonce,
                info.chain_id,
                &fee,
                Address([0x42; 20]),
            );
            *txs = fresh
                .into_iter()
                .next()
                .unwrap_or_default()
                .split_off(nonce as usize);
        }
    }
    let r = loadgen::run(
        &LoadConfig {
            http: a.http,
            ws,
            batch: a.batch,
            connections: a.connections,
            timeout: Duration::from_secs(600),
        },
        load,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

fn main() -> ExitCode {
    bench::block_on(run(Args::parse()))
}
