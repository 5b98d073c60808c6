//! `iptvportal materialize`: a synced table as of its last run, in one file.

use std::process::ExitCode;

use crate::args::MaterializeArgs;

/// Runs `iptvportal materialize`.
pub(super) async fn run(args: &MaterializeArgs) -> anyhow::Result<ExitCode> {
    crate::failure::local_path(&args.dir, "DIR")?;
    crate::failure::local_path(&args.out, "--out")?;
    let done =
        iptvportal_dump::materialize(&args.dir, &args.table, &args.out, args.format, args.compress)
            .await?;
    crate::output::note(&format!(
        "{}: {} rows as of run {} (from {} runs) in {}",
        args.table,
        done.rows,
        done.run,
        done.runs,
        done.path.display()
    ));
    Ok(ExitCode::SUCCESS)
}
