//! Property tests: random `Q` trees round-trip through the wire exactly, and no input makes the
//! filter parsers panic.

use iptvportal_query::{LOOKUPS, Lookup, Q, parse_filter, parse_where_json};
use proptest::prelude::*;
use serde_json::{Number, Value};

/// Column names, sometimes qualified. The qualifier never starts with `f` so that it cannot be
/// `function` or `from`, the two names whose `{"t":"col"}` form reads back as something else.
fn field_column() -> impl Strategy<Value = String> {
    let name = "[a-z_][a-z0-9_]{0,8}";
    prop_oneof![
        3 => name.prop_map(String::from),
        1 => ("[a-eg-z][a-z0-9_]{0,4}", name).prop_map(|(t, c)| format!("{t}.{c}")),
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

/// A non-null scalar, strings drawn from all of Unicode.
fn non_null() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        finite_f64().prop_map(|f| Value::Number(Number::from_f64(f).expect("finite"))),
        any::<String>().prop_map(Value::String),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![1 => Just(Value::Null), 8 => non_null()]
}

/// A field and a value valid for its lookup.
fn leaf_input() -> impl Strategy<Value = (String, Value)> {
    let lookup = proptest::sample::select(Lookup::ALL.to_vec());
    (field_column(), lookup, any::<bool>()).prop_flat_map(|(column, lookup, bare)| {
        // `col` alone means `col__eq`; both spellings are exercised, the bare one only where the name
        // has no `__` of its own (which would read as a lookup suffix).
        let field = if lookup == Lookup::Eq && bare && !column.contains("__") {
            column
        } else {
            format!("{column}__{lookup}")
        };
        let value: BoxedStrategy<Value> = match lookup {
            Lookup::Eq | Lookup::Ne => scalar().boxed(),
            Lookup::In => {
                proptest::collection::vec(non_null(), 1..5).prop_map(Value::Array).boxed()
            }
            Lookup::Isnull => any::<bool>().prop_map(Value::Bool).boxed(),
            Lookup::Like
            | Lookup::Ilike
            | Lookup::Contains
            | Lookup::Icontains
            | Lookup::Startswith
            | Lookup::Endswith => prop_oneof![
                any::<String>().prop_map(Value::String),
                any::<i64>().prop_map(Value::from),
            ]
            .boxed(),
            _ => non_null().boxed(),
        };
        (Just(field), value)
    })
}

fn leaf() -> impl Strategy<Value = Q> {
    leaf_input().prop_map(|(field, value)| Q::lookup(&field, value).expect("valid by construction"))
}

fn tree() -> impl Strategy<Value = Q> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|qs| Q::all(qs).expect("non-empty")),
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|qs| Q::any(qs).expect("non-empty")),
            inner.prop_map(|q| !q),
        ]
    })
}

/// Bits of filter syntax, glued at random, to reach the parser's corners faster than pure noise.
fn fragments() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("__".to_owned()),
        Just("=".to_owned()),
        Just(",".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just(".".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("null".to_owned()),
        Just("é".to_owned()),
        Just(" ".to_owned()),
        "[0-9]{1,3}",
        "[a-z_]{1,4}",
        proptest::sample::select(LOOKUPS.to_vec()).prop_map(String::from),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(fragment, 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn q_round_trips_through_json_text(q in tree()) {
        let text = serde_json::to_string(&q).unwrap();
        let back: Q = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &q);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn json_to_q_to_json_is_identical(q in tree()) {
        let json = q.to_json().unwrap();
        let again = Q::from_json(&json).unwrap().to_json().unwrap();
        prop_assert_eq!(again, json);
    }

    #[test]
    fn cli_form_agrees_with_lookup((field, value) in leaf_input()) {
        // The value written as JSON text is what a user would type to mean exactly that value.
        let filter = format!("{field}={value}");
        prop_assert_eq!(parse_filter(&filter).unwrap(), Q::lookup(&field, value).unwrap());
    }

    #[test]
    fn parse_filter_never_panics_on_unicode(s in any::<String>()) {
        check_any_filter(&s)?;
    }

    #[test]
    fn parse_filter_never_panics_on_fragments(s in fragments()) {
        check_any_filter(&s)?;
    }

    #[test]
    fn parse_where_json_never_panics(s in fragments(), t in any::<String>()) {
        let _ = parse_where_json(&s);
        let _ = parse_where_json(&t);
        let _ = parse_where_json(&format!("{{\"{s}\":[{t}]}}"));
    }
}

/// Whatever a filter string parses to can be written and read back.
fn check_any_filter(s: &str) -> Result<(), TestCaseError> {
    if let Ok(q) = parse_filter(s) {
        let json = q.to_json().unwrap();
        prop_assert_eq!(Q::from_json(&json).unwrap(), q);
    }
    Ok(())
}
