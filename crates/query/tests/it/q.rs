//! `Q`: the exact JSON of every lookup, composition and flattening, serde both ways.

use std::fmt::Write;

use expect_test::expect;
use iptvportal_query::{Expr, LOOKUPS, Lookup, Q};
use serde_json::{Value, json};

fn wire(q: &Q) -> String {
    serde_json::to_string(q).unwrap()
}

#[test]
fn every_lookup_writes_its_json() {
    let cases: Vec<(&str, Value)> = vec![
        ("disabled", json!(false)),
        ("id__eq", json!(7)),
        ("email", json!(null)),
        ("username__ne", json!("admin")),
        ("email__ne", json!(null)),
        ("balance__gt", json!(1.5)),
        ("balance__gte", json!(10)),
        ("created_at__lt", json!("2025-12-15")),
        ("id__lte", json!(-1)),
        ("id__in", json!([1, 2, 3])),
        ("protocol__in", json!(["udp"])),
        ("name__like", json!("HD%")),
        ("name__ilike", json!("%hd_")),
        ("name__contains", json!("50%_off\\")),
        ("name__icontains", json!("hd")),
        ("name__startswith", json!("Sport")),
        ("name__endswith", json!("_HD")),
        ("name__contains", json!(10)),
        ("email__isnull", json!(true)),
        ("email__isnull", json!(false)),
        ("s.username__eq", json!("Салям")),
        ("t.id__in", json!([5])),
    ];
    let mut out = String::new();
    for (field, value) in cases {
        writeln!(out, "{field} {value} -> {}", wire(&Q::lookup(field, value.clone()).unwrap()))
            .unwrap();
    }
    expect![[r#"
        disabled false -> {"eq":["disabled",false]}
        id__eq 7 -> {"eq":["id",7]}
        email null -> {"is":["email",null]}
        username__ne "admin" -> {"neq":["username","admin"]}
        email__ne null -> {"is_not":["email",null]}
        balance__gt 1.5 -> {"gt":["balance",1.5]}
        balance__gte 10 -> {"gte":["balance",10]}
        created_at__lt "2025-12-15" -> {"lt":["created_at","2025-12-15"]}
        id__lte -1 -> {"lte":["id",-1]}
        id__in [1,2,3] -> {"in":["id",1,2,3]}
        protocol__in ["udp"] -> {"in":["protocol","udp"]}
        name__like "HD%" -> {"like":["name","HD%"]}
        name__ilike "%hd_" -> {"ilike":["name","%hd_"]}
        name__contains "50%_off\\" -> {"like":["name","%50\\%\\_off\\\\%"]}
        name__icontains "hd" -> {"ilike":["name","%hd%"]}
        name__startswith "Sport" -> {"like":["name","Sport%"]}
        name__endswith "_HD" -> {"like":["name","%\\_HD"]}
        name__contains 10 -> {"like":["name","%10%"]}
        email__isnull true -> {"is":["email",null]}
        email__isnull false -> {"is_not":["email",null]}
        s.username__eq "Салям" -> {"eq":[{"s":"username"},"Салям"]}
        t.id__in [5] -> {"in":[{"t":"id"},5]}
    "#]]
    .assert_eq(&out);
}

#[test]
fn every_lookup_is_covered_and_listed() {
    assert_eq!(LOOKUPS.len(), Lookup::ALL.len());
    for (name, lookup) in LOOKUPS.iter().zip(Lookup::ALL) {
        assert_eq!(*name, lookup.as_str());
        assert_eq!(Lookup::from_suffix(name), Some(lookup));
        let value = match lookup {
            Lookup::In => json!([1]),
            Lookup::Isnull => json!(true),
            _ => json!("x"),
        };
        let q = Q::lookup(&format!("col__{name}"), value.clone()).unwrap();
        assert_eq!(q, Q::new("col", lookup, value).unwrap());
    }
}

#[test]
fn composition_flattens_same_operators_only() {
    let a = || Q::lookup("a", 1).unwrap();
    let b = || Q::lookup("b", 2).unwrap();
    let c = || Q::lookup("c", 3).unwrap();
    expect![[r#"{"and":[{"eq":["a",1]},{"eq":["b",2]},{"eq":["c",3]}]}"#]]
        .assert_eq(&wire(&((a() & b()) & c())));
    expect![[r#"{"and":[{"eq":["a",1]},{"eq":["b",2]},{"eq":["c",3]}]}"#]]
        .assert_eq(&wire(&(a() & (b() & c()))));
    expect![[r#"{"or":[{"eq":["a",1]},{"eq":["b",2]},{"eq":["c",3]}]}"#]]
        .assert_eq(&wire(&(a() | b() | c())));
    expect![[r#"{"and":[{"eq":["a",1]},{"or":[{"eq":["b",2]},{"eq":["c",3]}]}]}"#]]
        .assert_eq(&wire(&(a() & (b() | c()))));
    expect![[r#"{"or":[{"and":[{"eq":["a",1]},{"eq":["b",2]}]},{"eq":["c",3]}]}"#]]
        .assert_eq(&wire(&(a() & b() | c())));
    expect![[r#"{"not":[{"eq":["a",1]}]}"#]].assert_eq(&wire(&!a()));
    expect![[r#"{"not":[{"not":[{"eq":["a",1]}]}]}"#]].assert_eq(&wire(&!!a()));
    expect![[r#"{"and":[{"not":[{"or":[{"eq":["a",1]},{"eq":["b",2]}]}]},{"eq":["c",3]}]}"#]]
        .assert_eq(&wire(&(!(a() | b()) & c())));
}

#[test]
fn serde_goes_through_expr() {
    let q = Q::lookup("balance__gte", 10).unwrap() & !Q::lookup("email__isnull", true).unwrap();
    let text = wire(&q);
    let back: Q = serde_json::from_str(&text).unwrap();
    assert_eq!(back, q);
    assert_eq!(Q::from_json(&q.to_json().unwrap()).unwrap(), q);
    let expr: Expr = q.clone().into();
    assert_eq!(&expr, q.expr());
    assert_eq!(Q::from_expr(expr.clone()), q);
    assert_eq!(q.into_expr(), expr);
    // A Q is accepted wherever the wire reads an Expr.
    let as_expr: Expr = serde_json::from_str(&text).unwrap();
    assert_eq!(as_expr, expr);
}

#[test]
fn deserialize_refuses_bad_where() {
    assert!(serde_json::from_str::<Q>(r#"{"between":["id",1,2]}"#).is_err());
    assert!(serde_json::from_str::<Q>(r#"{"eq":["id; DROP TABLE x",1]}"#).is_err());
}

/// The example of the crate's README, so its JSON stays true.
#[test]
fn readme_example() {
    use iptvportal_query::{OrderBy, Select, parse_filter};

    let q = (Q::lookup("balance__gte", 10).unwrap() | Q::lookup("email__isnull", true).unwrap())
        & parse_filter("name__icontains=hd").unwrap();
    expect![[r#"{"and":[{"or":[{"gte":["balance",10]},{"is":["email",null]}]},{"ilike":["name","%hd%"]}]}"#]].assert_eq(&wire(&q));
    let select = Select::from("subscriber")
        .unwrap()
        .columns(["id", "username"])
        .unwrap()
        .filter(q.into())
        .order_by(OrderBy::asc("id").unwrap())
        .limit(5000);
    expect![[r#"{"data":["id","username"],"from":"subscriber","limit":5000,"order_by":"id ASC","where":{"and":[{"or":[{"gte":["balance",10]},{"is":["email",null]}]},{"ilike":["name","%hd%"]}]}}"#]].assert_eq(&serde_json::to_string(&select).unwrap());
}
