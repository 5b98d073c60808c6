//! The documentation run as written: the tours of README.md and docs/dump.md (their ```` ```sh tour ````
//! blocks) command by command against `--demo`, the files their read snippets (```` ```python tour ````)
//! name, and every `--where` example of both against the demo's rows.

use std::path::Path;

use iptvportal_sim::SimConfig;

use crate::{Portal, bare, isolate, run, success};

/// A file of the workspace, as text.
fn doc(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The bodies of the fenced blocks of `markdown` whose info string is `info` (```` ```sh tour ````).
fn blocks(markdown: &str, info: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().strip_prefix("```").is_some_and(|i| i.trim() == info) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim_start() != "```").collect();
            found.push(body.join("\n"));
        }
    }
    found
}

/// The commands of a tour: its lines with continuations joined, without blank lines, comment
/// lines and the alias that stands for the binary.
fn commands(tour: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in tour.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
        } else {
            pending.push_str(line);
            commands.push(std::mem::take(&mut pending));
        }
    }
    assert!(pending.is_empty(), "the tour ends in a continuation: {pending}");
    commands.retain(|c| !c.starts_with("alias iptvportal="));
    commands
}

/// The relative file names (globs allowed) that a read snippet opens: its quoted words with a
/// `/` that end in an extension of a dump's files.
fn files_read(snippet: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 5] = [".jsonl", ".json", ".csv", ".gz", ".parquet"];
    let mut names = Vec::new();
    let mut rest = snippet;
    while let Some(start) = rest.find(['\'', '"']) {
        let quote = rest[start..].chars().next().expect("found");
        let after = &rest[start + 1..];
        match after.find(quote) {
            // A quoted word; a quoted phrase (an SQL string) is searched inside instead.
            Some(end) if !after[..end].contains(char::is_whitespace) => {
                let word = &after[..end];
                if word.contains('/') && EXTENSIONS.iter().any(|e| word.ends_with(e)) {
                    names.push(word.to_owned());
                }
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => name.strip_prefix(head).is_some_and(|rest| {
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }),
    }
}

/// Runs the tour of `path` in an empty directory, every command through `sh` with `iptvportal`
/// standing for the binary and no connection settings of the environment, then checks that every
/// file its read snippets name is there. Returns the number of commands run.
fn run_tour(path: &str) -> usize {
    let text = doc(path);
    let tours = blocks(&text, "sh tour");
    assert_eq!(tours.len(), 1, "{path} has one ```sh tour block");
    let commands = commands(&tours[0]);
    let dir = tempfile::tempdir().unwrap();
    for command in &commands {
        assert!(command.starts_with("iptvportal "), "{path}: not an iptvportal command: {command}");
        // Relative paths only, so that the tour runs anywhere (and here, in the temp directory).
        assert!(
            !command.split_whitespace().any(|w| w.starts_with(['/', '~'])),
            "{path}: an absolute path in {command}"
        );
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c")
            .arg(format!("iptvportal() {{ \"$IPTVPORTAL_TOUR_BIN\" \"$@\"; }}\n{command}"))
            .env("IPTVPORTAL_TOUR_BIN", env!("CARGO_BIN_EXE_iptvportal"))
            .current_dir(dir.path());
        let out = isolate(&mut sh).output().unwrap();
        assert!(
            out.status.success(),
            "{path}: `{command}` exited with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snippets = blocks(&text, "python tour");
    assert!(!snippets.is_empty(), "{path} has a ```python tour block");
    for snippet in &snippets {
        let names = files_read(snippet);
        assert!(!names.is_empty(), "{path}: a read snippet that names no file:\n{snippet}");
        for name in names {
            let (sub, pattern) = name.rsplit_once('/').expect("has a /");
            let found: Vec<String> = std::fs::read_dir(dir.path().join(sub))
                .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
                .unwrap_or_default();
            let matching: Vec<&String> = found.iter().filter(|f| glob(pattern, f)).collect();
            assert!(
                !matching.is_empty(),
                "{path}: the read snippet names {name}, which the tour does not create (it made {found:?} in {sub})"
            );
            for file in matching {
                let len = std::fs::metadata(dir.path().join(sub).join(file)).unwrap().len();
                assert!(len > 0, "{path}: {sub}/{file} is empty");
            }
        }
    }
    commands.len()
}

#[test]
fn the_readme_tour_runs_as_written() {
    assert!(run_tour("README.md") >= 10, "the README tour lost its commands");
}

#[test]
fn the_dump_guide_tour_runs_as_written() {
    assert!(run_tour("docs/dump.md") >= 3, "the docs/dump.md tour lost its commands");
}

#[test]
fn tours_are_read_as_a_shell_reads_them() {
    let tour = "alias iptvportal='cargo run --release --'   # the binary\n\n\
                # A comment.\n\
                iptvportal dump --demo a \\\n    --where x=1                # note\n\
                iptvportal status\n";
    assert_eq!(
        commands(tour),
        ["iptvportal dump --demo a --where x=1                # note", "iptvportal status"]
    );
    let snippet = r#"duckdb.sql("SELECT * FROM read_parquet('pq/t-*.parquet') WHERE d >= '2024-12-01'")
pd.read_csv("dumps/s.csv.gz", parse_dates=["registered"])"#;
    assert_eq!(files_read(snippet), ["pq/t-*.parquet", "dumps/s.csv.gz"]);
    assert!(glob("t-*.parquet", "t-00000.parquet") && glob("t.jsonl", "t.jsonl"));
    assert!(!glob("t-*.parquet", "u-00000.parquet") && !glob("t-*.parquet", "t-0.parquet.tmp"));
}

/// Every `--where` example of README.md and docs/dump.md, with the demo table it is written for;
/// an example with `{` is a `--where-json`. Each must match at least one row of the demo.
const FILTERS: &[(&str, &[&str])] = &[
    // README: the tour's select; docs/dump.md: the lookup table.
    ("tv_channel", &["name__icontains=hd"]),
    // README: the tour's filtered dump; docs/dump.md: the lookup table (each alone).
    ("subscriber", &["disabled=false", "billing__gte=10"]),
    ("subscriber", &["disabled=false"]),
    ("subscriber", &["billing__gte=10"]),
    // docs/dump.md: the library's `Q::lookup("billing__gte", 10)? & !Q::lookup("disabled", true)?`.
    ("subscriber", &["disabled=true"]),
    // README: the library; docs/dump.md: the incremental sync.
    ("terminal", &["last_seen__gte=2024-12-01"]),
    // docs/dump.md: the lookup table and the `--where-json` example.
    ("subscriber", &["type__ne=test"]),
    ("subscriber", &["id__in=1,2,3"]),
    ("package", &["name__ilike=HD%"]),
    ("terminal", &["mac_addr__startswith=00-1A"]),
    ("subscriber", &["email__isnull=true"]),
    ("subscriber", &[r#"{"or":[{"eq":["type","corporate"]},{"gte":["billing",100]}]}"#]),
];

/// The demo's data, in process: the simulator's default sizes with the demo's big tables
/// (`crates/cli/src/demo.rs`). [`the_demo_in_process_is_the_demo`] holds it to the real one.
fn demo() -> Portal {
    let mut config = SimConfig::default();
    let mut rows = iptvportal_sim::default_rows();
    rows.extend([("terminal", 200_000), ("tv_program", 100_000), ("terminal_playlog", 100_000)]);
    for (table, n) in rows {
        config = config.rows(table, n);
    }
    Portal::start(config)
}

/// `select` of the ids that `filters` match on `table`, at most `limit`, as JSON lines.
fn select_args(table: &str, filters: &[&str], limit: u32) -> Vec<String> {
    let mut args: Vec<String> =
        ["select", "--from", table, "--data", "id", "--order-by", "id", "--format", "jsonl"]
            .map(str::to_owned)
            .into();
    for filter in filters {
        let option = if filter.starts_with('{') { "--where-json" } else { "--where" };
        args.extend([option.to_owned(), (*filter).to_owned()]);
    }
    args.extend(["--limit".to_owned(), limit.to_string()]);
    args
}

#[test]
fn every_filter_example_matches_demo_rows() {
    let (readme, guide) = (doc("README.md"), doc("docs/dump.md"));
    let examples: Vec<String> =
        [&readme, &guide].into_iter().flat_map(|t| where_examples(t)).collect();
    // Every example here is one of the docs, so that a changed example fails until it is here...
    for (_, filters) in FILTERS {
        for filter in *filters {
            assert!(
                examples.iter().any(|e| e == filter)
                    || readme.contains(filter)
                    || guide.contains(filter),
                "{filter} is in neither README.md nor docs/dump.md"
            );
        }
    }
    // ...and every `--where` and `Q::lookup` of the docs is here, so that a new one is checked.
    let known: Vec<&str> = FILTERS.iter().flat_map(|(_, f)| f.iter().copied()).collect();
    for example in &examples {
        assert!(known.contains(&example.as_str()), "{example} is not in FILTERS");
    }
    let portal = demo();
    for (table, filters) in FILTERS {
        let out = success(portal.cmd().args(select_args(table, filters, 1)));
        assert_eq!(out.lines().count(), 1, "{table} {filters:?} matches no demo row");
    }
}

/// The filters the docs show as `--where FIELD__LOOKUP=VALUE` (a lower-case field, so not the
/// placeholder) and as `Q::lookup("field__lookup", "value")`.
fn where_examples(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("--where ") {
        let word: String =
            text[i + 8..].chars().take_while(|c| !c.is_whitespace() && *c != '`').collect();
        let word = word.trim_matches('\'').to_owned();
        if word.starts_with(|c: char| c.is_ascii_lowercase()) && word.contains('=') {
            found.push(word);
        }
    }
    for (i, _) in text.match_indices("Q::lookup(\"") {
        let args = &text[i + 11..];
        let Some((field, rest)) = args.split_once('"') else { continue };
        let value = rest.trim_start_matches([',', ' ']);
        let value = value.split_once(')').map_or(value, |(v, _)| v).trim_matches('"');
        found.push(format!("{field}={value}"));
    }
    found
}

#[test]
fn the_demo_in_process_is_the_demo() {
    let portal = demo();
    let tables = ["tables", "--format", "json"];
    let mine = success(portal.cmd().args(tables));
    let real = run(bare().arg("--demo").args(tables));
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert_eq!(mine, real.stdout, "the demo's tables differ from demo()'s");
    // The same rows, too: the example that once matched nothing, both ways.
    let args = select_args("terminal", &["last_seen__gte=2024-12-01"], 20);
    let mine = success(portal.cmd().args(&args));
    let real = success(bare().arg("--demo").args(&args));
    assert_eq!(mine, real);
    assert_eq!(real.lines().count(), 20, "{real}");
}
