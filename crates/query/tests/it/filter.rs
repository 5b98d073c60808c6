//! The CLI forms: `--where FIELD__LOOKUP=VALUE` and `--where-json`.

use std::fmt::Write;

use expect_test::expect;
use iptvportal_query::{Error, Q, parse_filter, parse_filters, parse_where_json};
use serde_json::json;

fn wire(s: &str) -> String {
    serde_json::to_string(&parse_filter(s).unwrap()).unwrap()
}

#[test]
fn filter_strings_and_their_json() {
    let inputs = [
        "balance__gte=10",
        "balance__lt=1.5",
        "disabled=false",
        "email=null",
        "email__ne=null",
        "name__icontains=hd",
        "name__contains=10",
        r#"name__contains="quoted""#,
        "name__startswith=50%",
        "name__like=HD%",
        "id__in=1,2,3",
        "id__in=[1,2]",
        r#"name__in="a,b",c,7"#,
        "id__in=1, 2",
        "email__isnull=true",
        "email__isnull=false",
        r#"name="1""#,
        "name=1",
        "created_at__gte=2025-12-15",
        "created_at__gte=2025-12-15 10:00:00",
        "name=",
        "phone=007",
        "code=18446744073709551616",
        "note=a=b",
        "  s.username = x",
        "name=Салям",
    ];
    let mut out = String::new();
    for s in inputs {
        writeln!(out, "{s} -> {}", wire(s)).unwrap();
    }
    expect![[r#"
        balance__gte=10 -> {"gte":["balance",10]}
        balance__lt=1.5 -> {"lt":["balance",1.5]}
        disabled=false -> {"eq":["disabled",false]}
        email=null -> {"is":["email",null]}
        email__ne=null -> {"is_not":["email",null]}
        name__icontains=hd -> {"ilike":["name","%hd%"]}
        name__contains=10 -> {"like":["name","%10%"]}
        name__contains="quoted" -> {"like":["name","%quoted%"]}
        name__startswith=50% -> {"like":["name","50\\%%"]}
        name__like=HD% -> {"like":["name","HD%"]}
        id__in=1,2,3 -> {"in":["id",1,2,3]}
        id__in=[1,2] -> {"in":["id",1,2]}
        name__in="a,b",c,7 -> {"in":["name","a,b","c",7]}
        id__in=1, 2 -> {"in":["id",1,2]}
        email__isnull=true -> {"is":["email",null]}
        email__isnull=false -> {"is_not":["email",null]}
        name="1" -> {"eq":["name","1"]}
        name=1 -> {"eq":["name",1]}
        created_at__gte=2025-12-15 -> {"gte":["created_at","2025-12-15"]}
        created_at__gte=2025-12-15 10:00:00 -> {"gte":["created_at","2025-12-15 10:00:00"]}
        name= -> {"eq":["name",""]}
        phone=007 -> {"eq":["phone","007"]}
        code=18446744073709551616 -> {"eq":["code","18446744073709551616"]}
        note=a=b -> {"eq":["note","a=b"]}
          s.username = x -> {"eq":[{"s":"username"}," x"]}
        name=Салям -> {"eq":["name","Салям"]}
    "#]]
    .assert_eq(&out);
}

#[test]
fn filter_agrees_with_lookup() {
    assert_eq!(parse_filter("balance__gte=10").unwrap(), Q::lookup("balance__gte", 10).unwrap());
    assert_eq!(
        parse_filter("id__in=1,2,3").unwrap(),
        Q::lookup("id__in", json!([1, 2, 3])).unwrap()
    );
    assert_eq!(
        parse_filter("email__isnull=true").unwrap(),
        Q::lookup("email__isnull", true).unwrap()
    );
    assert_eq!(parse_filter(r#"name="1""#).unwrap(), Q::lookup("name", "1").unwrap());
}

#[test]
fn filter_errors() {
    assert!(matches!(parse_filter("balance"), Err(Error::InvalidFilter { .. })));
    assert!(matches!(parse_filter(""), Err(Error::InvalidFilter { .. })));
    assert!(matches!(parse_filter("=10"), Err(Error::InvalidFilter { .. })));
    assert!(matches!(parse_filter("  =10"), Err(Error::InvalidFilter { .. })));
    assert!(matches!(parse_filter("balance__greater=10"), Err(Error::UnknownLookup { .. })));
    assert!(matches!(parse_filter("bal ance=10"), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(parse_filter("id; DROP TABLE x=1"), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(parse_filter("id__in="), Err(Error::EmptyIn { .. })));
    assert!(matches!(parse_filter("id__in=[]"), Err(Error::EmptyIn { .. })));
    assert!(matches!(parse_filter("id__in=1,null"), Err(Error::InvalidValue { .. })));
    assert!(matches!(parse_filter("email__isnull=yes"), Err(Error::InvalidValue { .. })));
    assert!(matches!(parse_filter("balance__gte=null"), Err(Error::InvalidValue { .. })));
    // The message names the form, since that is what the user got wrong.
    let Err(Error::InvalidFilter { reason, .. }) = parse_filter("balance") else {
        panic!("expected InvalidFilter")
    };
    assert!(reason.contains("FIELD__LOOKUP=VALUE"), "{reason}");
}

#[test]
fn filters_are_anded_and_flattened() {
    assert_eq!(parse_filters(Vec::<String>::new()).unwrap(), None);
    assert_eq!(parse_filters(["a=1"]).unwrap(), Some(Q::lookup("a", 1).unwrap()));
    let q = parse_filters(["a=1", "b__gt=2", "c__isnull=true"]).unwrap().unwrap();
    expect![[r#"{"and":[{"eq":["a",1]},{"gt":["b",2]},{"is":["c",null]}]}"#]]
        .assert_eq(&serde_json::to_string(&q).unwrap());
    assert!(matches!(parse_filters(["a=1", "b"]), Err(Error::InvalidFilter { .. })));
}

#[test]
fn where_json() {
    let e = parse_where_json(r#"{"or":[{"eq":["a",1]},{"like":["name","%x%"]}]}"#).unwrap();
    expect![[r#"{"or":[{"eq":["a",1]},{"like":["name","%x%"]}]}"#]]
        .assert_eq(&serde_json::to_string(&e).unwrap());
    assert!(matches!(parse_where_json("{"), Err(Error::InvalidFilter { .. })));
    assert!(matches!(parse_where_json(""), Err(Error::InvalidFilter { .. })));
    assert!(matches!(
        parse_where_json(r#"{"between":["id",1,2]}"#),
        Err(Error::UnknownOperator { .. })
    ));
    assert!(matches!(parse_where_json("[1]"), Err(Error::Malformed { .. })));
}
