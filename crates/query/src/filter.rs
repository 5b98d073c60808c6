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

use serde_json::Value;

use crate::Error;
use crate::ast::Expr;
use crate::q::{Lookup, Q, build_lookup, split_field};

/// What an `InvalidFilter` without `=` says, so the user sees the expected shape.
const FORM: &str = "expected FIELD__LOOKUP=VALUE, e.g. balance__gte=10";

/// Parses one `--where` filter: `balance__gte=10`, `disabled=false`, `name__icontains=hd`,
/// `id__in=1,2,3`, `email__isnull=true`, `name="1"`.
///
/// The field is everything before the first `=` (surrounding spaces ignored), the value everything
/// after it (kept as written). Never panics, whatever the input.
pub fn parse_filter(s: &str) -> Result<Q, Error> {
    let invalid =
        |reason: &str| Error::InvalidFilter { input: s.to_owned(), reason: reason.to_owned() };
    let (field, raw) = s.split_once('=').ok_or_else(|| invalid(FORM))?;
    let field = field.trim();
    if field.is_empty() {
        return Err(invalid("missing the field before =; expected FIELD__LOOKUP=VALUE"));
    }
    let (column, lookup) = split_field(field)?;
    let value = match lookup {
        l if l.takes_text() => match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(s)) => Value::String(s),
            _ => Value::String(raw.to_owned()),
        },
        Lookup::In => in_values(raw),
        _ => scalar_value(raw),
    };
    build_lookup(field, column, lookup, value)
}

/// Parses every `--where` filter and ANDs them (flattened); `None` when there are none.
pub fn parse_filters<I, S>(items: I) -> Result<Option<Q>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let filters =
        items.into_iter().map(|s| parse_filter(s.as_ref())).collect::<Result<Vec<_>, _>>()?;
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

    #[test]
    fn in_values_forms() {
        assert_eq!(in_values("1,2,3"), json!([1, 2, 3]));
        assert_eq!(in_values("[1,\"a\"]"), json!([1, "a"]));
        assert_eq!(in_values(""), json!([]));
        assert_eq!(in_values("[1,"), json!(["[1", ""]));
        assert_eq!(in_values(r#""a,b",c"#), json!(["a,b", "c"]));
    }
}
