//! `bench-fetch`: the baseline of `cargo xtask bench`'s pipeline-efficiency scenario.
//!
//! It sends the same requests as `iptvportal dump TABLE --strategy id-range --parallel 1` (one count,
//! then keyset pages `id > last ORDER BY id LIMIT chunk` over every catalog column) through the same
//! client, and throws the rows away: no traversal state machine, no sink, no checkpoint. The dump's
//! rows/s divided by this loop's rows/s is the share of the achievable speed the pipeline keeps.
//!
//! Usage: `bench-fetch --portal URL --table TABLE --chunk-size N` with the credentials in
//! `IPTVPORTAL_USERNAME` / `IPTVPORTAL_PASSWORD`; prints the number of rows fetched.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use iptvportal_client::{Client, ClientConfig, ENV_PASSWORD, ENV_USERNAME};
use iptvportal_query::{OrderBy, Q, Select};
use serde_json::Value;

fn main() -> ExitCode {
    match run() {
        Ok(rows) => {
            println!("{rows}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<u64> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut portal, mut table, mut chunk) = (None, None, 5000_u64);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--portal" => portal = Some(value.clone()),
            "--table" => table = Some(value.clone()),
            "--chunk-size" => chunk = value.parse().context("--chunk-size")?,
            other => bail!("unknown flag {other}"),
        }
    }
    let portal = portal.context("--portal is required")?;
    let table = table.context("--table is required")?;
    let username = std::env::var(ENV_USERNAME).unwrap_or_else(|_| "admin".to_owned());
    let password = std::env::var(ENV_PASSWORD).unwrap_or_else(|_| "admin".to_owned());
    let client = Client::new(ClientConfig::new(&portal)?.credentials(username, password))?;
    // The same runtime as the `iptvportal` binary's for one table: the cores its sink thread
    // leaves, at least one.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.saturating_sub(1).max(1))
        .enable_all()
        .build()?;
    runtime.block_on(fetch_all(&client, &table, chunk))
}

/// Fetches every row of `table` by keyset pages and discards them; returns how many there were.
async fn fetch_all(client: &Client, table: &str, chunk: u64) -> Result<u64> {
    let known = iptvportal_catalog::table(table)
        .with_context(|| format!("{table} is not in the catalog"))?;
    let id = known.id_column.with_context(|| format!("{table} has no id column"))?;
    let columns: Vec<&str> = known.column_names().collect();
    let id_index = columns.iter().position(|c| *c == id).context("the id is not a column")?;
    let base = Select::from(table)?.columns(&columns)?.order_by(OrderBy::asc(id)?).limit(chunk);
    // The dump counts first (for progress); so does the baseline, to send the same requests.
    let expected = client.count(table, None).await?;
    let (mut fetched, mut after) = (0_u64, None::<i64>);
    loop {
        let query = match after {
            None => base.clone(),
            Some(last) => base.clone().filter(Q::gt(id, last)?.into_expr()),
        };
        let rows = client.select(&query).await?;
        fetched += rows.len() as u64;
        let Some(last) = rows.last() else { break };
        after = Some(
            last.get(id_index).and_then(Value::as_i64).context("a row without an integer id")?,
        );
        if (rows.len() as u64) < chunk {
            break;
        }
    }
    if fetched != expected {
        bail!("fetched {fetched} rows of {table}, but it has {expected}");
    }
    Ok(fetched)
}
