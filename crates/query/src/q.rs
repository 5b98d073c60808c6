//! `Q`: `where` conditions built from Django-style lookups (`balance__gte`) and composed with `&`,
//! `|` and `!`.
//!
//! A `Q` is a thin wrapper over [`Expr`], so it writes exactly the JSONSQL `where` JSON and reads
//! back from it. Everything a lookup is given is checked when the `Q` is built: a bad column name,
//! an unknown lookup or a value of the wrong kind is a typed [`Error`] then, never a request the
//! server has to refuse.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::Error;
use crate::ast::{ColumnRef, CompareOp, Expr, InList, Operand, Scalar};

/// A lookup: the `__suffix` of a [`Q`] field, saying how the column is compared with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lookup {
    /// `col` or `col__eq`: `{"eq":["col",v]}`; with `null`, `{"is":["col",null]}`.
    Eq,
    /// `col__ne`: `{"neq":["col",v]}`; with `null`, `{"is_not":["col",null]}`.
    Ne,
    /// `col__gt`: `{"gt":["col",v]}`.
    Gt,
    /// `col__gte`: `{"gte":["col",v]}`.
    Gte,
    /// `col__lt`: `{"lt":["col",v]}`.
    Lt,
    /// `col__lte`: `{"lte":["col",v]}`.
    Lte,
    /// `col__in`: `{"in":["col",a,b,…]}`.
    In,
    /// `col__like`: `{"like":["col",p]}`, the pattern as given.
    Like,
    /// `col__ilike`: `{"ilike":["col",p]}`, the pattern as given.
    Ilike,
    /// `col__contains`: `{"like":["col","%v%"]}`, wildcards in `v` escaped.
    Contains,
    /// `col__icontains`: `{"ilike":["col","%v%"]}`, wildcards in `v` escaped.
    Icontains,
    /// `col__startswith`: `{"like":["col","v%"]}`, wildcards in `v` escaped.
    Startswith,
    /// `col__endswith`: `{"like":["col","%v"]}`, wildcards in `v` escaped.
    Endswith,
    /// `col__isnull`: `true` gives `{"is":["col",null]}`, `false` gives `{"is_not":["col",null]}`.
    Isnull,
}

impl Lookup {
    /// Every lookup, in the order of [`LOOKUPS`](crate::LOOKUPS).
    pub const ALL: [Lookup; 14] = [
        Lookup::Eq,
        Lookup::Ne,
        Lookup::Gt,
        Lookup::Gte,
        Lookup::Lt,
        Lookup::Lte,
        Lookup::In,
        Lookup::Like,
        Lookup::Ilike,
        Lookup::Contains,
        Lookup::Icontains,
        Lookup::Startswith,
        Lookup::Endswith,
        Lookup::Isnull,
    ];

    /// The suffix as written after `__`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lookup::Eq => "eq",
            Lookup::Ne => "ne",
            Lookup::Gt => "gt",
            Lookup::Gte => "gte",
            Lookup::Lt => "lt",
            Lookup::Lte => "lte",
            Lookup::In => "in",
            Lookup::Like => "like",
            Lookup::Ilike => "ilike",
            Lookup::Contains => "contains",
            Lookup::Icontains => "icontains",
            Lookup::Startswith => "startswith",
            Lookup::Endswith => "endswith",
            Lookup::Isnull => "isnull",
        }
    }

    /// The lookup a suffix names, if any (exact, lowercase).
    pub fn from_suffix(suffix: &str) -> Option<Lookup> {
        Lookup::ALL.into_iter().find(|l| l.as_str() == suffix)
    }

    /// Whether the value is text matched against a pattern, so the CLI keeps it as written rather
    /// than reading `10` as a number.
    pub(crate) const fn takes_text(self) -> bool {
        matches!(
            self,
            Lookup::Like
                | Lookup::Ilike
                | Lookup::Contains
                | Lookup::Icontains
                | Lookup::Startswith
                | Lookup::Endswith
        )
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Splits a field expression into its column and lookup: `balance__gte` is (`balance`, `gte`),
/// `s.email__isnull` is (`s.email`, `isnull`), `balance` is (`balance`, `eq`).
///
/// The text after the last `__` must be a lookup: a column whose own name contains `__` cannot be
/// filtered this way (write the condition with `--where-json` / [`Expr`] instead), because guessing
/// would turn a misspelt lookup (`balance__gtee`) into a silent equality on a column that does not
/// exist.
pub(crate) fn split_field(field: &str) -> Result<(ColumnRef, Lookup), Error> {
    let (column, lookup) = match field.rsplit_once("__") {
        None => (field, Lookup::Eq),
        Some((column, suffix)) => match Lookup::from_suffix(suffix) {
            Some(lookup) => (column, lookup),
            None => {
                return Err(Error::UnknownLookup {
                    field: field.to_owned(),
                    lookup: suffix.to_owned(),
                });
            }
        },
    };
    Ok((parse_column(column)?, lookup))
}

/// A column as a `Q` names it: `name` or `table.name`.
fn parse_column(column: &str) -> Result<ColumnRef, Error> {
    let column = match column.split_once('.') {
        Some((table, name)) => ColumnRef::qualified(table, name)?,
        None => ColumnRef::new(column)?,
    };
    // The two qualifiers whose `{"t":"col"}` reads back as something else: refuse them now rather
    // than build a `Q` that cannot be written.
    if let Some(t) = &column.table
        && (t == "function" || t == "from")
    {
        return Err(Error::InvalidIdentifier { name: t.clone() });
    }
    Ok(column)
}

/// A `where` condition built from lookups and composed with `&` (and), `|` (or) and `!` (not).
///
/// ```
/// use iptvportal_query::Q;
///
/// let q = (Q::lookup("balance__gte", 10)? | Q::lookup("email__isnull", true)?) & !Q::lookup("disabled", true)?;
/// assert_eq!(
///     serde_json::to_string(&q)?,
///     r#"{"and":[{"or":[{"gte":["balance",10]},{"is":["email",null]}]},{"not":[{"eq":["disabled",true]}]}]}"#,
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Nested groups of the same operator are flattened as they are built: `(a & b) & c` is one `and`
/// of three, while `a & (b | c)` keeps its `or` inside. `!` wraps in `not` and never rewrites
/// (`!!a` stays `not(not(a))`), so what is built is what is sent.
///
/// Values are JSON scalars. Two lookups treat `null` specially because SQL `= NULL` and `<> NULL`
/// never match: `eq` with `null` is written `is null`, `ne` with `null` is `is_not null`. Ordering
/// lookups (`gt`, …), `in` and the pattern lookups refuse `null` with [`Error::InvalidValue`] for
/// the same reason: use `__isnull`. Integers must fit in `i64` (a larger one would silently become
/// a rounded float).
#[derive(Debug, Clone, PartialEq)]
pub struct Q(Expr);

impl Q {
    /// A condition from a field expression (`column`, `column__lookup`, `table.column__lookup`) and
    /// a value. See [`Lookup`] for what each lookup writes.
    pub fn lookup(field: &str, value: impl Into<Value>) -> Result<Q, Error> {
        let (column, lookup) = split_field(field)?;
        build_lookup(field, column, lookup, value.into())
    }

    /// A condition on `column` (`name` or `table.name`) with an explicit lookup, for code that is
    /// not string-driven.
    pub fn new(column: &str, lookup: Lookup, value: impl Into<Value>) -> Result<Q, Error> {
        let field = format!("{column}__{lookup}");
        build_lookup(&field, parse_column(column)?, lookup, value.into())
    }

    /// `column = value` (`is null` for `null`).
    pub fn eq(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Eq, value)
    }

    /// `column <> value` (`is not null` for `null`).
    pub fn ne(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Ne, value)
    }

    /// `column > value`.
    pub fn gt(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Gt, value)
    }

    /// `column >= value`.
    pub fn gte(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Gte, value)
    }

    /// `column < value`.
    pub fn lt(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Lt, value)
    }

    /// `column <= value`.
    pub fn lte(column: &str, value: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::Lte, value)
    }

    /// `column in (values…)`; `values` must be a non-empty JSON array of scalars.
    pub fn is_in(column: &str, values: impl Into<Value>) -> Result<Q, Error> {
        Q::new(column, Lookup::In, values)
    }

    /// `column is null` (`true`) or `column is not null` (`false`).
    pub fn isnull(column: &str, is_null: bool) -> Result<Q, Error> {
        Q::new(column, Lookup::Isnull, is_null)
    }

    /// Wraps a condition as it is, without flattening or checks (the wire reader already checked
    /// what it parsed).
    pub fn from_expr(expr: Expr) -> Q {
        Q(expr)
    }

    /// The condition.
    pub fn expr(&self) -> &Expr {
        &self.0
    }

    /// The condition, by value.
    pub fn into_expr(self) -> Expr {
        self.0
    }

    /// The wire JSON of the condition. A `Q` built from lookups and operators always has one; only a
    /// hand-built [`Expr`] passed to [`Q::from_expr`] can fail with [`Error::Unrepresentable`].
    pub fn to_json(&self) -> Result<Value, Error> {
        self.0.to_json()
    }

    /// Parses the wire JSON of a condition.
    pub fn from_json(value: &Value) -> Result<Q, Error> {
        Expr::from_json(value).map(Q)
    }

    /// The AND of every condition, flattened; `None` when there are none.
    pub fn all(items: impl IntoIterator<Item = Q>) -> Option<Q> {
        items.into_iter().reduce(BitAnd::bitand)
    }

    /// The OR of every condition, flattened; `None` when there are none.
    pub fn any(items: impl IntoIterator<Item = Q>) -> Option<Q> {
        items.into_iter().reduce(BitOr::bitor)
    }
}

/// Builds the condition for one lookup; `field` is only for error messages.
pub(crate) fn build_lookup(
    field: &str,
    column: ColumnRef,
    lookup: Lookup,
    value: Value,
) -> Result<Q, Error> {
    let left = Operand::Column(column);
    let invalid = |reason: String| Error::InvalidValue { field: field.to_owned(), reason };
    let compare = |op: CompareOp, value: Scalar| Expr::Compare {
        op,
        left: left.clone(),
        right: Operand::Literal(value),
    };
    let expr = match lookup {
        Lookup::Eq | Lookup::Ne => match scalar(field, &value)? {
            // `= NULL` is never true in SQL; the user means IS NULL.
            Scalar::Null => Expr::Is {
                negated: lookup == Lookup::Ne,
                left,
                right: Operand::Literal(Scalar::Null),
            },
            v => compare(if lookup == Lookup::Eq { CompareOp::Eq } else { CompareOp::Neq }, v),
        },
        Lookup::Gt | Lookup::Gte | Lookup::Lt | Lookup::Lte => {
            let op = match lookup {
                Lookup::Gt => CompareOp::Gt,
                Lookup::Gte => CompareOp::Gte,
                Lookup::Lt => CompareOp::Lt,
                _ => CompareOp::Lte,
            };
            compare(op, non_null(field, lookup, &value)?)
        }
        Lookup::In => {
            let Value::Array(items) = &value else {
                return Err(invalid(format!("__in needs a list of values, got {}", kind(&value))));
            };
            if items.is_empty() {
                return Err(Error::EmptyIn { field: field.to_owned() });
            }
            let values = items
                .iter()
                .map(|v| non_null(field, lookup, v).map(Operand::Literal))
                .collect::<Result<_, _>>()?;
            Expr::In { left, list: InList::Values(values) }
        }
        Lookup::Like | Lookup::Ilike => {
            let op = if lookup == Lookup::Like { CompareOp::Like } else { CompareOp::Ilike };
            compare(op, Scalar::String(text(field, lookup, &value)?))
        }
        Lookup::Contains | Lookup::Icontains | Lookup::Startswith | Lookup::Endswith => {
            let escaped = escape_like(&text(field, lookup, &value)?);
            let (op, pattern) = match lookup {
                Lookup::Contains => (CompareOp::Like, format!("%{escaped}%")),
                Lookup::Icontains => (CompareOp::Ilike, format!("%{escaped}%")),
                Lookup::Startswith => (CompareOp::Like, format!("{escaped}%")),
                _ => (CompareOp::Like, format!("%{escaped}")),
            };
            compare(op, Scalar::String(pattern))
        }
        Lookup::Isnull => match value {
            Value::Bool(is_null) => {
                Expr::Is { negated: !is_null, left, right: Operand::Literal(Scalar::Null) }
            }
            other => {
                return Err(invalid(format!("__isnull takes true or false, got {}", kind(&other))));
            }
        },
    };
    Ok(Q(expr))
}

/// The scalar a value is; arrays and objects are refused, as are integers beyond `i64`.
fn scalar(field: &str, value: &Value) -> Result<Scalar, Error> {
    let invalid = |reason: String| Error::InvalidValue { field: field.to_owned(), reason };
    match value {
        Value::Array(_) | Value::Object(_) => Err(invalid(format!(
            "expected a single value (number, string, boolean or null), got {}",
            kind(value)
        ))),
        // `Scalar` holds integers as `i64`; a `u64` beyond it would come through as a rounded float.
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            Err(invalid(format!("integer {n} is out of range (at most {})", i64::MAX)))
        }
        v => Scalar::from_json(v).ok_or_else(|| invalid("expected a single value".to_owned())),
    }
}

/// A scalar other than `null`, for lookups where `null` could never match.
fn non_null(field: &str, lookup: Lookup, value: &Value) -> Result<Scalar, Error> {
    match scalar(field, value)? {
        Scalar::Null => Err(Error::InvalidValue {
            field: field.to_owned(),
            reason: format!("__{lookup} with null never matches; use __isnull"),
        }),
        v => Ok(v),
    }
}

/// The text of a pattern lookup's value: a string as it is, a number as its JSON text.
fn text(field: &str, lookup: Lookup, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(Error::InvalidValue {
            field: field.to_owned(),
            reason: format!("__{lookup} takes text, got {}", kind(other)),
        }),
    }
}

/// Escapes LIKE's wildcards so the value matches literally. The dialect's escape character is `\`
/// (the simulator runs `LIKE … ESCAPE '\'`), so it is escaped first.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A word for a value's JSON type, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl BitAnd for Q {
    type Output = Q;

    /// `self AND rhs`, merged into an existing `and` on either side.
    fn bitand(self, rhs: Q) -> Q {
        Q(match (self.0, rhs.0) {
            (Expr::And(mut a), Expr::And(b)) => {
                a.extend(b);
                Expr::And(a)
            }
            (Expr::And(mut a), e) => {
                a.push(e);
                Expr::And(a)
            }
            (e, Expr::And(mut b)) => {
                b.insert(0, e);
                Expr::And(b)
            }
            (a, b) => Expr::And(vec![a, b]),
        })
    }
}

impl BitOr for Q {
    type Output = Q;

    /// `self OR rhs`, merged into an existing `or` on either side.
    fn bitor(self, rhs: Q) -> Q {
        Q(match (self.0, rhs.0) {
            (Expr::Or(mut a), Expr::Or(b)) => {
                a.extend(b);
                Expr::Or(a)
            }
            (Expr::Or(mut a), e) => {
                a.push(e);
                Expr::Or(a)
            }
            (e, Expr::Or(mut b)) => {
                b.insert(0, e);
                Expr::Or(b)
            }
            (a, b) => Expr::Or(vec![a, b]),
        })
    }
}

impl Not for Q {
    type Output = Q;

    fn not(self) -> Q {
        Q(Expr::Not(Box::new(self.0)))
    }
}

impl BitAndAssign for Q {
    fn bitand_assign(&mut self, rhs: Q) {
        // The placeholder is overwritten at once; it only lets `self` be taken by value.
        let this = std::mem::replace(&mut self.0, Expr::And(Vec::new()));
        *self = Q(this) & rhs;
    }
}

impl BitOrAssign for Q {
    fn bitor_assign(&mut self, rhs: Q) {
        let this = std::mem::replace(&mut self.0, Expr::Or(Vec::new()));
        *self = Q(this) | rhs;
    }
}

impl From<Q> for Expr {
    fn from(q: Q) -> Expr {
        q.0
    }
}

impl From<Expr> for Q {
    fn from(expr: Expr) -> Q {
        Q(expr)
    }
}

impl Serialize for Q {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Q {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Expr::deserialize(deserializer).map(Q)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wire(q: &Q) -> String {
        serde_json::to_string(q).unwrap()
    }

    #[test]
    fn lookups_match_the_published_list() {
        let names: Vec<&str> = Lookup::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(names, crate::LOOKUPS);
        for l in Lookup::ALL {
            assert_eq!(Lookup::from_suffix(l.as_str()), Some(l));
        }
    }

    #[test]
    fn split_field_takes_the_last_suffix() {
        let (c, l) = split_field("a___gte").unwrap();
        assert_eq!((c.name.as_str(), l), ("a_", Lookup::Gte));
        let (c, l) = split_field("s.email__isnull").unwrap();
        assert_eq!((c.table.as_deref(), c.name.as_str(), l), (Some("s"), "email", Lookup::Isnull));
        assert!(
            matches!(split_field("a__b__c"), Err(Error::UnknownLookup { lookup, .. }) if lookup == "c")
        );
        assert!(
            matches!(split_field("a__"), Err(Error::UnknownLookup { lookup, .. }) if lookup.is_empty())
        );
        assert!(matches!(split_field("__gte"), Err(Error::InvalidIdentifier { .. })));
        assert!(matches!(split_field("function.x"), Err(Error::InvalidIdentifier { .. })));
    }

    #[test]
    fn escape_like_escapes_the_escape_first() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(escape_like("plain"), "plain");
    }

    #[test]
    fn flattening_keeps_order_on_both_sides() {
        let q = |n: i64| Q::eq("a", n).unwrap();
        let left = (q(1) & q(2)) & q(3);
        let right = q(1) & (q(2) & q(3));
        assert_eq!(left, right);
        assert_eq!(wire(&left), r#"{"and":[{"eq":["a",1]},{"eq":["a",2]},{"eq":["a",3]}]}"#);
        let mut acc = q(1);
        acc |= q(2);
        acc |= q(3) | q(4);
        assert_eq!(
            wire(&acc),
            r#"{"or":[{"eq":["a",1]},{"eq":["a",2]},{"eq":["a",3]},{"eq":["a",4]}]}"#
        );
        let mut acc = q(1);
        acc &= q(2);
        assert_eq!(acc, q(1) & q(2));
    }

    #[test]
    fn all_and_any() {
        assert_eq!(Q::all(Vec::new()), None);
        assert_eq!(Q::any([Q::eq("a", 1).unwrap()]), Some(Q::eq("a", 1).unwrap()));
        assert_eq!(
            Q::all([Q::eq("a", 1).unwrap(), Q::eq("a", 2).unwrap()]).unwrap().expr(),
            &Expr::And(vec![
                Q::eq("a", 1).unwrap().into_expr(),
                Q::eq("a", 2).unwrap().into_expr()
            ])
        );
    }

    #[test]
    fn named_constructors_agree_with_lookup() {
        assert_eq!(Q::gte("balance", 10).unwrap(), Q::lookup("balance__gte", 10).unwrap());
        assert_eq!(Q::is_in("id", json!([1])).unwrap(), Q::lookup("id__in", json!([1])).unwrap());
        assert_eq!(
            Q::isnull("s.email", false).unwrap(),
            Q::lookup("s.email__isnull", false).unwrap()
        );
        assert_eq!(Q::ne("a", "x").unwrap(), Q::lookup("a__ne", "x").unwrap());
        assert_eq!(Q::lt("a", 1.5).unwrap(), Q::lookup("a__lt", 1.5).unwrap());
        assert!(matches!(Q::new("bad name", Lookup::Eq, 1), Err(Error::InvalidIdentifier { .. })));
    }

    #[test]
    fn big_unsigned_integers_are_refused() {
        assert!(matches!(Q::lookup("id__gt", u64::MAX), Err(Error::InvalidValue { .. })));
        assert!(Q::lookup("id__gt", i64::MAX).is_ok());
    }
}
