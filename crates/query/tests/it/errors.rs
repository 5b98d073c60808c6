//! Every error variant, and malformed wire JSON refused with a typed error rather than passed on.

use iptvportal_query::{Error, Expr, Q, Select};
use serde_json::{Value, json};

fn select(input: &Value) -> Result<Select, Error> {
    Select::from_json(input)
}

fn cond(input: &Value) -> Result<Expr, Error> {
    Expr::from_json(input)
}

#[test]
fn lookup_errors() {
    assert!(matches!(Q::lookup("bad name", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("1abc", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("a.b.c", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("t.", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("name\"", 1), Err(Error::InvalidIdentifier { .. })));
    assert!(matches!(Q::lookup("имя", 1), Err(Error::InvalidIdentifier { .. })));
    match Q::lookup("balance__greater", 1) {
        Err(Error::UnknownLookup { field, lookup }) => {
            assert_eq!((field.as_str(), lookup.as_str()), ("balance__greater", "greater"));
        }
        other => panic!("expected UnknownLookup, got {other:?}"),
    }
    // The last `__` suffix must be a lookup: a column named with `__` needs --where-json.
    assert!(matches!(Q::lookup("my__column", 1), Err(Error::UnknownLookup { .. })));
    assert!(matches!(Q::lookup("a__GTE", 1), Err(Error::UnknownLookup { .. })));
    assert!(matches!(Q::lookup("id__in", json!([])), Err(Error::EmptyIn { .. })));
}

#[test]
fn invalid_values() {
    let invalid = |field: &str, value: Value| {
        matches!(Q::lookup(field, value), Err(Error::InvalidValue { .. }))
    };
    assert!(invalid("id__in", json!(1)));
    assert!(invalid("id__in", json!("1,2")));
    assert!(invalid("id__in", json!([[1]])));
    assert!(invalid("id__in", json!([{"a":1}])));
    assert!(invalid("id__in", json!([1, null])));
    assert!(invalid("id", json!([1])));
    assert!(invalid("id__eq", json!({"a":1})));
    assert!(invalid("id__gte", json!([1])));
    assert!(invalid("id__gt", json!(null)));
    assert!(invalid("id__lte", json!(u64::MAX)));
    assert!(invalid("email__isnull", json!("true")));
    assert!(invalid("email__isnull", json!(1)));
    assert!(invalid("email__isnull", json!(null)));
    assert!(invalid("name__contains", json!(null)));
    assert!(invalid("name__like", json!(true)));
    assert!(invalid("name__startswith", json!(["a"])));
}

#[test]
fn unknown_operators() {
    assert!(
        matches!(cond(&json!({"between":["id",1,2]})), Err(Error::UnknownOperator { op }) if op == "between")
    );
    assert!(matches!(cond(&json!({"EQ":["id",1]})), Err(Error::UnknownOperator { .. })));
    assert!(matches!(cond(&json!({"ne":["id",1]})), Err(Error::UnknownOperator { .. })));
    assert!(matches!(
        cond(&json!({"and":[{"eq":["a",1]},{"xor":["b",2]}]})),
        Err(Error::UnknownOperator { .. })
    ));
}

#[test]
fn wrong_arity() {
    for bad in [
        json!({"eq":["id"]}),
        json!({"eq":["id",1,2]}),
        json!({"gte":[]}),
        json!({"is":["id"]}),
        json!({"is_not":["id",null,null]}),
        json!({"in":["id"]}),
        json!({"and":[]}),
        json!({"or":[]}),
        json!({"not":[]}),
        json!({"not":[{"eq":["a",1]},{"eq":["b",2]}]}),
    ] {
        assert!(matches!(cond(&bad), Err(Error::Arity { .. })), "{bad}");
    }
}

#[test]
fn identifiers_with_quotes_spaces_semicolons() {
    for name in
        ["id; DROP TABLE x", "na\"me", "a b", "a'b", "id--", "", "1id", "a.b.c", ".b", "a.", "*x"]
    {
        assert!(
            matches!(cond(&json!({"eq":[name,1]})), Err(Error::InvalidIdentifier { .. })),
            "{name}"
        );
        assert!(
            matches!(
                select(&json!({"data":[name],"from":"t"})),
                Err(Error::InvalidIdentifier { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                select(&json!({"data":"*","from":name})),
                Err(Error::InvalidIdentifier { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(cond(&json!({"eq":[{"t":name},1]})), Err(Error::InvalidIdentifier { .. })),
            "{name}"
        );
        assert!(
            matches!(cond(&json!({"eq":[{(name):"id"},1]})), Err(Error::InvalidIdentifier { .. })),
            "{name}"
        );
    }
    let injected = [
        json!({"data":[{"function":"count(*); drop","args":[]}],"from":"t"}),
        json!({"data":[{"function":"count","args":["*"],"as":"n; drop"}],"from":"t"}),
        json!({"data":"*","from":{"table":"t","as":"a b"}}),
        json!({"data":"*","from":["t",{"join":"u;","on":{"eq":[{"t":"id"},{"u":"id"}]}}]}),
        json!({"data":"*","from":"t","order_by":"id;"}),
        json!({"data":"*","from":"t","order_by":{"t x":"id"}}),
        json!({"data":"*","from":"t","group_by":["a'b"]}),
    ];
    for bad in injected {
        assert!(matches!(select(&bad), Err(Error::InvalidIdentifier { .. })), "{bad}");
    }
    // Extra words in order_by are not a direction.
    assert!(matches!(
        select(&json!({"data":"*","from":"t","order_by":"id; DROP TABLE x"})),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn malformed_wire() {
    let bad_where = [
        json!("id = 1"),
        json!([{"eq":["a",1]}]),
        json!(1),
        json!({}),
        json!({"eq":["a",1],"gt":["b",2]}),
    ];
    for w in bad_where {
        assert!(matches!(cond(&w), Err(Error::Malformed { .. })), "{w}");
        assert!(
            matches!(
                select(&json!({"data":"*","from":"t","where":w})),
                Err(Error::Malformed { .. })
            ),
            "where {w}"
        );
    }
    let bad_selects = [
        json!([]),
        json!("select * from t"),
        json!({"data":"*"}),
        json!({"from":"t"}),
        json!({"data":[],"from":"t"}),
        json!({"data":"*","from":"t","limit":-1}),
        json!({"data":"*","from":"t","offset":-10}),
        json!({"data":"*","from":"t","limit":1.5}),
        json!({"data":"*","from":"t","limit":"10"}),
        json!({"data":"*","from":"t","distinct":"yes"}),
        json!({"data":"*","from":"t","select":"x"}),
        json!({"data":"*","from":[]}),
        json!({"data":"*","from":1}),
        json!({"data":"*","from":{"name":"t"}}),
        json!({"data":"*","from":{"table":"t","alias":"x"}}),
        json!({"data":"*","from":["t","u"]}),
        json!({"data":"*","from":["t",{"join":"u","join_type":"outer"}]}),
        json!({"data":"*","from":["t",{"join":"u","type":"left"}]}),
        json!({"data":"*","from":"t","order_by":"id sideways"}),
        json!({"data":"*","from":"t","order_by":1}),
        json!({"data":"*","from":"t","group_by":[1]}),
        json!({"data":[[1]],"from":"t"}),
        json!({"data":[{"function":"count","args":["*"],"extra":1}],"from":"t"}),
        json!({"data":[{"a":"b","c":"d"}],"from":"t"}),
    ];
    for s in bad_selects {
        assert!(matches!(select(&s), Err(Error::Malformed { .. })), "{s}");
    }
    assert!(matches!(cond(&json!({"eq":"a"})), Err(Error::Malformed { .. })));
    assert!(matches!(cond(&json!({"eq":["a",[1]]})), Err(Error::Malformed { .. })));
}

#[test]
fn invalid_filter_and_unrepresentable() {
    assert!(matches!(
        iptvportal_query::parse_filter("no equals sign"),
        Err(Error::InvalidFilter { .. })
    ));
    assert!(matches!(
        Q::from_expr(Expr::And(Vec::new())).to_json(),
        Err(Error::Unrepresentable { .. })
    ));
}

#[test]
fn messages_are_lowercase_without_trailing_period() {
    let errors = [
        Q::lookup("a b", 1).unwrap_err(),
        Q::lookup("a__x", 1).unwrap_err(),
        Q::lookup("a__in", json!([])).unwrap_err(),
        Q::lookup("a__in", 1).unwrap_err(),
        iptvportal_query::parse_filter("x").unwrap_err(),
        cond(&json!({"x":[]})).unwrap_err(),
        cond(&json!({"eq":[]})).unwrap_err(),
        cond(&json!(1)).unwrap_err(),
        Q::from_expr(Expr::Or(Vec::new())).to_json().unwrap_err(),
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
    }
}
