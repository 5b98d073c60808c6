//! Dump one table to JSONL, as in the seed's quick start.
//!
//! `cargo run -p iptvportal --example single_table` (a local simulator unless `IPTVPORTAL_URL` is set).

use std::error::Error;
use std::path::Path;

use iptvportal::{Client, DumpConfig, DumpFormat, DumpService};

#[cfg(not(test))]
mod common;

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let portal = common::connect().await?;
    run(&portal.client, Path::new("dumps")).await
}

/// Dumps `tv_channel` into `out/tv_channel.jsonl` in chunks of 5000 rows.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let config = DumpConfig::new("tv_channel", out).format(DumpFormat::Jsonl).chunk_size(5000);
    let stats = DumpService::new(client.clone()).dump(config, None).await?;
    println!("dumped {} rows", stats.progress.dumped_rows);
    println!("output: {}", out.join("tv_channel.jsonl").display());
    Ok(())
}
