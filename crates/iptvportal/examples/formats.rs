//! The same table in every format: JSONL, gzip CSV, gzip JSON and Parquet.
//!
//! `cargo run -p iptvportal --example formats`

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

/// Writes `package.jsonl`, `package.csv.gz`, `package.json.gz` and `package-00000.parquet`.
/// Each format keeps its own checkpoint file name per table, so they go to separate folders.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let service = DumpService::new(client.clone());
    for (format, gzip) in [
        (DumpFormat::Jsonl, false),
        (DumpFormat::Csv, true),
        (DumpFormat::Json, true),
        (DumpFormat::Parquet, false),
    ] {
        let dir = out.join(format.as_str());
        let stats = service
            .dump(DumpConfig::new("package", &dir).format(format).compress(gzip), None)
            .await?;
        for file in &stats.files {
            println!("{format}: {} ({} bytes)", file.path.display(), file.bytes);
        }
    }
    Ok(())
}
