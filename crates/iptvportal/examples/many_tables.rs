//! Dump several tables concurrently, two at a time, over one client and one session.
//!
//! `cargo run -p iptvportal --example many_tables`

use std::error::Error;
use std::path::Path;

use iptvportal::{Client, DumpConfig, DumpService};

#[cfg(not(test))]
mod common;

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let portal = common::connect().await?;
    run(&portal.client, Path::new("dumps")).await
}

/// Dumps `tv_channel`, `tv_program` and `media`; one table's failure would not stop the others.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let configs = ["tv_channel", "tv_program", "media"].map(|t| DumpConfig::new(t, out)).to_vec();
    let results = DumpService::new(client.clone()).dump_many(configs, 2, None).await?;
    for result in results {
        let stats = result?;
        println!("{}: {} rows", stats.config.table, stats.progress.dumped_rows);
    }
    Ok(())
}
