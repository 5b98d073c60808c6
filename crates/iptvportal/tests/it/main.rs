//! Runs every example program against the simulator, so the examples cannot rot: each example's
//! `run` is compiled into this test (its `main` and portal setup are `cfg(not(test))`).

use std::path::Path;

use iptvportal::{Client, ClientConfig};
use iptvportal_sim::{Sim, SimConfig};

#[path = "../../examples/formats.rs"]
mod formats;
#[path = "../../examples/id_range.rs"]
mod id_range;
#[path = "../../examples/many_tables.rs"]
mod many_tables;
#[path = "../../examples/pause_resume.rs"]
mod pause_resume;
#[path = "../../examples/progress.rs"]
mod progress;
#[path = "../../examples/single_table.rs"]
mod single_table;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_runs_against_the_simulator() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let client =
        Client::new(ClientConfig::new(sim.url()).unwrap().credentials("admin", "admin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    single_table::run(&client, &out("single")).await.unwrap();
    assert!(out("single").join("tv_channel.jsonl").exists());
    many_tables::run(&client, &out("many")).await.unwrap();
    for t in ["tv_channel", "tv_program", "media"] {
        assert!(out("many").join(format!("{t}.jsonl")).exists(), "{t}");
    }
    formats::run(&client, &out("formats")).await.unwrap();
    for file in [
        "jsonl/package.jsonl",
        "csv/package.csv.gz",
        "json/package.json.gz",
        "parquet/package-00000.parquet",
    ] {
        assert!(out("formats").join(file).exists(), "{file}");
    }
    id_range::run(&client, &out("id_range")).await.unwrap();
    assert!(out("id_range").join("terminal.jsonl").exists());
    pause_resume::run(&client, &out("pause")).await.unwrap();
    assert!(Path::new(&out("pause")).join("terminal_playlog.jsonl").exists());
    progress::run(&client, &out("progress")).await.unwrap();
    assert!(out("progress").join("tv_program.jsonl").exists());
}
