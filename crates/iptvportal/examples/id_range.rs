//! Keyset traversal with a filter: `id > last_id` pages, three ranges in flight.
//!
//! `cargo run -p iptvportal --example id_range`

use std::error::Error;
use std::path::Path;

use iptvportal::{Client, DumpConfig, DumpService, DumpStrategy, Q};

#[cfg(not(test))]
mod common;

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let portal = common::connect().await?;
    run(&portal.client, Path::new("dumps")).await
}

/// Dumps the terminals seen since 2024 by id range; no OFFSET is ever sent, so the cost of a page
/// does not grow with its depth.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let config = DumpConfig::new("terminal", out)
        .strategy(DumpStrategy::IdRange)
        .max_parallel(3)
        .chunk_size(1000)
        .where_clause(Q::lookup("last_seen__gte", "2024-01-01 00:00:00")?);
    let stats = DumpService::new(client.clone()).dump(config, None).await?;
    println!(
        "{} terminals seen since 2024, {:.0} rows/s",
        stats.progress.dumped_rows,
        stats.progress.rows_per_second()
    );
    Ok(())
}
