//! Filter values typed by their column: what a `--where` value is read as when the caller knows
//! the column's type, and the check of a condition's literals against those types.
//!
//! This crate knows no catalog (both sit at the bottom of the workspace); the caller says what a
//! column holds through a `column_type` function, with [`ValueType`] naming the catalog's types.
//! The rules are PostgreSQL's, which is what a portal runs on: a text column never equals a
//! number (`text = integer` does not exist), a quoted literal is read by the column's input
//! function (`'5'` is an integer for an integer column), and the pattern operators (`LIKE`) need
//! text on both sides.

use std::fmt;

use serde_json::Value;

use crate::Error;
use crate::ast::{ColumnRef, CompareOp, Expr, InList, Operand, Scalar};
use crate::q::Lookup;

/// The type of a column's values, as far as a filter's value is concerned: the catalog's column
/// types, by the same names ([`ValueType::from_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueType {
    /// An integer (`i64`).
    Integer,
    /// A number, with or without a fraction.
    Float,
    /// `true` or `false`.
    Boolean,
    /// Any text.
    Text,
    /// A date and time without a zone, written `2025-12-15 10:00:00`, or a date alone.
    Timestamp,
}

impl ValueType {
    /// Every type.
    pub const ALL: [ValueType; 5] = [
        ValueType::Integer,
        ValueType::Float,
        ValueType::Boolean,
        ValueType::Text,
        ValueType::Timestamp,
    ];

    /// The type's name, the catalog's (`integer`, `float`, `boolean`, `text`, `timestamp`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ValueType::Integer => "integer",
            ValueType::Float => "float",
            ValueType::Boolean => "boolean",
            ValueType::Text => "text",
            ValueType::Timestamp => "timestamp",
        }
    }

    /// The type a catalog type name names, if any.
    pub fn from_name(name: &str) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What a value of this type looks like, for messages.
    const fn expected(self) -> &'static str {
        match self {
            ValueType::Integer => "an integer",
            ValueType::Float => "a float (a number, e.g. 1.5)",
            ValueType::Boolean => "a boolean (true or false)",
            ValueType::Text => "text",
            ValueType::Timestamp => "a timestamp (2025-12-15 or 2025-12-15 10:00:00)",
        }
    }

    /// `an integer column`, `a timestamp column`, …, for messages.
    const fn column(self) -> &'static str {
        match self {
            ValueType::Integer => "an integer column",
            ValueType::Float => "a float column",
            ValueType::Boolean => "a boolean column",
            ValueType::Text => "a text column",
            ValueType::Timestamp => "a timestamp column",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message of [`Error::FilterType`]: `filter registered: expected a timestamp (…), got true`.
pub(crate) fn type_message(column: &str, expected: ValueType, value: &str) -> String {
    let value = if value.is_empty() { "an empty value" } else { value };
    format!("filter {column}: expected {}, got {value}", expected.expected())
}

/// The message of [`Error::PatternNeedsText`].
pub(crate) fn pattern_message(column: &str, lookup: &str, ty: ValueType) -> String {
    format!("filter {column}: {lookup} matches text, and {column} is {}", ty.column())
}

/// The JSON value of one `--where` value written `raw` (a quoted JSON string already unquoted,
/// `quoted` saying so) for a column of type `ty`; `null` unquoted is `null` whatever the type.
pub(crate) fn typed_value(
    column: &ColumnRef,
    ty: ValueType,
    raw: &str,
    quoted: bool,
) -> Result<Value, Error> {
    if raw == "null" && !quoted {
        return Ok(Value::Null);
    }
    let refused = || Error::FilterType {
        column: column.to_string(),
        expected: ty,
        value: if quoted { format!("{raw:?}") } else { raw.to_owned() },
    };
    let t = raw.trim();
    Ok(match ty {
        ValueType::Text => Value::String(raw.to_owned()),
        ValueType::Integer => Value::from(t.parse::<i64>().map_err(|_| refused())?),
        ValueType::Float => match t.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(parse_number(t).ok_or_else(refused)?),
        },
        ValueType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(refused()),
        },
        ValueType::Timestamp if is_timestamp(t) => Value::String(t.to_owned()),
        ValueType::Timestamp => return Err(refused()),
    })
}

/// A finite decimal number written with digits (`1.5`, `-2`, `1e3`), not `inf` or `nan`.
fn parse_number(t: &str) -> Option<f64> {
    let digits_only = t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    digits_only.then(|| t.parse::<f64>().ok()).flatten().filter(|f| f.is_finite())
}

/// Whether `t` is a timestamp in the ISO forms a portal reads: `2025-12-15`, then optionally ` `
/// or `T` and `10:00`, `10:00:00` or `10:00:00.123456`, then optionally a zone (`Z`, `+03`,
/// `+03:00`, `-0500`), which a `timestamp without time zone` ignores. Fields are range-checked
/// (month 1-12, day 1-31, hours 0-23, …); whether the day exists in that month is the portal's
/// to say.
pub(crate) fn is_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    let num = |i: usize, n: usize| -> Option<u32> {
        b.get(i..i + n)?
            .iter()
            .try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let date = b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && num(0, 4).is_some()
        && num(5, 2).is_some_and(|m| (1..=12).contains(&m))
        && num(8, 2).is_some_and(|d| (1..=31).contains(&d));
    if !date {
        return false;
    }
    let mut i = 10;
    if matches!(b.get(i), Some(b' ' | b'T')) {
        let hm = num(i + 1, 2).is_some_and(|h| h <= 23)
            && b.get(i + 3) == Some(&b':')
            && num(i + 4, 2).is_some_and(|m| m <= 59);
        if !hm {
            return false;
        }
        i += 6;
        if b.get(i) == Some(&b':') {
            if num(i + 1, 2).is_none_or(|s| s > 59) {
                return false;
            }
            i += 3;
            if b.get(i) == Some(&b'.') {
                let n = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
                if !(1..=6).contains(&n) {
                    return false;
                }
                i += 1 + n;
            }
        }
    }
    match &b[i..] {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', zone @ ..] => {
            let zone: Vec<u8> = zone.iter().copied().filter(|&c| c != b':').collect();
            matches!(zone.len(), 2 | 4) && zone.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// Refuses a pattern lookup (`__contains`, …) on a column whose type is known and is not text.
pub(crate) fn check_pattern(
    column: &ColumnRef,
    lookup: Lookup,
    ty: Option<ValueType>,
) -> Result<(), Error> {
    match ty {
        Some(ty) if ty != ValueType::Text => Err(Error::PatternNeedsText {
            column: column.to_string(),
            lookup: format!("__{lookup}"),
            ty,
        }),
        _ => Ok(()),
    }
}

/// Checks every literal `expr` compares a column with against the column's type, where
/// `column_type` knows it, as PostgreSQL would before running the query: a number or a boolean
/// for a text column, a boolean for a timestamp, text that is not an integer for an integer
/// column, a pattern operator on a column that is not text. Comparisons between columns,
/// functions and sub-selects are left to the portal. `null` passes everywhere.
///
/// ```
/// use iptvportal_query::{Error, Q, ValueType, check_value_types};
///
/// let types = |c: &iptvportal_query::ColumnRef| {
///     (c.name == "registered").then_some(ValueType::Timestamp)
/// };
/// let ok = Q::lookup("registered__gte", "2025-12-15")?;
/// assert!(check_value_types(ok.expr(), &types).is_ok());
/// let wrong = Q::lookup("registered", true)?;
/// assert!(matches!(check_value_types(wrong.expr(), &types), Err(Error::FilterType { .. })));
/// # Ok::<(), Error>(())
/// ```
pub fn check_value_types(
    expr: &Expr,
    column_type: &dyn Fn(&ColumnRef) -> Option<ValueType>,
) -> Result<(), Error> {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            items.iter().try_for_each(|e| check_value_types(e, column_type))
        }
        Expr::Not(inner) => check_value_types(inner, column_type),
        Expr::Compare { op, left, right } => {
            let (column, literal) = match (left, right) {
                (Operand::Column(c), Operand::Literal(v))
                | (Operand::Literal(v), Operand::Column(c)) => (c, Some(v)),
                (Operand::Column(c), _) => (c, None),
                _ => return Ok(()),
            };
            let ty = column_type(column);
            if matches!(op, CompareOp::Like | CompareOp::Ilike)
                && let Some(ty) = ty.filter(|t| *t != ValueType::Text)
            {
                return Err(Error::PatternNeedsText {
                    column: column.to_string(),
                    lookup: op.as_str().to_owned(),
                    ty,
                });
            }
            match (ty, literal) {
                (Some(ty), Some(v)) => check_literal(column, ty, v),
                _ => Ok(()),
            }
        }
        Expr::In { left: Operand::Column(column), list: InList::Values(values) } => {
            let Some(ty) = column_type(column) else { return Ok(()) };
            values.iter().try_for_each(|v| match v {
                Operand::Literal(v) => check_literal(column, ty, v),
                _ => Ok(()),
            })
        }
        Expr::In { .. } | Expr::Is { .. } => Ok(()),
    }
}

/// Whether PostgreSQL compares a column of type `ty` with the literal `value`: a JSON string
/// is a quoted literal, read as the column's type; a number or a boolean has its own type.
fn check_literal(column: &ColumnRef, ty: ValueType, value: &Scalar) -> Result<(), Error> {
    let fits = match (ty, value) {
        (_, Scalar::Null)
        | (ValueType::Text, Scalar::String(_))
        | (ValueType::Integer | ValueType::Float, Scalar::Int(_) | Scalar::Float(_))
        | (ValueType::Boolean, Scalar::Bool(_)) => true,
        (ValueType::Integer, Scalar::String(s)) => s.trim().parse::<i64>().is_ok(),
        (ValueType::Float, Scalar::String(s)) => parse_number(s.trim()).is_some(),
        (ValueType::Boolean, Scalar::String(s)) => is_boolean_text(s),
        (ValueType::Timestamp, Scalar::String(s)) => is_timestamp(s.trim()),
        _ => false,
    };
    if fits {
        return Ok(());
    }
    Err(Error::FilterType {
        column: column.to_string(),
        expected: ty,
        value: value.to_json().to_string(),
    })
}

/// PostgreSQL's spellings of a boolean (`boolin`): `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`
/// and their unambiguous prefixes, in any case.
fn is_boolean_text(s: &str) -> bool {
    let t = s.trim().to_ascii_lowercase();
    let prefix = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    prefix("true", 1)
        || prefix("false", 1)
        || prefix("yes", 1)
        || prefix("no", 1)
        || prefix("on", 2)
        || prefix("off", 2)
        || t == "1"
        || t == "0"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn col(name: &str) -> ColumnRef {
        ColumnRef::new(name).unwrap()
    }

    #[test]
    fn names_are_the_catalogs() {
        for ty in ValueType::ALL {
            assert_eq!(ValueType::from_name(ty.as_str()), Some(ty));
        }
        assert_eq!(ValueType::from_name("blob"), None);
    }

    #[test]
    fn values_are_read_as_their_columns_type() {
        let typed = |ty, raw: &str| typed_value(&col("c"), ty, raw, false);
        assert_eq!(typed(ValueType::Text, "79123456789"), Ok(json!("79123456789")));
        assert_eq!(typed(ValueType::Text, "1.50"), Ok(json!("1.50")));
        assert_eq!(typed(ValueType::Text, "true"), Ok(json!("true")));
        assert_eq!(typed(ValueType::Text, "null"), Ok(json!(null)));
        assert_eq!(typed(ValueType::Integer, "42"), Ok(json!(42)));
        assert_eq!(typed(ValueType::Integer, "-7"), Ok(json!(-7)));
        assert_eq!(typed(ValueType::Float, "10"), Ok(json!(10)));
        assert_eq!(typed(ValueType::Float, "1.5"), Ok(json!(1.5)));
        assert_eq!(typed(ValueType::Boolean, "false"), Ok(json!(false)));
        assert_eq!(typed(ValueType::Timestamp, "2025-12-15"), Ok(json!("2025-12-15")));
        assert_eq!(
            typed(ValueType::Timestamp, "2025-12-15 10:00:00"),
            Ok(json!("2025-12-15 10:00:00"))
        );
        // A quoted value is text, read by the column's type all the same; `"null"` is the word.
        assert_eq!(typed_value(&col("c"), ValueType::Integer, "5", true), Ok(json!(5)));
        assert_eq!(typed_value(&col("c"), ValueType::Text, "null", true), Ok(json!("null")));
    }

    #[test]
    fn a_value_of_another_type_names_the_column_the_type_and_the_value() {
        let refused = |ty, raw: &str| typed_value(&col("c"), ty, raw, false).unwrap_err();
        assert_eq!(
            refused(ValueType::Timestamp, "true").to_string(),
            "filter c: expected a timestamp (2025-12-15 or 2025-12-15 10:00:00), got true"
        );
        assert_eq!(
            refused(ValueType::Integer, "abc").to_string(),
            "filter c: expected an integer, got abc"
        );
        assert_eq!(
            refused(ValueType::Integer, "1.5").to_string(),
            "filter c: expected an integer, got 1.5"
        );
        assert_eq!(
            refused(ValueType::Integer, "99999999999999999999").to_string(),
            "filter c: expected an integer, got 99999999999999999999"
        );
        assert_eq!(
            refused(ValueType::Integer, "").to_string(),
            "filter c: expected an integer, got an empty value"
        );
        assert_eq!(
            refused(ValueType::Boolean, "yes").to_string(),
            "filter c: expected a boolean (true or false), got yes"
        );
        for bad in ["inf", "NaN", "1,5", "x"] {
            assert!(matches!(refused(ValueType::Float, bad), Error::FilterType { .. }), "{bad}");
        }
        let e = typed_value(&col("c"), ValueType::Integer, "abc", true).unwrap_err();
        assert_eq!(e.to_string(), "filter c: expected an integer, got \"abc\"");
    }

    #[test]
    fn timestamps_in_the_iso_forms() {
        for ok in [
            "2025-12-15",
            "2025-12-15 10:00",
            "2025-12-15 10:00:00",
            "2025-12-15T10:00:00.123456",
            "2025-12-15 10:00:00Z",
            "2025-12-15 10:00:00+03:00",
            "2025-12-15 10:00-0500",
        ] {
            assert!(is_timestamp(ok), "{ok}");
        }
        for bad in [
            "",
            "true",
            "2025-12",
            "2025-13-01",
            "2025-12-32",
            "2025-12-15 24:00",
            "2025-12-15 10",
            "2025-12-15 10:00:60",
            "2025-12-15 10:00:00.",
            "2025-12-15 10:00:00.1234567",
            "2025-12-15 10:00:00 PST",
            "15.12.2025",
            "1734256800",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn literals_are_checked_against_their_columns() {
        let types = |c: &ColumnRef| match c.name.as_str() {
            "id" => Some(ValueType::Integer),
            "phone" => Some(ValueType::Text),
            "registered" => Some(ValueType::Timestamp),
            "disabled" => Some(ValueType::Boolean),
            "billing" => Some(ValueType::Float),
            _ => None,
        };
        let check = |json: Value| check_value_types(&Expr::from_json(&json).unwrap(), &types);
        for ok in [
            json!({"eq": ["id", 5]}),
            json!({"eq": ["id", "5"]}),
            json!({"gte": ["billing", 10]}),
            json!({"eq": ["phone", "79123456789"]}),
            json!({"gte": ["registered", "2025-12-15"]}),
            json!({"eq": ["disabled", "t"]}),
            json!({"in": ["id", 1, "2"]}),
            json!({"is": ["registered", null]}),
            json!({"eq": ["unknown", true]}),
            json!({"like": ["phone", "7912%"]}),
            json!({"or": [{"eq": ["id", 1]}, {"not": [{"eq": ["phone", "x"]}]}]}),
        ] {
            assert_eq!(check(ok.clone()), Ok(()), "{ok}");
        }
        let refused = |json: Value| check(json).unwrap_err().to_string();
        assert_eq!(
            refused(json!({"eq": ["registered", true]})),
            "filter registered: expected a timestamp (2025-12-15 or 2025-12-15 10:00:00), got true"
        );
        assert_eq!(
            refused(json!({"eq": ["phone", 79_123_456_789_i64]})),
            "filter phone: expected text, got 79123456789"
        );
        assert_eq!(
            refused(json!({"eq": ["id", "abc"]})),
            "filter id: expected an integer, got \"abc\""
        );
        assert_eq!(
            refused(json!({"and": [{"eq": ["id", 1]}, {"in": ["id", 1, true]}]})),
            "filter id: expected an integer, got true"
        );
        assert_eq!(
            refused(json!({"like": ["id", "5%"]})),
            "filter id: like matches text, and id is an integer column"
        );
    }
}
