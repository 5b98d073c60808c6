//! Wire snapshots: every JSONSQL form of the wire brief, written exactly and read back equal.

use expect_test::{Expect, expect};
use iptvportal_query::{
    ColumnRef, Direction, Error, Expr, FromClause, Function, InList, Join, JoinKind, Operand,
    OrderBy, Q, Scalar, Select, TableRef,
};
use serde_json::Value;

/// Parses select params, checks that our JSON reads back equal and is a fixed point, returns it.
fn read_back_select(input: &str) -> String {
    let value: Value = serde_json::from_str(input).unwrap();
    let parsed = Select::from_json(&value).unwrap();
    let written = serde_json::to_string(&parsed).unwrap();
    let back: Select = serde_json::from_str(&written).unwrap();
    assert_eq!(back, parsed, "{written}");
    // Writing what we read gives the same bytes.
    assert_eq!(serde_json::to_string(&back).unwrap(), written);
    written
}

/// The same for a `where` condition.
fn read_back_cond(input: &str) -> String {
    let parsed: Expr = serde_json::from_str(input).unwrap();
    let written = serde_json::to_string(&parsed).unwrap();
    let back: Expr = serde_json::from_str(&written).unwrap();
    assert_eq!(back, parsed, "{written}");
    assert_eq!(serde_json::to_string(&back).unwrap(), written);
    written
}

fn select(input: &str, expect: &Expect) {
    expect.assert_eq(&read_back_select(input));
}

fn cond(input: &str, expect: &Expect) {
    expect.assert_eq(&read_back_cond(input));
}

#[test]
fn data_star_as_a_bare_string() {
    select(
        r#"{"data":"*","from":"subscriber"}"#,
        &expect![[r#"{"data":["*"],"from":"subscriber"}"#]],
    );
}

#[test]
fn data_columns() {
    select(
        r#"{"data":["id","username"],"from":"subscriber"}"#,
        &expect![[r#"{"data":["id","username"],"from":"subscriber"}"#]],
    );
    select(
        r#"{"data":"id","from":"subscriber"}"#,
        &expect![[r#"{"data":["id"],"from":"subscriber"}"#]],
    );
}

#[test]
fn data_qualified_columns_and_from_alias() {
    select(
        r#"{"data":[{"s":"id"},{"s":"username"}],"from":{"table":"subscriber","as":"s"}}"#,
        &expect![[
            r#"{"data":[{"s":"id"},{"s":"username"}],"from":{"as":"s","table":"subscriber"}}"#
        ]],
    );
}

#[test]
fn data_functions() {
    select(
        r#"{"data":[{"function":"count","args":["*"],"as":"cnt"}],"from":"media"}"#,
        &expect![[r#"{"data":[{"args":["*"],"as":"cnt","function":"count"}],"from":"media"}"#]],
    );
    // A single argument may come bare; we always write the array.
    select(
        r#"{"data":[{"function":"max","args":"id"}],"from":"media"}"#,
        &expect![[r#"{"data":[{"args":["id"],"function":"max"}],"from":"media"}"#]],
    );
    select(
        r#"{"data":[{"function":"count","args":{"function":"distinct","args":"inet_addr"}}],"from":"media"}"#,
        &expect![[
            r#"{"data":[{"args":[{"args":["inet_addr"],"function":"distinct"}],"function":"count"}],"from":"media"}"#
        ]],
    );
    select(
        r#"{"data":[{"function":"min","args":["id"],"as":"lo"},{"function":"max","args":["id"],"as":"hi"}],"from":"media"}"#,
        &expect![[
            r#"{"data":[{"args":["id"],"as":"lo","function":"min"},{"args":["id"],"as":"hi","function":"max"}],"from":"media"}"#
        ]],
    );
}

#[test]
fn from_with_joins() {
    select(
        r#"{"data":[{"t":"mac_addr"},{"s":"username"}],"from":[{"table":"terminal","as":"t"},{"join":"subscriber","join_type":"left","as":"s","on":{"eq":[{"t":"subscriber_id"},{"s":"id"}]}}]}"#,
        &expect![[
            r#"{"data":[{"t":"mac_addr"},{"s":"username"}],"from":[{"as":"t","table":"terminal"},{"as":"s","join":"subscriber","join_type":"left","on":{"eq":[{"t":"subscriber_id"},{"s":"id"}]}}]}"#
        ]],
    );
    // No join_type means inner, written explicitly.
    select(
        r#"{"data":"*","from":["subscriber_package",{"join":"package","on":{"eq":[{"subscriber_package":"package_id"},{"package":"id"}]}}]}"#,
        &expect![[
            r#"{"data":["*"],"from":["subscriber_package",{"join":"package","join_type":"inner","on":{"eq":[{"subscriber_package":"package_id"},{"package":"id"}]}}]}"#
        ]],
    );
}

#[test]
fn where_comparisons() {
    cond(r#"{"eq":["id",1]}"#, &expect![[r#"{"eq":["id",1]}"#]]);
    cond(r#"{"neq":["username","admin"]}"#, &expect![[r#"{"neq":["username","admin"]}"#]]);
    cond(r#"{"gt":["balance",1.5]}"#, &expect![[r#"{"gt":["balance",1.5]}"#]]);
    cond(r#"{"gte":["balance",10]}"#, &expect![[r#"{"gte":["balance",10]}"#]]);
    cond(
        r#"{"lt":["created_at","2023-01-01 10:00:00"]}"#,
        &expect![[r#"{"lt":["created_at","2023-01-01 10:00:00"]}"#]],
    );
    cond(r#"{"lte":["id",-5]}"#, &expect![[r#"{"lte":["id",-5]}"#]]);
    cond(r#"{"eq":["disabled",false]}"#, &expect![[r#"{"eq":["disabled",false]}"#]]);
    cond(
        r#"{"eq":[{"s":"id"},{"t":"subscriber_id"}]}"#,
        &expect![[r#"{"eq":[{"s":"id"},{"t":"subscriber_id"}]}"#]],
    );
    cond(r#"{"eq":["name","Салям"]}"#, &expect![[r#"{"eq":["name","Салям"]}"#]]);
}

#[test]
fn where_is_and_is_not() {
    cond(r#"{"is":["email",null]}"#, &expect![[r#"{"is":["email",null]}"#]]);
    cond(r#"{"is_not":["email",null]}"#, &expect![[r#"{"is_not":["email",null]}"#]]);
    cond(r#"{"is":["disabled",true]}"#, &expect![[r#"{"is":["disabled",true]}"#]]);
}

#[test]
fn where_in() {
    cond(r#"{"in":["id",1,2,3]}"#, &expect![[r#"{"in":["id",1,2,3]}"#]]);
    cond(r#"{"in":["protocol","udp","http"]}"#, &expect![[r#"{"in":["protocol","udp","http"]}"#]]);
    cond(
        r#"{"in":["id",{"data":["subscriber_id"],"from":"terminal","where":{"eq":["registered",true]}}]}"#,
        &expect![[
            r#"{"in":["id",{"data":["subscriber_id"],"from":"terminal","where":{"eq":["registered",true]}}]}"#
        ]],
    );
}

#[test]
fn where_like_and_ilike() {
    cond(r#"{"like":["name","%HD%"]}"#, &expect![[r#"{"like":["name","%HD%"]}"#]]);
    cond(r#"{"ilike":["name","hd\\_%"]}"#, &expect![[r#"{"ilike":["name","hd\\_%"]}"#]]);
}

#[test]
fn where_and_or_not() {
    cond(
        r#"{"and":[{"gte":["balance",10]},{"or":[{"is":["email",null]},{"not":[{"eq":["disabled",true]}]}]}]}"#,
        &expect![[
            r#"{"and":[{"gte":["balance",10]},{"or":[{"is":["email",null]},{"not":[{"eq":["disabled",true]}]}]}]}"#
        ]],
    );
    cond(r#"{"and":[{"eq":["id",1]}]}"#, &expect![[r#"{"and":[{"eq":["id",1]}]}"#]]);
    // The bare-operand `not` reads the same and is written in the array form.
    cond(
        r#"{"not":{"eq":["disabled",true]}}"#,
        &expect![[r#"{"not":[{"eq":["disabled",true]}]}"#]],
    );
    assert_eq!(
        serde_json::from_str::<Expr>(r#"{"not":{"eq":["disabled",true]}}"#).unwrap(),
        serde_json::from_str::<Expr>(r#"{"not":[{"eq":["disabled",true]}]}"#).unwrap(),
    );
}

#[test]
fn order_by_forms() {
    select(
        r#"{"data":"*","from":"t","order_by":"name"}"#,
        &expect![[r#"{"data":["*"],"from":"t","order_by":"name"}"#]],
    );
    select(
        r#"{"data":"*","from":"t","order_by":"id DESC"}"#,
        &expect![[r#"{"data":["*"],"from":"t","order_by":"id DESC"}"#]],
    );
    select(
        r#"{"data":"*","from":"t","order_by":"id asc"}"#,
        &expect![[r#"{"data":["*"],"from":"t","order_by":"id ASC"}"#]],
    );
    select(
        r#"{"data":"*","from":{"table":"subscriber","as":"s"},"order_by":{"s":"username"}}"#,
        &expect![[
            r#"{"data":["*"],"from":{"as":"s","table":"subscriber"},"order_by":{"s":"username"}}"#
        ]],
    );
    select(
        r#"{"data":"*","from":"t","order_by":["name",{"t":"id DESC"}]}"#,
        &expect![[r#"{"data":["*"],"from":"t","order_by":["name",{"t":"id DESC"}]}"#]],
    );
    // A one-item array is written as the item.
    select(
        r#"{"data":"*","from":"t","order_by":["id"]}"#,
        &expect![[r#"{"data":["*"],"from":"t","order_by":"id"}"#]],
    );
}

#[test]
fn limit_offset_distinct_group_by() {
    select(
        r#"{"distinct":true,"data":["protocol",{"function":"count","args":["*"],"as":"n"}],"from":"media","where":{"eq":["is_tv",true]},"group_by":["protocol",{"media":"port"}],"order_by":"protocol","limit":10,"offset":20}"#,
        &expect![[
            r#"{"data":["protocol",{"args":["*"],"as":"n","function":"count"}],"distinct":true,"from":"media","group_by":["protocol",{"media":"port"}],"limit":10,"offset":20,"order_by":"protocol","where":{"eq":["is_tv",true]}}"#
        ]],
    );
    // Defaults are left out: distinct false, null where, single group_by.
    select(
        r#"{"distinct":false,"data":"*","from":"t","where":null,"group_by":"a","limit":0,"offset":0}"#,
        &expect![[r#"{"data":["*"],"from":"t","group_by":["a"],"limit":0,"offset":0}"#]],
    );
}

#[test]
fn select_built_in_code() {
    let q = Q::lookup("balance__gte", 10).unwrap() & Q::lookup("disabled", false).unwrap();
    let select = Select::from("subscriber")
        .unwrap()
        .columns(["id", "username"])
        .unwrap()
        .filter(q.into())
        .filter(Q::lookup("id__gt", 5000).unwrap().into())
        .order_by(OrderBy::asc("id").unwrap())
        .limit(5000)
        .offset(10000);
    let written = serde_json::to_string(&select).unwrap();
    expect![[r#"{"data":["id","username"],"from":"subscriber","limit":5000,"offset":10000,"order_by":"id ASC","where":{"and":[{"gte":["balance",10]},{"eq":["disabled",false]},{"gt":["id",5000]}]}}"#]]
    .assert_eq(&written);
    assert_eq!(serde_json::from_str::<Select>(&written).unwrap(), select);

    let count = Select::from("media")
        .unwrap()
        .data(vec![Function::count_star().alias("cnt").unwrap().into()]);
    expect![[r#"{"data":[{"args":["*"],"as":"cnt","function":"count"}],"from":"media"}"#]]
        .assert_eq(&serde_json::to_string(&count).unwrap());
}

#[test]
fn ast_shapes_of_parsed_forms() {
    let parsed: Select = serde_json::from_str(
        r#"{"data":[{"t":"id"}],"from":[{"table":"terminal","as":"t"},{"join":"subscriber","join_type":"left","as":"s"}],"order_by":{"t":"id DESC"}}"#,
    )
    .unwrap();
    assert_eq!(parsed.data, vec![Operand::Column(ColumnRef::qualified("t", "id").unwrap())]);
    assert_eq!(
        parsed.from,
        FromClause {
            table: TableRef { name: "terminal".into(), alias: Some("t".into()) },
            joins: vec![Join {
                table: TableRef { name: "subscriber".into(), alias: Some("s".into()) },
                kind: JoinKind::Left,
                on: None
            }],
        }
    );
    assert_eq!(
        parsed.order_by,
        vec![OrderBy {
            column: ColumnRef::qualified("t", "id").unwrap(),
            direction: Some(Direction::Desc)
        }]
    );
    let cond: Expr = serde_json::from_str(r#"{"in":["id",1,"x",null]}"#).unwrap();
    assert_eq!(
        cond,
        Expr::In {
            left: Operand::column("id").unwrap(),
            list: InList::Values(vec![
                Operand::Literal(Scalar::Int(1)),
                Operand::Literal(Scalar::String("x".into())),
                Operand::Literal(Scalar::Null),
            ]),
        }
    );
}

/// Every literal example of `jsonsql-wire.md`, read in context and written back.
#[test]
fn wire_brief_literal_examples() {
    let mut out = String::new();
    let data_items = [
        r#""col""#,
        r#""*""#,
        r#"{"t":"col"}"#,
        r#"{"function":"count","args":["*"],"as":"cnt"}"#,
        r#"{"function":"max","args":"id"}"#,
        r#"{"function":"count","args":{"function":"distinct","args":"inet_addr"}}"#,
    ];
    for item in data_items {
        out.push_str(&read_back_select(&format!(r#"{{"data":[{item}],"from":"t"}}"#)));
        out.push('\n');
    }
    for from in [
        r#""table""#,
        r#"{"table":"subscriber","as":"s"}"#,
        r#"["terminal",{"join":"subscriber","join_type":"left","as":"s","on":{"eq":[{"terminal":"subscriber_id"},{"s":"id"}]}}]"#,
    ] {
        out.push_str(&read_back_select(&format!(r#"{{"data":"*","from":{from}}}"#)));
        out.push('\n');
    }
    let e = r#"{"eq":["a",1]}"#;
    for cond_json in [
        r#"{"gte":["balance",10]}"#.to_owned(),
        r#"{"is":["col",null]}"#.to_owned(),
        r#"{"in":["id",1,2,3]}"#.to_owned(),
        format!(r#"{{"and":[{e},{e}]}}"#),
        format!(r#"{{"or":[{e},{e}]}}"#),
        format!(r#"{{"not":[{e}]}}"#),
        format!(r#"{{"not":{e}}}"#),
    ] {
        out.push_str(&read_back_cond(&cond_json));
        out.push('\n');
    }
    for order in [r#""name""#, r#"{"s":"username"}"#, r#"["name",{"s":"username"}]"#] {
        out.push_str(&read_back_select(&format!(
            r#"{{"data":"*","from":"t","order_by":{order}}}"#
        )));
        out.push('\n');
    }
    expect![[r#"
        {"data":["col"],"from":"t"}
        {"data":["*"],"from":"t"}
        {"data":[{"t":"col"}],"from":"t"}
        {"data":[{"args":["*"],"as":"cnt","function":"count"}],"from":"t"}
        {"data":[{"args":["id"],"function":"max"}],"from":"t"}
        {"data":[{"args":[{"args":["inet_addr"],"function":"distinct"}],"function":"count"}],"from":"t"}
        {"data":["*"],"from":"table"}
        {"data":["*"],"from":{"as":"s","table":"subscriber"}}
        {"data":["*"],"from":["terminal",{"as":"s","join":"subscriber","join_type":"left","on":{"eq":[{"terminal":"subscriber_id"},{"s":"id"}]}}]}
        {"gte":["balance",10]}
        {"is":["col",null]}
        {"in":["id",1,2,3]}
        {"and":[{"eq":["a",1]},{"eq":["a",1]}]}
        {"or":[{"eq":["a",1]},{"eq":["a",1]}]}
        {"not":[{"eq":["a",1]}]}
        {"not":[{"eq":["a",1]}]}
        {"data":["*"],"from":"t","order_by":"name"}
        {"data":["*"],"from":"t","order_by":{"s":"username"}}
        {"data":["*"],"from":"t","order_by":["name",{"s":"username"}]}
    "#]].assert_eq(&out);

    // The `params` of the brief's JSON-RPC call shape, as the client sends them.
    let body: Value = serde_json::from_str(
        r#"{"jsonrpc":"2.0","id":3,"method":"select","params":{"data":["id","name"],"from":"tv_channel","order_by":"id","limit":2}}"#,
    )
    .unwrap();
    let params = Select::from_json(&body["params"]).unwrap();
    assert_eq!(params.to_json().unwrap(), body["params"]);
}

#[test]
fn unrepresentable_trees_are_refused_on_write() {
    let column = |n: &str| Operand::column(n).unwrap();
    // A plain string after the first operand reads back as a literal.
    let e = Expr::Compare {
        op: iptvportal_query::CompareOp::Eq,
        left: column("a"),
        right: column("b"),
    };
    assert!(matches!(e.to_json(), Err(Error::Unrepresentable { .. })));
    // A string literal first reads back as a column.
    let e = Expr::Compare {
        op: iptvportal_query::CompareOp::Eq,
        left: Operand::Literal(Scalar::String("x".into())),
        right: column("b"),
    };
    assert!(matches!(e.to_json(), Err(Error::Unrepresentable { .. })));
    let e = Expr::Compare {
        op: iptvportal_query::CompareOp::Eq,
        left: column("a"),
        right: Operand::Star,
    };
    assert!(matches!(e.to_json(), Err(Error::Unrepresentable { .. })));
    assert!(matches!(Expr::And(Vec::new()).to_json(), Err(Error::Unrepresentable { .. })));
    assert!(matches!(Expr::Or(Vec::new()).to_json(), Err(Error::Unrepresentable { .. })));
    let e = Expr::In { left: column("id"), list: InList::Values(Vec::new()) };
    assert!(matches!(e.to_json(), Err(Error::Unrepresentable { .. })));
    let e = Expr::Is {
        negated: false,
        left: Operand::Column(ColumnRef { table: Some("function".into()), name: "x".into() }),
        right: Operand::Literal(Scalar::Null),
    };
    assert!(matches!(e.to_json(), Err(Error::Unrepresentable { .. })));
    let s = Select::from("t").unwrap().data(Vec::new());
    assert!(matches!(s.to_json(), Err(Error::Unrepresentable { .. })));
    // Serde reports the same refusal instead of writing bad JSON.
    assert!(serde_json::to_string(&s).is_err());
}

#[test]
fn bad_names_in_public_fields_are_refused_on_write() {
    let bad = ColumnRef { table: None, name: "id; DROP TABLE x".into() };
    let e = Expr::Is {
        negated: false,
        left: Operand::Column(bad.clone()),
        right: Operand::Literal(Scalar::Null),
    };
    assert!(matches!(e.to_json(), Err(Error::InvalidIdentifier { .. })));
    let mut s = Select::from("t").unwrap();
    s.from.table.name = "t x".into();
    assert!(matches!(s.to_json(), Err(Error::InvalidIdentifier { .. })));
    let mut s = Select::from("t").unwrap();
    s.order_by.push(OrderBy { column: bad.clone(), direction: None });
    assert!(matches!(s.to_json(), Err(Error::InvalidIdentifier { .. })));
    let mut s = Select::from("t").unwrap();
    s.group_by.push(bad);
    assert!(matches!(s.to_json(), Err(Error::InvalidIdentifier { .. })));
    let f = Function { name: "count(*)".into(), args: vec![Operand::Star], alias: None };
    let s = Select::from("t").unwrap().data(vec![f.into()]);
    assert!(matches!(s.to_json(), Err(Error::InvalidIdentifier { .. })));
}

/// The read-only forms public sources show against real portals (docs/jsonsql-dialect.md, "Forms
/// read but never written"): each parses to the tree of the canonical form, which is what is
/// written back.
#[test]
fn read_only_forms_of_public_sources() {
    // Dotted columns in data, function arguments, order_by and group_by.
    select(
        r#"{"data":["terminal.id",{"function":"count","args":["subscriber.id"]}],"from":"terminal","group_by":["subscriber.id","subscriber.username"],"order_by":"terminal.id DESC"}"#,
        &expect![[
            r#"{"data":[{"terminal":"id"},{"args":[{"subscriber":"id"}],"function":"count"}],"from":"terminal","group_by":[{"subscriber":"id"},{"subscriber":"username"}],"order_by":{"terminal":"id DESC"}}"#
        ]],
    );
    // A qualified column with an alias; the short function form, nested.
    select(
        r#"{"data":[{"terminal_playlog":"start","as":"playlog__start"},{"concat":["protocol","://","inet_addr"],"as":"mrl"}],"from":"media"}"#,
        &expect![[
            r#"{"data":[{"as":"playlog__start","terminal_playlog":"start"},{"args":["protocol","://","inet_addr"],"as":"mrl","function":"concat"}],"from":"media"}"#
        ]],
    );
    // `{"select":{…}}` and `{"values":[[…]]}` in `in`; a bare `not`; having.
    cond(
        r#"{"in":["subscriber_id",{"select":{"data":"id","from":"subscriber","where":{"eq":["username","test"]}}}]}"#,
        &expect![[
            r#"{"in":["subscriber_id",{"data":["id"],"from":"subscriber","where":{"eq":["username","test"]}}]}"#
        ]],
    );
    cond(
        r#"{"in":["username",{"values":[["12345"],["123456"]]}]}"#,
        &expect![[r#"{"in":["username","12345","123456"]}"#]],
    );
    cond(r#"{"not":"disabled"}"#, &expect![[r#"{"not":[{"eq":["disabled",true]}]}"#]]);
    select(
        r#"{"data":["subscriber_id",{"function":"count","args":"*","as":"n"}],"from":"terminal","group_by":"subscriber_id","having":{"gt":[{"function":"count","args":"*"},2]}}"#,
        &expect![[
            r#"{"data":["subscriber_id",{"args":["*"],"as":"n","function":"count"}],"from":"terminal","group_by":["subscriber_id"],"having":{"gt":[{"args":["*"],"function":"count"},2]}}"#
        ]],
    );
    // Further `{"table":…}` entries in from: a cross join.
    select(
        r#"{"data":"*","from":[{"table":"package"},{"table":"tv_category","as":"c"}]}"#,
        &expect![[
            r#"{"data":["*"],"from":["package",{"as":"c","join":"tv_category","join_type":"inner"}]}"#
        ]],
    );
    // A sub-select in from, first and with a join; written back in the same form.
    select(
        r#"{"data":["*"],"from":[{"select":{"data":["id"],"from":"terminal"},"as":"q"},{"join":"subscriber","on":{"eq":[{"q":"id"},{"subscriber":"id"}]}}]}"#,
        &expect![[
            r#"{"data":["*"],"from":[{"as":"q","select":{"data":["id"],"from":"terminal"}},{"join":"subscriber","join_type":"inner","on":{"eq":[{"q":"id"},{"subscriber":"id"}]}}]}"#
        ]],
    );
    select(
        r#"{"data":"n","from":{"as":"q","select":{"data":{"function":"count","args":"*","as":"n"},"from":"terminal"}}}"#,
        &expect![[
            r#"{"data":["n"],"from":{"as":"q","select":{"data":[{"args":["*"],"as":"n","function":"count"}],"from":"terminal"}}}"#
        ]],
    );
    // A first function argument that cannot be a column is a literal (`concat(':', port)`);
    // such a tree has no canonical wire form, so it is read only.
    let v: Value = serde_json::from_str(r#"{"coalesce":[{"concat":[":","port"]},""]}"#).unwrap();
    let parsed = Select::from_json(&serde_json::json!({"data":[v],"from":"media"})).unwrap();
    let Operand::Function(coalesce) = &parsed.data[0] else { panic!("{parsed:?}") };
    let Operand::Function(concat) = &coalesce.args[0] else { panic!("{coalesce:?}") };
    assert_eq!(concat.args[0], Operand::Literal(Scalar::String(":".to_owned())));
    assert_eq!(concat.args[1], Operand::Literal(Scalar::String("port".to_owned())));
    assert_eq!(coalesce.args[1], Operand::Literal(Scalar::String(String::new())));
    // Still refused: a dotted name with more than one dot, `{"select":…}` as a select key.
    for bad in [
        serde_json::json!({"data":["a.b.c"],"from":"t"}),
        serde_json::json!({"data":"*","from":"t","select":{"data":"*","from":"t"}}),
        serde_json::json!({"data":[{"t":"a","as":"x y"}],"from":"t"}),
        serde_json::json!({"data":"*","from":"t","where":{"in":["a",{"values":[[1,2]]}]}}),
        serde_json::json!({"data":"*","from":{"select":{"data":"*","from":"t"}}}),
        serde_json::json!({"data":"*","from":{"select":{"data":"*","from":"t"},"as":"q","on":1}}),
    ] {
        assert!(Select::from_json(&bad).is_err(), "{bad}");
    }
}
