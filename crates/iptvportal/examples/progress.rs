//! A progress callback after every committed chunk: percent, rate and ETA.
//!
//! `cargo run -p iptvportal --example progress`

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use iptvportal::{Client, DumpConfig, DumpService, ProgressCallback};

#[cfg(not(test))]
mod common;

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let portal = common::connect().await?;
    run(&portal.client, Path::new("dumps")).await
}

/// Dumps `tv_program`, printing one line per committed chunk. The total is counted up front, so
/// the percentage and ETA are there from the first chunk.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let callback: ProgressCallback = Arc::new(|p| {
        if p.chunks_completed > 0 {
            let pct = p.percent_complete().unwrap_or(0.0);
            let eta = p.eta_seconds().map_or_else(|| "?".to_owned(), |s| format!("{s:.1}s"));
            println!("{pct:5.1}% | {:8.0} rows/s | ETA {eta}", p.rows_per_second());
        }
    });
    let config = DumpConfig::new("tv_program", out).chunk_size(1000);
    DumpService::new(client.clone()).dump(config, Some(callback)).await?;
    Ok(())
}
