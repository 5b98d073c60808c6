//! `cargo xtask e2e`: builds the release binaries, prepares the Python readers, and runs the
//! black-box end-to-end harness (`tests/`, package `iptvportal-e2e`) against them.
//!
//! The Python environment is created here (not assumed from the machine) so that a clean CI machine
//! works: a virtual environment in `target/e2e-venv` with the versions pinned in
//! `tests/requirements.txt`, reinstalled only when that file changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::project_root;

/// `cargo xtask venv`: creates (or refreshes) the Python environment of the tests that need a
/// real S3 API, before `cargo test` runs them: `moto_server`, pinned in
/// `tests/moto-requirements.txt`, in `target/moto-venv/bin`, where `crates/store`'s tests look
/// for it first. Prints the server's path.
pub(crate) fn venv() -> Result<()> {
    let root = project_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let python = python_env(&root.join("tests/moto-requirements.txt"), &target.join("moto-venv"))?;
    println!("{}", python.with_file_name("moto_server").display());
    Ok(())
}

/// Runs the whole e2e suite; `args` (`--seed N`, `--kills N`, `--trial N`, `--only a,b`) pass through
/// to the harness.
pub(crate) fn run(args: &[&str]) -> Result<()> {
    let root = project_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);

    let start = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "iptvportal-cli",
            "-p",
            "iptvportal-sim",
            "-p",
            "iptvportal-e2e",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    eprintln!("e2e: build {:.1}s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let python = python_env(&root.join("tests/requirements.txt"), &target.join("e2e-venv"))?;
    // The `s3` phase's S3 API, in a venv of its own (botocore pins python-dateutil below the
    // readers' version): the one `cargo xtask venv` makes.
    let moto = python_env(&root.join("tests/moto-requirements.txt"), &target.join("moto-venv"))?;
    eprintln!("e2e: python environments {:.1}s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let release = target.join("release");
    let status = Command::new(release.join("iptvportal-e2e"))
        .arg("--cli")
        .arg(release.join("iptvportal"))
        .arg("--sim")
        .arg(release.join("iptvportal-sim"))
        .arg("--python")
        .arg(&python)
        .arg("--work")
        .arg(target.join("e2e-work"))
        .args(args)
        .env("MOTO_SERVER", moto.with_file_name("moto_server"))
        .status()
        .context("running the e2e harness")?;
    eprintln!("e2e: run {:.1}s", start.elapsed().as_secs_f64());
    if !status.success() {
        bail!(
            "the e2e run failed ({status}); outputs and logs are in {}",
            target.join("e2e-work").display()
        );
    }
    Ok(())
}

/// The venv's interpreter, with the pinned requirements installed.
fn python_env(requirements: &Path, venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    // The requirements file as last installed: equal means the venv already holds those versions.
    let marker = venv.join("installed-requirements.txt");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    if !python.exists() {
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let status =
            Command::new(&host).args(["-m", "venv"]).arg(venv).status().with_context(|| {
                format!("running {host} -m venv (the e2e readers need Python 3.11 or newer)")
            })?;
        if !status.success() {
            bail!(
                "{host} -m venv {} failed ({status}); on Debian, apt-get install python3-venv",
                venv.display()
            );
        }
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements)
        .status()
        .context("running pip install")?;
    if !status.success() {
        bail!("pip install -r {} failed ({status})", requirements.display());
    }
    std::fs::write(&marker, wanted)?;
    Ok(python)
}
