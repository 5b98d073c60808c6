//! The CLI's filter forms: `--where 'FIELD__LOOKUP=VALUE'` (repeatable, AND-ed) and
//! `--where-json '<raw JSONSQL>'`.
//!
//! Values are typed the way a shell user expects: `10`, `1.5`, `false`, `null` and `"x"` are read as
//! JSON, anything else (`hd`, `2025-12-15`, an empty string) is taken as the plain string it is.
//! Three exceptions keep that rule from surprising anyone:
//! - the pattern lookups (`like`, `contains`, …) always take text, so `name__contains=10` looks for
//!   the characters `10` (a quoted `"…"` value is still unquoted);
//! - an integer too large for `i64` stays a string rather than becoming a rounded float, so a long
//!   phone number or code is matched exactly;
//! - `__in` splits its value on commas outside double quotes (`id__in=1,2,3`,
//!   `name__in="a,b",c`), or takes a JSON array (`id__in=[1,2]`).
//!
//! Where the caller knows the column's type ([`parse_filter_typed`], the CLI's for tables of the
//! catalog), the value is read as that type instead: `phone=79123456789` on a text column is the
//! string `"79123456789"`, `id=abc` on an integer column and `registered=true` on a timestamp
//! column are refused ([`Error::FilterType`]), and so is a pattern lookup on a column that is not
//! text ([`Error::PatternNeedsText`]). `null` is `null` for every type (`"null"` is the word).

use serde_json::Value;

use crate::ast::{ColumnRef, Expr};
use crate::q::{Lookup, Q, build_lookup, split_field};
use crate::typed::{check_pattern, typed_value};
use crate::{Error, ValueType};

/// What an `InvalidFilter` without `=` says, so the user sees the expected shape.
const FORM: &str = "expected FIELD__LOOKUP=VALUE, e.g. balance__gte=10";

/// Parses one `--where` filter: `balance__gte=10`, `disabled=false`, `name__icontains=hd`,
/// `id__in=1,2,3`, `email__isnull=true`, `name="1"`.
///
/// The field is everything before the first `=` (surrounding spaces ignored), the value everything
/// after it (kept as written). Never panics, whatever the input.
pub fn parse_filter(s: &str) -> Result<Q, Error> {
    parse_filter_typed(s, &|_| None)
}

/// Parses one `--where` filter as [`parse_filter`] does, except that the value is read as the
/// type `column_type` gives its column (see the module's rules); a column it gives no type keeps
/// [`parse_filter`]'s reading.
///
/// ```
/// use iptvportal_query::{Error, ValueType, parse_filter_typed};
///
/// let text = |_: &iptvportal_query::ColumnRef| Some(ValueType::Text);
/// let q = parse_filter_typed("phone=79123456789", &text)?;
/// assert_eq!(serde_json::to_string(&q).unwrap(), r#"{"eq":["phone","79123456789"]}"#);
/// let integer = |_: &iptvportal_query::ColumnRef| Some(ValueType::Integer);
/// assert!(matches!(parse_filter_typed("id=abc", &integer), Err(Error::FilterType { .. })));
/// # Ok::<(), Error>(())
/// ```
pub fn parse_filter_typed(
    s: &str,
    column_type: &dyn Fn(&ColumnRef) -> Option<ValueType>,
) -> Result<Q, Error> {
    let invalid =
        |reason: &str| Error::InvalidFilter { input: s.to_owned(), reason: reason.to_owned() };
    let (field, raw) = s.split_once('=').ok_or_else(|| invalid(FORM))?;
    let field = field.trim();
    if field.is_empty() {
        return Err(invalid("missing the field before =; expected FIELD__LOOKUP=VALUE"));
    }
    let (column, lookup) = split_field(field)?;
    let ty = column_type(&column);
    let value = match (lookup, ty) {
        (l, _) if l.takes_text() => {
            check_pattern(&column, l, ty)?;
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::String(s)) => Value::String(s),
                _ => Value::String(raw.to_owned()),
            }
        }
        (Lookup::In, Some(ty)) => typed_in_values(&column, ty, raw)?,
        (Lookup::In, None) => in_values(raw),
        (Lookup::Isnull, _) | (_, None) => scalar_value(raw),
        (_, Some(ty)) => typed_scalar(&column, ty, raw)?,
    };
    build_lookup(field, column, lookup, value)
}

/// Parses every `--where` filter and ANDs them (flattened); `None` when there are none.
pub fn parse_filters<I, S>(items: I) -> Result<Option<Q>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    parse_filters_typed(items, &|_| None)
}

/// Parses every `--where` filter with [`parse_filter_typed`] and ANDs them (flattened); `None`
/// when there are none.
pub fn parse_filters_typed<I, S>(
    items: I,
    column_type: &dyn Fn(&ColumnRef) -> Option<ValueType>,
) -> Result<Option<Q>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let filters = items
        .into_iter()
        .map(|s| parse_filter_typed(s.as_ref(), column_type))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Q::all(filters))
}

/// Parses `--where-json`: the raw JSONSQL of a `where` condition, checked like any wire input.
/// JSON that does not parse is an [`Error::InvalidFilter`] carrying serde's message.
pub fn parse_where_json(s: &str) -> Result<Expr, Error> {
    let value: Value = serde_json::from_str(s)
        .map_err(|e| Error::InvalidFilter { input: s.to_owned(), reason: e.to_string() })?;
    Expr::from_json(&value)
}

/// A value typed by the module's rule: a JSON scalar where it parses as one, the text otherwise.
fn scalar_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::String(_))) => v,
        Ok(Value::Number(n)) if n.is_i64() => Value::Number(n),
        // A float is kept only when written as one: an integer literal beyond `i64` parses as a
        // rounded float (or a `u64` the lookup would refuse), and the user meant those digits.
        Ok(Value::Number(n)) if n.is_f64() && raw.contains(['.', 'e', 'E']) => Value::Number(n),
        _ => Value::String(raw.to_owned()),
    }
}

/// One value read as the column's type: a quoted JSON string is unquoted first.
fn typed_scalar(column: &ColumnRef, ty: ValueType, raw: &str) -> Result<Value, Error> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(s)) => typed_value(column, ty, &s, true),
        _ => typed_value(column, ty, raw, false),
    }
}

/// The list of an `__in` read as the column's type: each item of a JSON array (a string as its
/// text, anything else as its JSON text), or each comma-separated item as [`typed_scalar`] reads
/// it. An empty value is an empty list (refused as [`Error::EmptyIn`]).
fn typed_in_values(column: &ColumnRef, ty: ValueType, raw: &str) -> Result<Value, Error> {
    if raw.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    if raw.trim_start().starts_with('[')
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw)
    {
        return items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => typed_value(column, ty, &s, true),
                Value::Null => Ok(Value::Null),
                other => typed_value(column, ty, &other.to_string(), false),
            })
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    split_commas(raw)
        .into_iter()
        .map(|item| typed_scalar(column, ty, item))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

/// The list of an `__in`: a JSON array as it is, otherwise comma-separated values each typed by
/// [`scalar_value`]. An empty value is an empty list (refused as [`Error::EmptyIn`]).
fn in_values(raw: &str) -> Value {
    if raw.is_empty() {
        return Value::Array(Vec::new());
    }
    if raw.trim_start().starts_with('[')
        && let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(raw)
    {
        return v;
    }
    Value::Array(split_commas(raw).into_iter().map(scalar_value).collect())
}

/// Splits on commas outside double-quoted JSON strings, so `"a,b",c` is two items. An unterminated
/// quote runs to the end of the input (that item then stays a plain string).
fn split_commas(raw: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ',' if !in_string => {
                items.push(&raw[start..i]);
                // A comma is one byte, so the next item starts right after it on a char boundary.
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&raw[start..]);
    items
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalar_value_types_what_parses() {
        assert_eq!(scalar_value("10"), json!(10));
        assert_eq!(scalar_value("-3"), json!(-3));
        assert_eq!(scalar_value("1.5"), json!(1.5));
        assert_eq!(scalar_value("1e3"), json!(1000.0));
        assert_eq!(scalar_value("false"), json!(false));
        assert_eq!(scalar_value("null"), json!(null));
        assert_eq!(scalar_value(r#""1""#), json!("1"));
        assert_eq!(scalar_value("hd"), json!("hd"));
        assert_eq!(scalar_value("2025-12-15"), json!("2025-12-15"));
        assert_eq!(scalar_value(""), json!(""));
        assert_eq!(scalar_value("007"), json!("007"));
        assert_eq!(scalar_value("[1,2]"), json!("[1,2]"));
        assert_eq!(scalar_value("18446744073709551615"), json!("18446744073709551615"));
        assert_eq!(scalar_value("123456789012345678901234"), json!("123456789012345678901234"));
    }

    #[test]
    fn split_commas_respects_quotes() {
        assert_eq!(split_commas("1,2,3"), ["1", "2", "3"]);
        assert_eq!(split_commas(r#""a,b",c"#), [r#""a,b""#, "c"]);
        assert_eq!(split_commas(r#""a\",b",c"#), [r#""a\",b""#, "c"]);
        assert_eq!(split_commas(r#""open,end"#), [r#""open,end"#]);
        assert_eq!(split_commas("a,,b,"), ["a", "", "b", ""]);
        assert_eq!(split_commas("é,ü"), ["é", "ü"]);
    }

    fn types(c: &ColumnRef) -> Option<ValueType> {
        match c.name.as_str() {
            "id" => Some(ValueType::Integer),
            "phone" => Some(ValueType::Text),
            "registered" => Some(ValueType::Timestamp),
            "disabled" => Some(ValueType::Boolean),
            _ => None,
        }
    }

    fn typed(s: &str) -> Result<String, String> {
        parse_filter_typed(s, &types)
            .map(|q| serde_json::to_string(&q).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_sent_as_their_columns_type() {
        let ok = |s: &str| typed(s).unwrap();
        assert_eq!(ok("phone=79123456789"), r#"{"eq":["phone","79123456789"]}"#);
        assert_eq!(ok("phone__in=79123456789,007"), r#"{"in":["phone","79123456789","007"]}"#);
        assert_eq!(ok(r#"phone__in=[7912,"a,b"]"#), r#"{"in":["phone","7912","a,b"]}"#);
        assert_eq!(ok("phone__contains=912"), r#"{"like":["phone","%912%"]}"#);
        assert_eq!(ok("phone=null"), r#"{"is":["phone",null]}"#);
        assert_eq!(ok(r#"phone="null""#), r#"{"eq":["phone","null"]}"#);
        assert_eq!(ok(r#"id__in=1,"2",3"#), r#"{"in":["id",1,2,3]}"#);
        assert_eq!(ok("id__gte=10"), r#"{"gte":["id",10]}"#);
        assert_eq!(ok("disabled=false"), r#"{"eq":["disabled",false]}"#);
        assert_eq!(ok("registered__gte=2025-12-15"), r#"{"gte":["registered","2025-12-15"]}"#);
        assert_eq!(ok("registered__isnull=false"), r#"{"is_not":["registered",null]}"#);
        // A column of no known type keeps the untyped reading.
        assert_eq!(ok("other=79123456789"), r#"{"eq":["other",79123456789]}"#);
    }

    #[test]
    fn values_of_another_type_are_refused() {
        let refused = |s: &str| typed(s).unwrap_err();
        assert_eq!(
            refused("registered=true"),
            "filter registered: expected a timestamp (2025-12-15 or 2025-12-15 10:00:00), got true"
        );
        assert_eq!(refused("id=abc"), "filter id: expected an integer, got abc");
        assert_eq!(refused("id__in=1,x,3"), "filter id: expected an integer, got x");
        assert_eq!(refused("id__in=[1,true]"), "filter id: expected an integer, got true");
        assert_eq!(
            refused("disabled=1"),
            "filter disabled: expected a boolean (true or false), got 1"
        );
        assert_eq!(
            refused("id__contains=5"),
            "filter id: __contains matches text, and id is an integer column"
        );
        assert_eq!(refused("id__in="), r#"empty list for "id__in": __in needs at least one value"#);
        assert_eq!(
            refused("id__gt=null"),
            r#"invalid value for "id__gt": __gt with null never matches; use __isnull"#
        );
    }

    #[test]
    fn in_values_forms() {
        assert_eq!(in_values("1,2,3"), json!([1, 2, 3]));
        assert_eq!(in_values("[1,\"a\"]"), json!([1, "a"]));
        assert_eq!(in_values(""), json!([]));
        assert_eq!(in_values("[1,"), json!(["[1", ""]));
        assert_eq!(in_values(r#""a,b",c"#), json!(["a,b", "c"]));
    }
}
