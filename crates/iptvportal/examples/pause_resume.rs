//! Pause a running dump, look at its progress, and resume it.
//!
//! `cargo run -p iptvportal --example pause_resume`

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iptvportal::{Client, DumpConfig, DumpService, RunState};

#[cfg(not(test))]
mod common;

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let portal = common::connect().await?;
    run(&portal.client, Path::new("dumps")).await
}

/// Pauses `terminal_playlog` after its first chunk; while paused no request is sent and the
/// checkpoint holds everything committed, so even a crash now would lose nothing.
pub(crate) async fn run(client: &Client, out: &Path) -> Result<(), Box<dyn Error>> {
    let service = DumpService::new(client.clone());
    let pauser = service.clone();
    let pause_once = std::sync::Once::new();
    let callback: iptvportal::ProgressCallback = Arc::new(move |p| {
        if p.chunks_completed == 1 {
            pause_once.call_once(|| {
                pauser.pause(&p.table);
            });
        }
    });
    let config = DumpConfig::new("terminal_playlog", out).chunk_size(500);
    let task = tokio::spawn({
        let service = service.clone();
        async move { service.dump(config, Some(callback)).await }
    });
    while service.get_stats("terminal_playlog").is_none_or(|p| p.state != RunState::Paused) {
        if task.is_finished() {
            break; // A table of one chunk finishes before it can be paused.
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(p) = service.get_stats("terminal_playlog") {
        println!(
            "{}: {} of {:?} rows ({})",
            p.table,
            p.dumped_rows,
            p.total_rows,
            p.state.as_str()
        );
    }
    service.resume("terminal_playlog");
    let stats = task.await??;
    println!("resumed and finished: {} rows", stats.progress.dumped_rows);
    Ok(())
}
