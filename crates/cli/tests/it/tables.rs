//! `iptvportal tables`: every catalog table with its rows and id range on the portal, as the
//! portal's database holds them; a table the portal refuses is marked, the others still listed.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::{Portal, run, success};

#[test]
fn every_table_is_listed_with_the_rows_and_ids_the_portal_holds() {
    let portal = Portal::every_table(40, 3);
    let truths: Vec<_> = iptvportal_catalog::TABLES.iter().map(|t| (t, portal.truth(t))).collect();
    let mut want = String::from("table                rows  ids\n");
    let mut total = 0;
    for (table, (rows, ids)) in &truths {
        let ids = ids.map_or_else(|| "-".to_owned(), |(a, b)| format!("{a}..={b}"));
        writeln!(want, "{:<19}  {rows:>4}  {ids}", table.name).unwrap();
        total += rows;
    }
    writeln!(want, "10 tables, {total} rows").unwrap();
    assert_eq!(success(portal.cmd().arg("tables")), want);

    let json: Value =
        serde_json::from_str(&success(portal.cmd().args(["tables", "--format", "json"]))).unwrap();
    let want: Vec<Value> = truths
        .iter()
        .map(|(table, (rows, ids))| {
            json!({
                "table": table.name,
                "rows": rows,
                "ids": ids.map(|(min, max)| json!({"min": min, "max": max})),
            })
        })
        .collect();
    assert_eq!(json, Value::Array(want));
}

#[test]
fn a_table_the_portal_refuses_is_marked_and_the_others_still_listed() {
    let portal = Portal::every_table(40, 3);
    let db = rusqlite::Connection::open(portal.sim().db_path()).unwrap();
    db.execute_batch("DROP TABLE \"media\"").unwrap();
    drop(db);
    let r = run(portal.cmd().arg("tables"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let media = r.stdout.lines().find(|l| l.starts_with("media ")).unwrap();
    assert!(media.contains(" refused  "), "{media}");
    assert!(r.stdout.ends_with("(1 refused by the portal)\n"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 12, "a header, 10 tables, the summary");
    let json: Value =
        serde_json::from_str(&success(portal.cmd().args(["tables", "--format", "json"]))).unwrap();
    let media = json.as_array().unwrap().iter().find(|t| t["table"] == "media").unwrap();
    assert!(media["refused"].is_string(), "{media}");
}
