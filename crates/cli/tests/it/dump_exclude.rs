//! `--exclude TABLE` (with `--all`) and `--exclude-columns TABLE.COLUMN,...`: what is left out is
//! not in the output, a typo is refused before anything is sent, and an output written without
//! a column is not continued with it.

use crate::{Portal, bare, failure, run};

/// The first line of a file.
fn header(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_owned()
}

#[test]
fn excluded_tables_are_left_out_of_all() {
    let portal = Portal::every_table(12, 5);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("some");
    let r = run(portal.dump(&out).args([
        "--all",
        "--exclude",
        "subscriber",
        "--exclude",
        "tv_program_category",
        "--progress",
        "plain",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tables: Vec<&str> = r
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("table "))
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        tables,
        [
            "terminal",
            "package",
            "subscriber_package",
            "media",
            "tv_channel",
            "tv_program",
            "tv_category",
            "terminal_playlog"
        ]
    );
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "media.jsonl",
            "package.jsonl",
            "subscriber_package.jsonl",
            "terminal.jsonl",
            "terminal_playlog.jsonl",
            "tv_category.jsonl",
            "tv_channel.jsonl",
            "tv_program.jsonl"
        ]
    );
}

#[test]
fn excluded_columns_are_left_out_of_the_output() {
    let portal = Portal::every_table(12, 5);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("csv");
    let excluded = ["--exclude-columns", "subscriber.password,terminal.inet_addr"];
    let r =
        run(portal.dump(&out).args(["subscriber", "terminal", "--format", "csv"]).args(excluded));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        header(&out.join("subscriber.csv")),
        "id,username,disabled,email,first_name,middle_name,surname,phone,address,max_terminal,billing,type,business,domain_id,created_at"
    );
    assert_eq!(header(&out.join("terminal.csv")), "id,subscriber_id,mac_addr,registered,last_seen");
    let rows = std::fs::read_to_string(out.join("subscriber.csv")).unwrap().lines().count();
    assert_eq!(rows, 1 + 12);
    // Rerun as written: complete. Without the exclusion: another output, refused.
    let r =
        run(portal.dump(&out).args(["subscriber", "terminal", "--format", "csv"]).args(excluded));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = failure(portal.dump(&out).args(["terminal", "--format", "csv"]));
    let dir = out.display();
    assert_eq!(
        line,
        format!(
            "error: terminal: the checkpoint in {dir} was written with other options (columns was \
             id,subscriber_id,mac_addr,registered,last_seen and is now all); rerun with the same \
             options to resume, or start over with --reset"
        )
    );
    // Any number of them, several per table, in one flag or repeated.
    let out = root.path().join("jsonl");
    let r = run(portal.dump(&out).args([
        "subscriber",
        "--exclude-columns",
        "subscriber.password,subscriber.email",
        "--exclude-columns",
        "subscriber.phone",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = std::fs::read_to_string(out.join("subscriber.jsonl")).unwrap();
    let record = iptvportal_testkit::Ordered::parse(first.lines().next().unwrap());
    let keys = record.keys();
    assert_eq!(
        keys,
        [
            "id",
            "username",
            "disabled",
            "first_name",
            "middle_name",
            "surname",
            "address",
            "max_terminal",
            "billing",
            "type",
            "business",
            "domain_id",
            "created_at"
        ]
    );
}

#[test]
fn unknown_names_are_refused_before_connecting() {
    // No portal and no credentials: the names are checked first, against the catalog.
    let cases = [
        (
            &["dump", "--all", "--exclude", "subscribers"][..],
            "error: --exclude names \"subscribers\", which is not a table of the catalog; the \
             tables of --all are subscriber, terminal, package, subscriber_package, media, \
             tv_channel, tv_program, tv_category, tv_program_category, terminal_playlog",
        ),
        (
            &["dump", "subscriber", "--exclude-columns", "subscribers.password"],
            "error: --exclude-columns names \"subscribers\", which is not a table of the catalog; \
             the catalog's tables are subscriber, terminal, package, subscriber_package, media, \
             tv_channel, tv_program, tv_category, tv_program_category, terminal_playlog",
        ),
        (
            &["dump", "subscriber", "--exclude-columns", "subscriber.passwd"],
            "error: --exclude-columns names \"subscriber.passwd\", but subscriber has no column \
             \"passwd\"; the columns of subscriber are id, username, password, disabled, email, \
             first_name, middle_name, surname, phone, address, max_terminal, billing, type, \
             business, domain_id, created_at",
        ),
        (
            &["dump", "subscriber", "--exclude-columns", "password"],
            "error: --exclude-columns takes TABLE.COLUMN, got \"password\"; name the table too, \
             e.g. --exclude-columns subscriber.password",
        ),
        (
            &[
                "dump",
                "subscriber",
                "--columns",
                "id,username",
                "--exclude-columns",
                "subscriber.password",
            ],
            "error: --columns and --exclude-columns both name the columns of subscriber; give one \
             of them (--columns applies to every table of the command)",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(failure(bare().args(args)), expected, "{args:?}");
    }
    // A known table not dumped this time is checked too, and otherwise left alone.
    let line = failure(bare().args(["dump", "terminal", "--exclude-columns", "subscriber.pw"]));
    assert!(line.contains("subscriber has no column \"pw\""), "{line}");
    let line =
        failure(bare().args(["dump", "terminal", "--exclude-columns", "subscriber.password"]));
    assert!(line.starts_with("error: no portal given"), "{line}");
}

#[test]
fn excluding_every_column_fails_that_table_only() {
    let portal = Portal::every_table(12, 5);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("none");
    let r = run(portal.dump(&out).args([
        "tv_program_category",
        "tv_category",
        "--exclude-columns",
        "tv_program_category.program_id,tv_program_category.category_id",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: tv_program_category: --exclude-columns leaves none of its columns; leave at least \
         one column in, or --exclude the table from --all\n"
    );
    assert!(out.join("tv_category.jsonl").exists());
    assert!(!out.join("tv_program_category.jsonl").exists());
}

#[test]
fn the_config_file_excludes_until_the_command_line_says_otherwise() {
    let portal = Portal::every_table(12, 5);
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        "[dump]\nformat = \"csv\"\nexclude = [\"subscriber\", \"tv_program_category\", \"terminal_playlog\", \"tv_program\", \"tv_category\", \"media\", \"tv_channel\", \"subscriber_package\"]\nexclude_columns = [\"subscriber.password\", \"terminal.inet_addr\"]\n",
    )
    .unwrap();
    let dump = |out: &std::path::Path| {
        let mut command = portal.dump(out);
        command.arg("--config").arg(&config);
        command
    };
    let csv_files = |out: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "csv"))
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // `--all` leaves out the file's tables, and the file's columns.
    let out = root.path().join("all");
    let r = run(dump(&out).arg("--all"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(csv_files(&out), ["package.csv", "terminal.csv"]);
    assert_eq!(header(&out.join("terminal.csv")), "id,subscriber_id,mac_addr,registered,last_seen");
    // A table named on the command line is dumped although the file excludes it from --all, and
    // the file's column exclusions still apply to it.
    let out = root.path().join("named");
    let r = run(dump(&out).arg("subscriber"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!header(&out.join("subscriber.csv")).contains("password"));
    // `--exclude` and `--exclude-columns` on the command line replace the file's lists.
    let out = root.path().join("flags");
    let r = run(dump(&out).args([
        "--all",
        "--exclude",
        "subscriber",
        "--exclude",
        "tv_program_category",
        "--exclude",
        "terminal_playlog",
        "--exclude",
        "tv_program",
        "--exclude",
        "tv_category",
        "--exclude",
        "media",
        "--exclude",
        "tv_channel",
        "--exclude",
        "package",
        "--exclude-columns",
        "terminal.mac_addr",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(csv_files(&out), ["subscriber_package.csv", "terminal.csv"]);
    assert_eq!(
        header(&out.join("terminal.csv")),
        "id,subscriber_id,inet_addr,registered,last_seen"
    );
    // `--columns` names every column: the file's exclusions do not apply.
    let out = root.path().join("columns");
    let r = run(dump(&out).args(["subscriber", "--columns", "id,password"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(header(&out.join("subscriber.csv")), "id,password");
}
