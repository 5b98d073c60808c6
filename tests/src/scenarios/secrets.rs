//! The secrets scan: no file the whole run left behind (outputs, checkpoints, the binary's stdout
//! and stderr, `--debug` request logs included) holds the password or anything shaped like a session
//! id (32 hex digits; the simulator's ids are exactly that, and no generated data has such a run).
//! Parquet parts are compressed binary, where a run of hex-digit bytes means nothing (one-chunk
//! row groups made zstd emit `888…` runs): they are scanned for the password only; the rows they
//! hold are the same rows the text outputs of the same tables hold, which get the full scan.

use crate::Ctx;
use crate::files;
use crate::report::Report;

pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let mut scanned = 0u64;
    let mut debug_runs = 0u64;
    let mut found = Vec::new();
    for path in files::walk(&ctx.work) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext =
            path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        // The simulator's own files are the portal's side, not the tool's output.
        if name.starts_with("sim-") || name.contains(".db") {
            continue;
        }
        let Ok(raw) = std::fs::read(&path) else { continue };
        if ext == "cmd" && files::contains(&raw, b"--debug") {
            debug_runs += 1;
        }
        let mut views = vec![raw];
        if ext == "gz"
            && let Ok(decoded) = files::read_decoded(&path)
        {
            views.push(decoded);
        }
        scanned += 1;
        for bytes in &views {
            if files::contains(bytes, ctx.cli.password.as_bytes()) {
                found.push(format!("{}: the password", path.display()));
            }
            if ext == "parquet" {
                continue;
            }
            if let Some(token) = files::hex_runs(bytes).first() {
                found.push(format!("{}: a session-shaped token {}…", path.display(), &token[..8]));
            }
        }
    }
    report.fact(format!("secrets: {scanned} files scanned, {debug_runs} runs with --debug"));
    report.check(
        "secrets: some runs used --debug",
        if debug_runs > 0 { Ok(()) } else { Err("none".to_owned()) },
    );
    report.check(
        "secrets: no password or session id in any file or log",
        if found.is_empty() { Ok(()) } else { Err(found.join("; ")) },
    );
}
