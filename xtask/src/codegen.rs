//! Generation of checked-in files from their single source of truth.
//!
//! Each generator is a pure function from sources to file contents; [`run`] either writes the files
//! or compares them, so `--check` can never disagree with what a write would produce.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::project_root;

/// Whether to write the generated files or only verify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Write,
    Check,
}

/// Regenerates (or checks) every generated file.
pub(crate) fn run(mode: Mode) -> Result<()> {
    let root = project_root();
    let mut stale = Vec::new();
    let generated = generate_all()?;
    for path in leftovers(&generated)? {
        match mode {
            Mode::Write => {
                std::fs::remove_file(root.join(&path))
                    .with_context(|| format!("removing {}", path.display()))?;
                println!("removed {}", path.display());
            }
            Mode::Check => stale.push(path.display().to_string()),
        }
    }
    for (path, contents) in generated {
        let full = root.join(&path);
        let current = std::fs::read_to_string(&full).unwrap_or_default();
        if current == contents {
            continue;
        }
        match mode {
            Mode::Write => {
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(&full, contents)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("updated {}", path.display());
            }
            Mode::Check => stale.push(path.display().to_string()),
        }
    }
    if !stale.is_empty() {
        bail!("generated files are stale: {}; run `cargo xtask codegen`", stale.join(", "));
    }
    Ok(())
}

/// The files of [`MAN_DIR`] that are not among `generated`, relative to the root.
fn leftovers(generated: &[(PathBuf, String)]) -> Result<Vec<PathBuf>> {
    let dir = project_root().join(MAN_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {MAN_DIR}")),
    };
    let mut left = Vec::new();
    for entry in entries {
        let path = PathBuf::from(MAN_DIR).join(entry?.file_name());
        if !generated.iter().any(|(p, _)| *p == path) {
            left.push(path);
        }
    }
    left.sort();
    Ok(left)
}

/// Every generated file: its path relative to the root, and its contents.
fn generate_all() -> Result<Vec<(PathBuf, String)>> {
    let root = project_root();
    let source =
        std::fs::read_to_string(root.join(CATALOG_SOURCE)).context("reading the catalog")?;
    let catalog: Catalog =
        toml::from_str(&source).context("parsing crates/catalog/catalog.toml")?;
    catalog.validate()?;
    Ok([
        (PathBuf::from("crates/catalog/src/generated.rs"), rustfmt(&catalog_rust(&catalog))?),
        (PathBuf::from("docs/tables.md"), catalog_markdown(&catalog)),
        (PathBuf::from("docs/cli.md"), cli_reference()?),
    ]
    .into_iter()
    .chain(man_pages()?)
    .collect())
}

/// docs/cli.md: what `iptvportal __reference` prints (clap's own help of every command).
fn cli_reference() -> Result<String> {
    cli_prints("__reference")
}

/// The directory of the man pages, which holds nothing else: a page no longer generated (a
/// subcommand removed or renamed) is stale, and a write removes it.
const MAN_DIR: &str = "docs/man";

/// docs/man/: the pages `iptvportal __man` renders with `clap_mangen`, one per visible command.
/// The cli renders them, since only it has the clap definitions; `clap_mangen` is its dependency.
fn man_pages() -> Result<Vec<(PathBuf, String)>> {
    let json = cli_prints("__man")?;
    let pages: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&json).context("parsing what `iptvportal __man` printed")?;
    pages
        .into_iter()
        .map(|(name, roff)| {
            // A file name, not a path: the cli must not write outside the directory.
            if name.contains(['/', '\\']) || name.starts_with('.') || !name.ends_with(".1") {
                bail!("`iptvportal __man` named a page {name:?}, which is not a file name");
            }
            Ok((PathBuf::from(MAN_DIR).join(name), roff))
        })
        .collect()
}

/// What `iptvportal ARG` prints, from a debug build of the cli, the same one the tests build.
fn cli_prints(arg: &str) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(project_root())
        .args(["run", "--quiet", "--locked", "-p", "iptvportal-cli", "--bin", "iptvportal", "--"])
        .arg(arg)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `iptvportal {arg}`"))?;
    if !output.status.success() {
        bail!("`iptvportal {arg}` failed ({})", output.status);
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`iptvportal {arg}` printed non-UTF-8"))
}

const CATALOG_SOURCE: &str = "crates/catalog/catalog.toml";
const HEADER: &str =
    "generated by `cargo xtask codegen` from crates/catalog/catalog.toml; do not edit";
const TYPES: [&str; 5] = ["integer", "float", "boolean", "text", "timestamp"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    table: Vec<TableDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableDef {
    name: String,
    description: String,
    id: Option<String>,
    /// The column that records when a row last changed (what `sync` reads a window of).
    change: Option<String>,
    columns: Vec<ColumnDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnDef {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    personal: bool,
}

impl Catalog {
    fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.table {
            if !seen.insert(&t.name) {
                bail!("catalog: table {} is defined twice", t.name);
            }
            if !is_identifier(&t.name) {
                bail!("catalog: {:?} is not a valid table name", t.name);
            }
            let mut cols = std::collections::HashSet::new();
            for c in &t.columns {
                if !is_identifier(&c.name) {
                    bail!("catalog: {}.{:?} is not a valid column name", t.name, c.name);
                }
                if !cols.insert(&c.name) {
                    bail!("catalog: column {}.{} is defined twice", t.name, c.name);
                }
                if c.sensitive && c.personal {
                    bail!("catalog: {}.{} is sensitive or personal, not both", t.name, c.name);
                }
                if !TYPES.contains(&c.ty.as_str()) {
                    bail!(
                        "catalog: {}.{} has unknown type {:?} (one of {})",
                        t.name,
                        c.name,
                        c.ty,
                        TYPES.join(", ")
                    );
                }
            }
            if let Some(id) = &t.id {
                match t.columns.iter().find(|c| &c.name == id) {
                    Some(c) if c.ty == "integer" && !c.nullable => {}
                    Some(_) => {
                        bail!("catalog: {}.{id} must be a non-null integer to be the id", t.name)
                    }
                    None => {
                        bail!("catalog: {} names id column {id}, which it does not have", t.name)
                    }
                }
            }
            if let Some(change) = &t.change {
                match t.columns.iter().find(|c| &c.name == change) {
                    Some(c) if c.ty == "timestamp" => {}
                    Some(_) => {
                        bail!(
                            "catalog: {}.{change} must be a timestamp to be the change column",
                            t.name
                        )
                    }
                    None => bail!(
                        "catalog: {} names change column {change}, which it does not have",
                        t.name
                    ),
                }
            }
        }
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn type_variant(ty: &str) -> &'static str {
    match ty {
        "integer" => "Integer",
        "float" => "Float",
        "boolean" => "Boolean",
        "text" => "Text",
        "timestamp" => "Timestamp",
        _ => unreachable!("validated"),
    }
}

fn catalog_rust(catalog: &Catalog) -> String {
    let mut out = String::new();
    writeln!(out, "//! The known tables: {HEADER}.").unwrap();
    writeln!(out).unwrap();
    writeln!(out, "use crate::{{Column, ColumnType, Table}};").unwrap();
    writeln!(out).unwrap();
    writeln!(out, "/// Every known table, in catalog order.").unwrap();
    writeln!(out, "pub static TABLES: &[Table] = &[").unwrap();
    for t in &catalog.table {
        writeln!(out, "Table {{ name: {:?}, description: {:?}, columns: &[", t.name, t.description)
            .unwrap();
        for c in &t.columns {
            writeln!(
                out,
                "Column {{ name: {:?}, ty: ColumnType::{}, nullable: {}, sensitive: {}, personal: {} }},",
                c.name,
                type_variant(&c.ty),
                c.nullable,
                c.sensitive,
                c.personal
            )
            .unwrap();
        }
        let id = t.id.as_ref().map_or_else(|| "None".to_owned(), |id| format!("Some({id:?})"));
        let change =
            t.change.as_ref().map_or_else(|| "None".to_owned(), |c| format!("Some({c:?})"));
        writeln!(out, "], id_column: {id}, change_column: {change} }},").unwrap();
    }
    writeln!(out, "];").unwrap();
    out
}

fn catalog_markdown(catalog: &Catalog) -> String {
    let mut out = String::new();
    writeln!(out, "<!-- {HEADER} -->").unwrap();
    writeln!(out, "# Known tables").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "The tables the catalog knows: their columns in order, with types. For these tables the"
    )
    .unwrap();
    writeln!(
        out,
        "output is named and typed from the catalog; any other table works too, with types"
    )
    .unwrap();
    writeln!(out, "inferred from the data.").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Columns marked **sensitive** hold secrets (a password, a token). They are exported like"
    )
    .unwrap();
    writeln!(
        out,
        "any other unless left out: `--exclude-columns TABLE.COLUMN` (docs/dump.md, \"Leaving columns"
    )
    .unwrap();
    writeln!(out, "and tables out\").").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Columns marked **personal data** identify a person or a household (a name, an e-mail"
    )
    .unwrap();
    writeln!(
        out,
        "address, a phone number, a street address, a device's MAC or IP address): an export that"
    )
    .unwrap();
    writeln!(
        out,
        "leaves the operator's systems may need them left out the same way, or a legal basis."
    )
    .unwrap();
    for t in &catalog.table {
        writeln!(out).unwrap();
        writeln!(out, "## `{}`", t.name).unwrap();
        writeln!(out).unwrap();
        let id = t.id.as_ref().map_or_else(
            || "no id column (OFFSET traversal only)".to_owned(),
            |id| format!("id column `{id}`"),
        );
        let change = t.change.as_ref().map_or_else(String::new, |c| {
            format!("; change column `{c}` (what `sync` reads changed rows by)")
        });
        writeln!(out, "{}; {id}{change}.", t.description).unwrap();
        writeln!(out).unwrap();
        writeln!(out, "| column | type | nullable | note |").unwrap();
        writeln!(out, "|---|---|---|---|").unwrap();
        for c in &t.columns {
            let note = if c.sensitive {
                format!("**sensitive**: `--exclude-columns {}.{}` leaves it out", t.name, c.name)
            } else if c.personal {
                format!(
                    "**personal data**: `--exclude-columns {}.{}` leaves it out",
                    t.name, c.name
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "| `{}` | {} | {} | {note} |",
                c.name,
                c.ty,
                if c.nullable { "yes" } else { "no" }
            )
            .unwrap();
        }
    }
    out
}

/// Formats Rust source exactly as `cargo fmt` would, so `cargo fmt --check` and `codegen --check`
/// never fight over a generated file.
fn rustfmt(source: &str) -> Result<String> {
    let root = project_root();
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned()))
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (install it with `rustup component add rustfmt`)")?;
    child.stdin.take().expect("piped").write_all(source.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("rustfmt failed on generated code: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in generated files match their sources (rust-analyzer's habit: codegen's check
    /// is an ordinary test, so a stale file fails `cargo test` as well as CI).
    #[test]
    fn generated_files_are_fresh() {
        if let Err(err) = run(Mode::Check) {
            panic!("{err:#}");
        }
    }

    #[test]
    fn invalid_catalogs_are_refused() {
        let bad = [
            (
                "[[table]]\nname='t'\ndescription='d'\ncolumns=[{name='a',type='blob'}]",
                "unknown type",
            ),
            (
                "[[table]]\nname='t'\ndescription='d'\nid='x'\ncolumns=[{name='a',type='integer'}]",
                "does not have",
            ),
            (
                "[[table]]\nname='t'\ndescription='d'\ncolumns=[{name='a',type='text'},{name='a',type='text'}]",
                "twice",
            ),
            ("[[table]]\nname='T-1'\ndescription='d'\ncolumns=[]", "not a valid table name"),
        ];
        for (src, expected) in bad {
            let catalog: Catalog = toml::from_str(src).unwrap();
            let err = catalog.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }
}
