//! Filter values typed from the catalog: for a table it knows, a `--where` value is read as its
//! column's type and sent so (text as text, even when it looks like a number), and a value of
//! another type is refused before any request or file, naming the column, its type and the value.

use iptvportal_sim::SimConfig;

use crate::{Portal, bare, failure, jsonl_ids, run, success};

const ADVICE: &str =
    "write the value as the column's type (docs/tables.md lists each column's type)";

fn subscribers() -> Portal {
    Portal::start(SimConfig::default().seed(3).rows("subscriber", 30))
}

#[test]
fn values_are_sent_as_their_columns_type() {
    let portal = subscribers();
    let ids = |filters: &[&str]| {
        let mut cmd = portal.cmd();
        cmd.args(["select", "--from", "subscriber", "--data", "id", "--format", "jsonl"]);
        for f in filters {
            cmd.args(["--where", f]);
        }
        jsonl_ids(&success(&mut cmd))
    };
    // A text column gets a string, even for digits: the portal refuses `text = integer`.
    assert_eq!(ids(&["phone=79123456789"]), Vec::<i64>::new());
    assert_eq!(ids(&["phone__in=79123456789,1"]), Vec::<i64>::new());
    // An integer column gets an integer, also when quoted; `__in` items each.
    let all = ids(&["created_at__gte=1970-01-01"]);
    assert_eq!(all.len(), 30);
    let (a, b, c) = (all[0], all[1], all[4]);
    assert_eq!(ids(&[&format!("id=\"{b}\"")]), [b]);
    let listed = format!("id__in={a},\"{b}\",{c}");
    assert_eq!(ids(&[&listed, "disabled__in=false,true"]), [a, b, c]);
    // A timestamp its text, a date alone (above) or with a time.
    assert_eq!(ids(&["created_at__gte=2100-01-01 00:00:00"]), Vec::<i64>::new());
}

#[test]
fn a_value_of_another_type_is_refused_before_anything() {
    // No portal and no credentials: the value is checked first.
    let line = failure(bare().args(["select", "--from", "terminal", "--where", "registered=true"]));
    assert_eq!(
        line,
        format!(
            "error: filter registered: expected a timestamp (2025-12-15 or 2025-12-15 10:00:00), got true; {ADVICE}"
        )
    );
    let line = failure(bare().args(["select", "--from", "terminal", "--where", "id__in=1,abc"]));
    assert_eq!(line, format!("error: filter id: expected an integer, got abc; {ADVICE}"));
    let line = failure(bare().args(["select", "--from", "package", "--where", "paid=yes"]));
    assert_eq!(
        line,
        format!("error: filter paid: expected a boolean (true or false), got yes; {ADVICE}")
    );
    let line = failure(bare().args(["select", "--from", "terminal", "--where", "id__contains=5"]));
    assert_eq!(
        line,
        "error: filter id: __contains matches text, and id is an integer column; compare it with \
         eq, ne, gt, gte, lt, lte or in instead (docs/tables.md lists each column's type)"
    );

    // `dump` refuses it before touching the output, `--where-json` too.
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    let line = failure(bare().args(["dump", "terminal", "--where", "id=abc", "--out"]).arg(&out));
    assert_eq!(line, format!("error: filter id: expected an integer, got abc; {ADVICE}"));
    let line = failure(
        bare()
            .args(["dump", "subscriber", "--where-json", r#"{"eq":["phone",79123456789]}"#])
            .arg("--out")
            .arg(&out),
    );
    assert_eq!(line, format!("error: filter phone: expected text, got 79123456789; {ADVICE}"));
    assert!(!out.exists());
}

#[test]
fn a_table_the_catalog_does_not_know_keeps_the_untyped_reading() {
    let portal = subscribers();
    // Sent as it is (an integer), and refused by the portal for the table, not the value.
    let r = run(portal.cmd().args(["select", "--from", "no_such_table", "--where", "id=abc"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no_such_table") && !r.stderr.contains("filter id"), "{}", r.stderr);
}
